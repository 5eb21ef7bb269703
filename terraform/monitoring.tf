# Log Analytics workspace (container logs arrive here, logs.tf) and a workspace-based
# Application Insights for the backend. Diagnostic settings send the platform
# services' own logs to the same workspace.

resource "azurerm_log_analytics_workspace" "main" {
  name                = "log-${local.base}"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = local.tags
}

resource "azurerm_application_insights" "main" {
  name                = "appi-${local.base}"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  workspace_id        = azurerm_log_analytics_workspace.main.id
  application_type    = "web"
  retention_in_days   = 90
  tags                = local.tags
}

locals {
  # Resource -> log category group sent to the workspace.
  diagnostics = {
    vault     = azurerm_key_vault.main.id
    gateway   = azurerm_virtual_network_gateway.vpn.id
    webpubsub = azurerm_web_pubsub.main.id
    registry  = azurerm_container_registry.main.id
  }
}

resource "azurerm_monitor_diagnostic_setting" "platform" {
  for_each                   = local.diagnostics
  name                       = "to-log-analytics"
  target_resource_id         = each.value
  log_analytics_workspace_id = azurerm_log_analytics_workspace.main.id

  enabled_log {
    category_group = "allLogs"
  }
}
