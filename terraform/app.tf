# The backend (spy_backend, FastAPI) as a Linux web app running its image from the
# registry, and the dashboard as a Static Web App. The web app's system identity
# pulls the image (AcrPull) and reads its secrets through Key Vault references
# (Key Vault Secrets User); no secret is ever written into an app setting.

resource "azurerm_service_plan" "main" {
  name                   = "asp-${local.base}"
  location               = azurerm_resource_group.main.location
  resource_group_name    = azurerm_resource_group.main.name
  os_type                = "Linux"
  sku_name               = var.app_service_sku
  worker_count           = 2 # one per zone at least: a zone outage leaves one running
  zone_balancing_enabled = true
  tags                   = local.tags
}

locals {
  kv_ref = { for k, s in {
    SPY_BACKEND_STORAGE_CONNECTION_STRING   = azurerm_key_vault_secret.storage_connection
    SPY_BACKEND_WEBPUBSUB_CONNECTION_STRING = azurerm_key_vault_secret.webpubsub_connection
    SPY_BACKEND_INGEST_TOKEN                = azurerm_key_vault_secret.ingest_token
  } : k => "@Microsoft.KeyVault(SecretUri=${s.versionless_id})" }
}

resource "azurerm_linux_web_app" "backend" {
  name                                           = "app-${local.base}-backend"
  location                                       = azurerm_resource_group.main.location
  resource_group_name                            = azurerm_resource_group.main.name
  service_plan_id                                = azurerm_service_plan.main.id
  https_only                                     = true
  public_network_access_enabled                  = true # the dashboard and detectors call it
  client_certificate_enabled                     = false
  ftp_publish_basic_authentication_enabled       = false
  webdeploy_publish_basic_authentication_enabled = false
  virtual_network_subnet_id                      = azurerm_subnet.app.id
  tags                                           = local.tags

  identity {
    type = "SystemAssigned"
  }

  site_config {
    always_on                               = true
    http2_enabled                           = true
    minimum_tls_version                     = "1.2"
    scm_minimum_tls_version                 = "1.2"
    ftps_state                              = "Disabled"
    health_check_path                       = "/healthz"
    health_check_eviction_time_in_min       = 5
    vnet_route_all_enabled                  = true
    container_registry_use_managed_identity = true

    application_stack {
      docker_image_name   = var.backend_image
      docker_registry_url = "https://${azurerm_container_registry.main.login_server}"
    }
  }

  app_settings = merge(local.kv_ref, {
    SPY_BACKEND_ENVIRONMENT               = "production"
    SPY_BACKEND_TABLE_PREFIX              = var.table_prefix
    SPY_BACKEND_WEBPUBSUB_HUB             = var.webpubsub_hub
    SPY_BACKEND_CORS_ORIGINS              = jsonencode(["https://${azurerm_static_web_app.dashboard.default_host_name}"])
    APPLICATIONINSIGHTS_CONNECTION_STRING = azurerm_application_insights.main.connection_string
    WEBSITES_PORT                         = "8000"
  })

  logs {
    detailed_error_messages = true
    failed_request_tracing  = true
    http_logs {
      file_system {
        retention_in_days = 7
        retention_in_mb   = 35
      }
    }
  }
  # checkov:skip=CKV_AZURE_13:Easy Auth would put an interactive login in front of machine callers; ingest is checked per request with the bearer token from Key Vault, reads are public market data
  # checkov:skip=CKV_AZURE_17:Detectors authenticate with the ingest bearer token and browsers with none; client certificates would lock out the dashboard
  # checkov:skip=CKV_AZURE_88:The backend keeps no files; its state is in Table Storage
  # checkov:skip=CKV_AZURE_222:The dashboard and the on-premises detectors reach the API over the internet, authenticated per request
}

resource "azurerm_role_assignment" "backend_acr_pull" {
  scope                = azurerm_container_registry.main.id
  role_definition_name = "AcrPull"
  principal_id         = azurerm_linux_web_app.backend.identity[0].principal_id
}

resource "azurerm_role_assignment" "backend_secrets_user" {
  scope                = azurerm_key_vault.main.id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_linux_web_app.backend.identity[0].principal_id
}

# The dashboard is static files (dashboard/); the deploy workflow uploads them with the
# Static Web App's deployment token (output dashboard_deployment_token).
resource "azurerm_static_web_app" "dashboard" {
  name                               = "stapp-${local.base}-dashboard"
  location                           = var.static_site_location
  resource_group_name                = azurerm_resource_group.main.name
  sku_tier                           = "Standard"
  sku_size                           = "Standard"
  configuration_file_changes_enabled = false
  preview_environments_enabled       = false
  tags                               = local.tags
}
