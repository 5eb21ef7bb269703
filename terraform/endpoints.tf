# Private endpoints of Key Vault and Table Storage in snet-endpoints, with the private
# DNS zones that make their public names resolve to them inside the VNet. The backend
# web app routes all outbound traffic into the VNet (app.tf), so it resolves Key Vault
# references and reaches its tables here while both firewalls deny the internet.

locals {
  private_endpoints = {
    vault = {
      resource_id = azurerm_key_vault.main.id
      subresource = "vault"
      zone        = "privatelink.vaultcore.azure.net"
    }
    table = {
      resource_id = azurerm_storage_account.main.id
      subresource = "table"
      zone        = "privatelink.table.core.windows.net"
    }
  }
}

resource "azurerm_private_dns_zone" "endpoints" {
  for_each            = local.private_endpoints
  name                = each.value.zone
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "endpoints" {
  for_each              = local.private_endpoints
  name                  = "link-${each.key}"
  resource_group_name   = azurerm_resource_group.main.name
  private_dns_zone_name = azurerm_private_dns_zone.endpoints[each.key].name
  virtual_network_id    = azurerm_virtual_network.main.id
  registration_enabled  = false
  tags                  = local.tags
}

resource "azurerm_private_endpoint" "endpoints" {
  for_each            = local.private_endpoints
  name                = "pe-${local.base}-${each.key}"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  subnet_id           = azurerm_subnet.endpoints.id
  tags                = local.tags

  private_service_connection {
    name                           = "psc-${each.key}"
    private_connection_resource_id = each.value.resource_id
    subresource_names              = [each.value.subresource]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "default"
    private_dns_zone_ids = [azurerm_private_dns_zone.endpoints[each.key].id]
  }
}
