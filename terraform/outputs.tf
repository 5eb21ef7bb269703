# Outputs read by people, by the workflows and by terraform/vpn/swanctl_config.py (the
# strongSwan config generator reads `tofu output -json`: vpn_gateway_public_ip,
# vnet_address_space, onprem_address_space, vpn_ipsec_policy, vpn_psk_secret_id).
# Anything that grants access is marked sensitive.

output "resource_group_name" {
  description = "Resource group holding the whole stack."
  value       = azurerm_resource_group.main.name
}

output "vpn_gateway_public_ip" {
  description = "Public IP of the Azure VPN gateway: the remote address of the on-premises strongSwan."
  value       = azurerm_public_ip.vpn.ip_address
}

output "onprem_gateway_ip" {
  description = "Public IP the Azure side expects the on-premises gateway at (its IKE identity)."
  value       = azurerm_local_network_gateway.onprem.gateway_address
}

output "vnet_address_space" {
  description = "Azure side of the tunnel (remote traffic selectors for strongSwan)."
  value       = azurerm_virtual_network.main.address_space
}

output "onprem_address_space" {
  description = "On-premises side of the tunnel (local traffic selectors for strongSwan)."
  value       = var.onprem_address_space
}

output "vpn_ipsec_policy" {
  description = "IKE/IPsec algorithms pinned on the connection (Azure names)."
  value       = local.ipsec_policy
}

output "vpn_psk_secret_id" {
  description = "Key Vault secret holding the PSK (read it with `az keyvault secret show --id`)."
  value       = azurerm_key_vault_secret.vpn_psk.versionless_id
}

output "vpn_shared_key" {
  description = "The IKEv2 PSK as stored in Key Vault."
  value       = azurerm_key_vault_secret.vpn_psk.value
  sensitive   = true
}

output "acr_login_server" {
  description = "Registry the images workflow pushes to."
  value       = azurerm_container_registry.main.login_server
}

output "backend_url" {
  description = "Public URL of the backend API."
  value       = "https://${azurerm_linux_web_app.backend.default_hostname}"
}

output "dashboard_url" {
  description = "Public URL of the dashboard (Static Web App)."
  value       = "https://${azurerm_static_web_app.dashboard.default_host_name}"
}

output "dashboard_deployment_token" {
  description = "Static Web App deployment token (the deploy workflow uploads the dashboard with it)."
  value       = azurerm_static_web_app.dashboard.api_key
  sensitive   = true
}

output "webpubsub_hostname" {
  description = "Web PubSub endpoint the dashboards connect to."
  value       = azurerm_web_pubsub.main.hostname
}

output "storage_account_name" {
  description = "Storage account of the backend's tables."
  value       = azurerm_storage_account.main.name
}

output "key_vault_uri" {
  description = "Key Vault holding the PSK and the backend's secrets."
  value       = azurerm_key_vault.main.vault_uri
}

output "log_analytics_workspace_id" {
  description = "Workspace (customer) ID to query logs in."
  value       = azurerm_log_analytics_workspace.main.workspace_id
}

output "logs_ingestion_endpoint" {
  description = "Data collection endpoint URL Fluent Bit posts to (dce_url)."
  value       = azurerm_monitor_data_collection_endpoint.logs.logs_ingestion_endpoint
}

output "logs_dcr_immutable_id" {
  description = "Immutable ID of the data collection rule (Fluent Bit dcr_id)."
  value       = azurerm_monitor_data_collection_rule.logs.immutable_id
}

output "logs_table_name" {
  description = "Custom table Fluent Bit writes to (Fluent Bit table_name)."
  value       = local.log_table
}

output "application_insights_connection_string" {
  description = "Application Insights connection string (holds the ingestion key)."
  value       = azurerm_application_insights.main.connection_string
  sensitive   = true
}
