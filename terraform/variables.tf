# Inputs of the Azure stack. Every variable that shapes a name, a network or a secret
# is validated here, so a bad tfvars fails at plan with the variable's name and reason
# instead of half-way through an apply.

variable "subscription_id" {
  description = "Azure subscription to deploy into (GUID)."
  type        = string
  validation {
    condition     = can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", var.subscription_id))
    error_message = "subscription_id must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."
  }
}

variable "name_prefix" {
  description = "Short lowercase prefix of every resource name; storage, registry and vault names are global, so pick one unique to you."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9]{2,9}$", var.name_prefix))
    error_message = "name_prefix must be 3-10 characters, lowercase letters and digits, starting with a letter (it ends up in storage and registry names)."
  }
}

variable "environment" {
  description = "Deployment stage; part of every name and of the tags."
  type        = string
  default     = "prod"
  validation {
    condition     = contains(["dev", "test", "prod"], var.environment)
    error_message = "environment must be one of dev, test, prod."
  }
}

variable "location" {
  description = "Azure region of every resource (the Static Web App uses static_site_location)."
  type        = string
  default     = "westeurope"
  validation {
    condition     = can(regex("^[a-z]+[a-z0-9]*$", var.location))
    error_message = "location must be an Azure region name like westeurope (lowercase, no spaces)."
  }
}

variable "static_site_location" {
  description = "Region of the Static Web App (only a few regions host it)."
  type        = string
  default     = "westeurope"
  validation {
    condition     = contains(["westus2", "centralus", "eastus2", "westeurope", "eastasia"], var.static_site_location)
    error_message = "static_site_location must be a region that hosts Static Web Apps: westus2, centralus, eastus2, westeurope or eastasia."
  }
}

variable "tags" {
  description = "Extra tags merged into every resource's tags (project, environment and managed-by are always set)."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for k, v in var.tags : length(k) <= 512 && length(v) <= 256 && !can(regex("[<>%&\\\\?/]", k))])
    error_message = "tags: keys must be at most 512 characters without < > % & \\ ? /, values at most 256 characters."
  }
}

variable "vnet_address_space" {
  description = "Address space of the platform's virtual network."
  type        = list(string)
  default     = ["10.60.0.0/16"]
  validation {
    condition     = length(var.vnet_address_space) > 0 && alltrue([for c in var.vnet_address_space : can(cidrhost(c, 0))])
    error_message = "vnet_address_space must be a non-empty list of CIDR blocks like 10.60.0.0/16."
  }
}

variable "gateway_subnet_cidr" {
  description = "GatewaySubnet of the VPN gateway; Azure needs /27 or larger."
  type        = string
  default     = "10.60.255.0/27"
  validation {
    condition     = can(cidrhost(var.gateway_subnet_cidr, 0)) && tonumber(split("/", var.gateway_subnet_cidr)[1]) <= 27
    error_message = "gateway_subnet_cidr must be a CIDR block of size /27 or larger (Azure requires it for VPN gateways)."
  }
}

variable "app_subnet_cidr" {
  description = "Subnet the web app integrates with, so it reaches on-premises through the VPN."
  type        = string
  default     = "10.60.1.0/24"
  validation {
    condition     = can(cidrhost(var.app_subnet_cidr, 0)) && tonumber(split("/", var.app_subnet_cidr)[1]) <= 28
    error_message = "app_subnet_cidr must be a CIDR block of size /28 or larger (App Service VNet integration)."
  }
}

variable "vpn_gateway_sku" {
  description = "VPN gateway SKU. Only the zone-redundant AZ SKUs are offered: non-AZ SKUs are being retired by Azure."
  type        = string
  default     = "VpnGw1AZ"
  validation {
    condition     = contains(["VpnGw1AZ", "VpnGw2AZ", "VpnGw3AZ", "VpnGw4AZ", "VpnGw5AZ"], var.vpn_gateway_sku)
    error_message = "vpn_gateway_sku must be one of VpnGw1AZ..VpnGw5AZ."
  }
}

variable "onprem_gateway_ip" {
  description = "Public IPv4 address of the on-premises strongSwan gateway (the IB Gateway side)."
  type        = string
  validation {
    condition     = can(regex("^((25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])$", var.onprem_gateway_ip))
    error_message = "onprem_gateway_ip must be an IPv4 address like 203.0.113.10."
  }
}

variable "onprem_address_space" {
  description = "On-premises networks reachable through the tunnel (where IB Gateway listens)."
  type        = list(string)
  validation {
    condition     = length(var.onprem_address_space) > 0 && alltrue([for c in var.onprem_address_space : can(cidrhost(c, 0))])
    error_message = "onprem_address_space must be a non-empty list of CIDR blocks like 192.168.50.0/24."
  }
}

