# Site-to-site VPN to the on-premises strongSwan gateway: route-based, zone-redundant
# gateway with a static public IP, the local network gateway describing the far side,
# and an IKEv2 connection whose PSK comes from Key Vault (keyvault.tf). The IPsec
# policy is pinned so both ends agree; terraform/vpn/swanctl_config.py turns the outputs
# (outputs.tf) into the matching swanctl.conf.

locals {
  # Azure names; terraform/vpn/swanctl_config.py maps them to strongSwan proposal keywords.
  ipsec_policy = {
    dh_group         = "DHGroup14"
    ike_encryption   = "AES256"
    ike_integrity    = "SHA256"
    ipsec_encryption = "GCMAES256"
    ipsec_integrity  = "GCMAES256"
    pfs_group        = "ECP256"
    sa_lifetime      = 3600
    sa_datasize      = 102400000
  }
}

resource "azurerm_public_ip" "vpn" {
  name                = "pip-${local.base}-vpn"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  allocation_method   = "Static"
  sku                 = "Standard"
  zones               = ["1", "2", "3"]
  tags                = local.tags
}

resource "azurerm_virtual_network_gateway" "vpn" {
  name                = "vgw-${local.base}"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  type                = "Vpn"
  vpn_type            = "RouteBased"
  sku                 = var.vpn_gateway_sku
  generation          = "Generation1"
  active_active       = false
  bgp_enabled         = false
  tags                = local.tags

  ip_configuration {
    name                          = "vnetGatewayConfig"
    public_ip_address_id          = azurerm_public_ip.vpn.id
    private_ip_address_allocation = "Dynamic"
    subnet_id                     = azurerm_subnet.gateway.id
  }
}

resource "azurerm_local_network_gateway" "onprem" {
  name                = "lgw-${local.base}-onprem"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  gateway_address     = var.onprem_gateway_ip
  address_space       = var.onprem_address_space
  tags                = local.tags
}

resource "azurerm_virtual_network_gateway_connection" "onprem" {
  name                       = "cn-${local.base}-onprem"
  location                   = azurerm_resource_group.main.location
  resource_group_name        = azurerm_resource_group.main.name
  type                       = "IPsec"
  connection_protocol        = "IKEv2"
  virtual_network_gateway_id = azurerm_virtual_network_gateway.vpn.id
  local_network_gateway_id   = azurerm_local_network_gateway.onprem.id
  # The PSK's single source of truth is Key Vault: rotate it there (and in
  # TF_VAR_vpn_shared_key), then apply; the connection follows the secret.
  shared_key          = azurerm_key_vault_secret.vpn_psk.value
  dpd_timeout_seconds = 45
  tags                = local.tags

  ipsec_policy {
    dh_group         = local.ipsec_policy.dh_group
    ike_encryption   = local.ipsec_policy.ike_encryption
    ike_integrity    = local.ipsec_policy.ike_integrity
    ipsec_encryption = local.ipsec_policy.ipsec_encryption
    ipsec_integrity  = local.ipsec_policy.ipsec_integrity
    pfs_group        = local.ipsec_policy.pfs_group
    sa_lifetime      = local.ipsec_policy.sa_lifetime
    sa_datasize      = local.ipsec_policy.sa_datasize
  }
}
