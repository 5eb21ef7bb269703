# Key Vault in RBAC mode: the VPN PSK and the backend's connection secrets live here.
# The identity running tofu writes them (Secrets Officer); the backend web app only
# reads them through Key Vault references (Secrets User, app.tf). Access is by Entra
# ID role only: App Service is not a "trusted service" for Key Vault, so a firewall
# would need a private endpoint, and the private DNS link that requires has arguments
# that differ between azurerm 4.x and 5.x (docs/azure.md, "Limits").

resource "azurerm_key_vault" "main" {
  name                          = "kv-${local.compact}"
  location                      = azurerm_resource_group.main.location
  resource_group_name           = azurerm_resource_group.main.name
  tenant_id                     = data.azurerm_client_config.current.tenant_id
  sku_name                      = "standard"
  rbac_authorization_enabled    = true
  purge_protection_enabled      = true
  soft_delete_retention_days    = 30
  public_network_access_enabled = true # RBAC-only; see the header
  tags                          = local.tags

  network_acls {
    bypass         = "AzureServices"
    default_action = "Allow"
  }
  # checkov:skip=CKV_AZURE_189:App Service resolves Key Vault references over the public endpoint (no private endpoint, see header); every read needs an RBAC role
  # checkov:skip=CKV_AZURE_109:Same reason: a deny-by-default firewall would cut the web app's Key Vault references; access is RBAC-only
  # checkov:skip=CKV2_AZURE_32:A private endpoint needs azurerm_private_dns_zone_virtual_network_link, whose arguments differ between azurerm 4.x and 5.x
}

resource "azurerm_role_assignment" "deployer_secrets_officer" {
  scope                = azurerm_key_vault.main.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "azurerm_key_vault_secret" "vpn_psk" {
  name            = "vpn-psk"
  key_vault_id    = azurerm_key_vault.main.id
  value           = var.vpn_shared_key
  content_type    = "text/plain; ikev2-psk"
  expiration_date = var.vpn_psk_expires
  tags            = local.tags
  depends_on      = [azurerm_role_assignment.deployer_secrets_officer]
}

resource "azurerm_key_vault_secret" "storage_connection" {
  name            = "storage-connection-string"
  key_vault_id    = azurerm_key_vault.main.id
  value           = azurerm_storage_account.main.primary_connection_string
  content_type    = "text/plain; azure-storage-connection-string"
  expiration_date = var.secrets_expire
  tags            = local.tags
  depends_on      = [azurerm_role_assignment.deployer_secrets_officer]
}

resource "azurerm_key_vault_secret" "webpubsub_connection" {
  name            = "webpubsub-connection-string"
  key_vault_id    = azurerm_key_vault.main.id
  value           = azurerm_web_pubsub.main.primary_connection_string
  content_type    = "text/plain; webpubsub-connection-string"
  expiration_date = var.secrets_expire
  tags            = local.tags
  depends_on      = [azurerm_role_assignment.deployer_secrets_officer]
}

resource "azurerm_key_vault_secret" "ingest_token" {
  name            = "ingest-token"
  key_vault_id    = azurerm_key_vault.main.id
  value           = var.ingest_token
  content_type    = "text/plain; bearer-token"
  expiration_date = var.secrets_expire
  tags            = local.tags
  depends_on      = [azurerm_role_assignment.deployer_secrets_officer]
}
