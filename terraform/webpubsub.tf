# Azure Web PubSub: the backend publishes live records to one hub, dashboards join
# its groups with client tokens the backend mints (docs/backend.md). Anonymous
# connections are off: every client needs a token.

resource "azurerm_web_pubsub" "main" {
  name                          = "wps-${local.base}"
  location                      = azurerm_resource_group.main.location
  resource_group_name           = azurerm_resource_group.main.name
  sku                           = var.webpubsub_sku
  capacity                      = 1
  public_network_access_enabled = true # browsers connect from anywhere, with tokens
  local_auth_enabled            = true # the backend signs client tokens with the access key
  aad_auth_enabled              = true
  tls_client_cert_enabled       = false
  tags                          = local.tags

  identity {
    type = "SystemAssigned"
  }

  live_trace {
    enabled                   = true
    messaging_logs_enabled    = false
    connectivity_logs_enabled = true
    http_request_logs_enabled = true
  }
}

resource "azurerm_web_pubsub_hub" "main" {
  name                          = var.webpubsub_hub
  web_pubsub_id                 = azurerm_web_pubsub.main.id
  anonymous_connections_enabled = false
}
