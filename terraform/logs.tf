# Container logs -> Log Analytics. Fluent Bit on the cluster (config in
# logs/fluent-bit.yaml, docs/azure.md) tails the JSON lines every component writes
# and posts them to the Logs Ingestion API: data collection endpoint (DCE) -> data
# collection rule (DCR) -> custom table. The DCR's KQL lifts the fields our two JSON
# log shapes carry (spy_detector.logs: level/logger/msg; kopf's JSON: severity/message)
# into columns, keeping the whole record in Record. (The HTTP Data Collector API that
# older `azure` outputs use is retired by Azure; this is its replacement.)

locals {
  log_table  = "SpyContainerLogs_CL"
  log_stream = "Custom-${local.log_table}" # Fluent Bit posts to streams/Custom-<table_name>
  log_columns = {
    TimeGenerated = "datetime"
    Namespace     = "string"
    Pod           = "string"
    Container     = "string"
    Stream        = "string"
    Record        = "dynamic" # the JSON log line, parsed (Fluent Bit merge_log_key)
    Log           = "string"  # a line that was not JSON, as written
  }
}

resource "azurerm_monitor_data_collection_endpoint" "logs" {
  name                          = "dce-${local.base}"
  location                      = azurerm_resource_group.main.location
  resource_group_name           = azurerm_resource_group.main.name
  public_network_access_enabled = true # the cluster may run anywhere; posts need an Entra token
  tags                          = local.tags
}

resource "azurerm_log_analytics_workspace_table_custom_log" "containers" {
  name              = local.log_table
  workspace_id      = azurerm_log_analytics_workspace.main.id
  description       = "JSON logs of the spy-options containers, shipped by Fluent Bit"
  retention_in_days = var.log_retention_days

  dynamic "column" {
    for_each = merge(local.log_columns, { Level = "string", Logger = "string", Message = "string" })
    content {
      name = column.key
      # Table column types are camel-cased names of the DCR stream types.
      type = column.value == "datetime" ? "dateTime" : column.value
    }
  }
}

resource "azurerm_monitor_data_collection_rule" "logs" {
  name                        = "dcr-${local.base}-containers"
  location                    = azurerm_resource_group.main.location
  resource_group_name         = azurerm_resource_group.main.name
  data_collection_endpoint_id = azurerm_monitor_data_collection_endpoint.logs.id
  description                 = "Fluent Bit container logs -> ${local.log_table}"
  tags                        = local.tags

  stream_declaration {
    stream_name = local.log_stream
    dynamic "column" {
      for_each = local.log_columns
      content {
        name = column.key
        type = column.value
      }
    }
  }

  destinations {
    log_analytics {
      name                  = "workspace"
      workspace_resource_id = azurerm_log_analytics_workspace.main.id
    }
  }

  data_flow {
    streams       = [local.log_stream]
    destinations  = ["workspace"]
    output_stream = local.log_stream
    transform_kql = "source | extend Level = coalesce(tostring(Record.level), tostring(Record.severity)), Logger = tostring(Record.logger), Message = coalesce(tostring(Record.msg), tostring(Record.message), Log)"
  }

  depends_on = [azurerm_log_analytics_workspace_table_custom_log.containers]
}

# The identity Fluent Bit authenticates as may only publish to this one rule.
resource "azurerm_role_assignment" "log_shipper" {
  count                = var.log_shipper_principal_id == null ? 0 : 1
  scope                = azurerm_monitor_data_collection_rule.logs.id
  role_definition_name = "Monitoring Metrics Publisher"
  principal_id         = var.log_shipper_principal_id
}
