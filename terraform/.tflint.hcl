# tflint for terraform/ (tests/azure/test_azure_terraform_tools.py, the terraform
# workflow). Only the bundled terraform ruleset, with every rule on: the azurerm
# ruleset plugin is not reachable offline (its module is not served by the Go proxy);
# `tofu validate` against the real provider schema covers argument names instead.
config {
  format           = "compact"
  call_module_type = "local"
}

plugin "terraform" {
  enabled = true
  preset  = "all"
}
