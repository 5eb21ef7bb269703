# Provider and state settings for the Azure half of the platform (docs/azure.md).
# The code is written for azurerm 4.x without any argument deprecated in 4.x, so it
# also validates on 5.x: tests/azure runs `tofu validate` against a 5.2-era provider
# built from Go modules (tools/build-azure.sh), the only one reachable offline here.
terraform {
  required_version = ">= 1.8.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 4.55.0, < 6.0.0" # 4.55 adds azurerm_log_analytics_workspace_table_custom_log
    }
  }

  # Remote state in an Azure storage account with Entra ID auth (no access keys). The
  # values live in a file passed at init: `tofu init -backend-config=backend.hcl`
  # (see backend.hcl.example). Tests run `tofu init -backend=false`.
  backend "azurerm" {}
}

provider "azurerm" {
  features {
    key_vault {
      # A destroyed vault stays recoverable (purge protection is on anyway).
      purge_soft_delete_on_destroy = false
    }
    resource_group {
      prevent_deletion_if_contains_resources = true
    }
  }
  # Storage data-plane calls (tables) use Entra ID, never the account key.
  storage_use_azuread = true
  subscription_id     = var.subscription_id
}