variable "vpn_shared_key" {
  description = "IKEv2 pre-shared key. Stored in Key Vault; the connection reads it from there. Pass it as TF_VAR_vpn_shared_key, never in a file."
  type        = string
  sensitive   = true
  validation {
    # Azure accepts printable ASCII up to 128 characters; 32 is the floor for a PSK
    # that resists offline guessing. Quotes are refused so the generated swanctl.conf
    # never needs escaping.
    condition     = length(var.vpn_shared_key) >= 32 && length(var.vpn_shared_key) <= 128 && can(regex("^[A-Za-z0-9+/=._~-]+$", var.vpn_shared_key))
    error_message = "vpn_shared_key must be 32-128 characters of letters, digits and + / = . _ ~ - (e.g. `openssl rand -base64 48`)."
  }
}

variable "vpn_psk_expires" {
  description = "Expiry of the PSK secret in Key Vault (RFC 3339, UTC); rotate before it."
  type        = string
  validation {
    condition     = can(formatdate("YYYY", var.vpn_psk_expires)) && endswith(var.vpn_psk_expires, "Z")
    error_message = "vpn_psk_expires must be an RFC 3339 UTC timestamp like 2027-06-30T00:00:00Z."
  }
}

variable "ingest_token" {
  description = "Bearer token the detectors use to post to the backend (SPY_BACKEND_INGEST_TOKEN). Pass as TF_VAR_ingest_token."
  type        = string
  sensitive   = true
  validation {
    condition     = length(var.ingest_token) >= 32
    error_message = "ingest_token must be at least 32 characters (e.g. `openssl rand -hex 32`)."
  }
}

variable "secrets_expire" {
  description = "Expiry of the application secrets in Key Vault (RFC 3339, UTC)."
  type        = string
  default     = "2027-12-31T00:00:00Z"
  validation {
    condition     = can(formatdate("YYYY", var.secrets_expire)) && endswith(var.secrets_expire, "Z")
    error_message = "secrets_expire must be an RFC 3339 UTC timestamp like 2027-12-31T00:00:00Z."
  }
}

variable "backend_image" {
  description = "Backend image in the registry, name:tag (the images workflow pushes it; Argo CD-style bumps change only the tag)."
  type        = string
  default     = "spy-backend:latest"
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$", var.backend_image))
    error_message = "backend_image must be repository:tag, e.g. spy-backend:0.1.0."
  }
}

variable "app_service_sku" {
  description = "App Service plan SKU of the backend; only Premium v3 plans, the ones that can balance across zones."
  type        = string
  default     = "P0v3"
  validation {
    condition     = contains(["P0v3", "P1v3", "P2v3", "P3v3", "P1mv3", "P2mv3"], var.app_service_sku)
    error_message = "app_service_sku must be a zone-redundant Premium v3 SKU: P0v3, P1v3, P2v3, P3v3, P1mv3 or P2mv3."
  }
}

variable "webpubsub_sku" {
  description = "Web PubSub SKU (Free_F1 has no SLA; Standard_S1 for production)."
  type        = string
  default     = "Standard_S1"
  validation {
    condition     = contains(["Free_F1", "Standard_S1", "Premium_P1"], var.webpubsub_sku)
    error_message = "webpubsub_sku must be one of Free_F1, Standard_S1, Premium_P1."
  }
}

variable "webpubsub_hub" {
  description = "Hub name the backend publishes to (SPY_BACKEND_WEBPUBSUB_HUB)."
  type        = string
  default     = "spy"
  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_]{0,127}$", var.webpubsub_hub))
    error_message = "webpubsub_hub must start with a letter and hold only letters, digits and _ (max 128)."
  }
}

variable "table_prefix" {
  description = "Prefix of the backend's table names (SPY_BACKEND_TABLE_PREFIX)."
  type        = string
  default     = "spy"
  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9]{0,39}$", var.table_prefix))
    error_message = "table_prefix must start with a letter, letters and digits only, at most 40 characters."
  }
}

variable "log_retention_days" {
  description = "Retention of the Log Analytics workspace (30-730 days)."
  type        = number
  default     = 30
  validation {
    condition     = var.log_retention_days >= 30 && var.log_retention_days <= 730
    error_message = "log_retention_days must be between 30 and 730."
  }
}

variable "log_shipper_principal_id" {
  description = "Object ID of the identity Fluent Bit uses to send container logs (workload identity or service principal); null skips the role assignment."
  type        = string
  default     = null
  validation {
    condition     = var.log_shipper_principal_id == null || can(regex("^[0-9a-fA-F-]{36}$", coalesce(var.log_shipper_principal_id, "x")))
    error_message = "log_shipper_principal_id must be an object ID (GUID) or null."
  }
}
