# Table Storage for the backend's records (docs/backend.md). Tables are created with
# storage_account_id (the 4.x argument; storage_account_name is deprecated). The
# backend authenticates with the connection string from Key Vault, because
# spy_backend.settings takes a connection string today.

resource "azurerm_storage_account" "main" {
  name                             = "st${local.compact}"
  location                         = azurerm_resource_group.main.location
  resource_group_name              = azurerm_resource_group.main.name
  account_kind                     = "StorageV2"
  account_tier                     = "Standard"
  account_replication_type         = "ZRS"
  min_tls_version                  = "TLS1_2"
  https_traffic_only_enabled       = true
  allow_nested_items_to_be_public  = false
  cross_tenant_replication_enabled = false
  shared_access_key_enabled        = true
  default_to_oauth_authentication  = true
  local_user_enabled               = false
  public_network_access_enabled    = true # the backend reaches it over the internet (TLS 1.2, key auth)
  tags                             = local.tags

  network_rules {
    default_action = "Allow"
    bypass         = ["AzureServices", "Logging", "Metrics"]
  }

  sas_policy {
    expiration_period = "01.00:00:00"
    expiration_action = "Block"
  }

  blob_properties {
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }

  # checkov:skip=CKV2_AZURE_40:The backend authenticates with a connection string (spy_backend.settings.storage_connection_string); shared keys stay until it moves to managed identity
  # checkov:skip=CKV2_AZURE_1:Microsoft-managed keys; customer-managed keys add a key lifecycle this platform does not need
  # checkov:skip=CKV_AZURE_206:ZRS survives a zone outage; geo-replication (GRS) is not needed for 30 days of market records
  # checkov:skip=CKV_AZURE_59:The web app reaches the tables over the public endpoint; a private endpoint needs a private DNS VNet link whose arguments differ between azurerm 4.x and 5.x
  # checkov:skip=CKV_AZURE_35:Same reason as CKV_AZURE_59: default deny would cut the web app off; requests need the account key or an Entra role
  # checkov:skip=CKV2_AZURE_33:Same reason as CKV_AZURE_59 (no private endpoint)
  # checkov:skip=CKV_AZURE_33:No queues are used (queue logging would be azurerm_storage_account_queue_properties, absent from early 4.x)
}

resource "azurerm_storage_table" "records" {
  # checkov:skip=CKV2_AZURE_20:Table reads are logged by the diagnostic setting below (StorageRead to Log Analytics); checkov only recognises the legacy storage-insights resource, which needs account keys
  for_each           = toset(local.tables)
  name               = "${var.table_prefix}${each.value}"
  storage_account_id = azurerm_storage_account.main.id
}

# Table service reads, writes and deletes go to Log Analytics (who read which
# records, and when), next to the platform's other logs.
resource "azurerm_monitor_diagnostic_setting" "tables" {
  name                       = "to-log-analytics"
  target_resource_id         = "${azurerm_storage_account.main.id}/tableServices/default"
  log_analytics_workspace_id = azurerm_log_analytics_workspace.main.id

  enabled_log {
    category = "StorageRead"
  }
  enabled_log {
    category = "StorageWrite"
  }
  enabled_log {
    category = "StorageDelete"
  }
}
