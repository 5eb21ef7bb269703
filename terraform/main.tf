# Names, tags and the resource group every other file of this stack builds on.
# One flat root module, one file per concern (network, vpn, keyvault, registry,
# storage, webpubsub, app, monitoring, logs): each file reads on its own, and
# tflint/checkov see every resource without module indirection.

data "azurerm_client_config" "current" {}

locals {
  base = "${var.name_prefix}-${var.environment}"
  # Storage accounts, registries and vaults allow no dashes and share one global
  # namespace: the prefix (validated 3-10 chars) keeps them within 24.
  compact = "${var.name_prefix}${var.environment}"
  tags = merge(var.tags, {
    project     = "spy-options"
    environment = var.environment
    managed-by  = "opentofu"
  })
  # Record types the backend stores (spy_backend.models.ingest.Resource) plus its
  # partition index; the backend creates missing tables too, but creating them here
  # lets its identity hold data rights only.
  tables = ["anomaly", "market", "gex", "flow", "signal", "partitions"]
}

resource "azurerm_resource_group" "main" {
  name     = "rg-${local.base}"
  location = var.location
  tags     = local.tags
}
