"""Properties of terraform/*.tf read with python-hcl2: what must hold whatever the
provider version (the tool tests in test_azure_terraform_tools.py validate the schema).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from azure_support import REPO, TERRAFORM, load_generator, tf


def resource(rtype: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = tf()["resource"][rtype][name]
    return body


def test_vpn_connection_is_ikev2_ipsec_with_the_psk_from_key_vault() -> None:
    conn = resource("azurerm_virtual_network_gateway_connection", "onprem")
    assert conn["type"] == "IPsec"
    assert conn["connection_protocol"] == "IKEv2"
    ref = re.fullmatch(r"\$\{azurerm_key_vault_secret\.(\w+)\.value\}", conn["shared_key"])
    assert ref, f"shared_key must read a Key Vault secret, got {conn['shared_key']}"
    secret = resource("azurerm_key_vault_secret", ref.group(1))
    assert secret["key_vault_id"] == "${azurerm_key_vault.main.id}"
    assert secret["expiration_date"] and secret["content_type"]
    assert conn["ipsec_policy"], "the IPsec policy is pinned so the generated swanctl.conf matches"


def test_vpn_gateway_is_route_based_in_gateway_subnet() -> None:
    gw = resource("azurerm_virtual_network_gateway", "vpn")
    assert (gw["type"], gw["vpn_type"]) == ("Vpn", "RouteBased")
    assert gw["ip_configuration"][0]["subnet_id"] == "${azurerm_subnet.gateway.id}"
    assert resource("azurerm_subnet", "gateway")["name"] == "GatewaySubnet"
    pip = resource("azurerm_public_ip", "vpn")
    assert (pip["allocation_method"], pip["sku"]) == ("Static", "Standard")


def test_pinned_ipsec_policy_is_one_the_generator_maps() -> None:
    gen = load_generator()
    policy = tf()["locals"]["ipsec_policy"]
    assert gen.ike_proposal(policy) == "aes256-sha256-modp2048"
    assert gen.esp_proposal(policy) == "aes256gcm16-ecp256"


def test_outputs_the_generator_reads_exist() -> None:
    source = (TERRAFORM / "vpn" / "swanctl_config.py").read_text()
    read = set(re.findall(r'_value\(outputs, "(\w+)"\)', source))
    assert read >= {"vpn_gateway_public_ip", "vpn_ipsec_policy", "vpn_shared_key"}
    assert read <= set(tf()["output"]), read - set(tf()["output"])


def test_key_vault_uses_rbac_and_purge_protection() -> None:
    kv = resource("azurerm_key_vault", "main")
    assert kv["rbac_authorization_enabled"] is True
    assert kv["purge_protection_enabled"] is True
    assert "access_policy" not in kv  # RBAC only
    assert kv["soft_delete_retention_days"] >= 7


def test_tables_use_storage_account_id() -> None:
    tables = tf()["resource"]["azurerm_storage_table"]
    assert tables
    for name, body in tables.items():
        assert "storage_account_name" not in body, f"azurerm_storage_table.{name}: deprecated"
        assert body["storage_account_id"] == "${azurerm_storage_account.main.id}"


def test_every_variable_is_described_typed_and_validated() -> None:
    for name, var in tf()["variable"].items():
        assert var.get("description"), f"variable {name}: no description"
        assert var.get("type"), f"variable {name}: no type"
        rules = var.get("validation", [])
        assert rules, f"variable {name}: no validation block"
        for rule in rules:
            assert f"var.{name}" in rule["condition"], f"variable {name}: validation ignores it"
            assert name in rule["error_message"], f"variable {name}: error does not name it"


@pytest.mark.parametrize("name", ["vpn_shared_key", "ingest_token"])
def test_secret_variables_are_sensitive(name: str) -> None:
    assert tf()["variable"][name].get("sensitive") is True


SECRET_ATTR = re.compile(
    r"\.(value|api_key|connection_string|primary_connection_string|primary_access_key|"
    r"primary_key|instrumentation_key|password)\}"
)


def test_outputs_that_grant_access_are_sensitive() -> None:
    secret_outputs = {n for n, o in tf()["output"].items() if SECRET_ATTR.search(str(o["value"]))}
    assert {"vpn_shared_key", "dashboard_deployment_token"} <= secret_outputs
    for name in secret_outputs:
        assert tf()["output"][name].get("sensitive") is True, f"output {name} leaks a secret"
    for name, out in tf()["output"].items():
        assert out.get("description"), f"output {name}: no description"


# Types that take no tags in azurerm (sub-resources and assignments).
UNTAGGED = {
    "azurerm_subnet",
    "azurerm_subnet_network_security_group_association",
    "azurerm_role_assignment",
    "azurerm_storage_table",
    "azurerm_web_pubsub_hub",
    "azurerm_monitor_diagnostic_setting",
    "azurerm_log_analytics_workspace_table_custom_log",
}


def test_every_taggable_resource_carries_the_common_tags() -> None:
    for rtype, named in tf()["resource"].items():
        if rtype in UNTAGGED:
            continue
        for name, body in named.items():
            assert body.get("tags") == "${local.tags}", f"{rtype}.{name}: tags missing"


def test_remote_state_backend_is_azurerm_with_an_example() -> None:
    backends = [b for t in tf()["terraform"] for b in t.get("backend", [])]
    assert backends and "azurerm" in backends[0]
    example = (TERRAFORM / "backend.hcl.example").read_text()
    assert "use_azuread_auth     = true" in example


def test_required_provider_spans_azurerm_4_and_5() -> None:
    req = tf()["terraform"][0]["required_providers"][0]["azurerm"]
    assert req["source"] == "hashicorp/azurerm"
    assert req["version"].startswith(">= 4.") and "< 6.0.0" in req["version"]


def test_no_lock_file_or_state_is_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "terraform"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    bad = [p for p in tracked if p.endswith((".terraform.lock.hcl", ".tfstate", ".tfvars"))]
    assert not bad, f"never commit a lock file holding a local build's hash, nor state: {bad}"


CHECKOV_SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def test_every_checkov_skip_is_justified_in_place() -> None:
    skips = [
        (p.name, m.group(1), (m.group(2) or "").strip())
        for p in TERRAFORM.glob("*.tf")
        for m in CHECKOV_SKIP.finditer(p.read_text())
    ]
    assert skips  # the pattern finds the skips that exist
    for file, check, why in skips:
        assert len(why) >= 30, f"{file}: checkov skip {check} needs a reason (got {why!r})"


def test_web_app_reads_secrets_only_through_key_vault_references() -> None:
    app = resource("azurerm_linux_web_app", "backend")
    kv_refs = tf()["locals"]["kv_ref"]
    for setting in (
        "SPY_BACKEND_STORAGE_CONNECTION_STRING",
        "SPY_BACKEND_WEBPUBSUB_CONNECTION_STRING",
        "SPY_BACKEND_INGEST_TOKEN",
    ):
        assert setting in str(kv_refs)
    assert "@Microsoft.KeyVault(SecretUri=" in str(kv_refs)
    assert app["https_only"] is True
    assert app["site_config"][0]["minimum_tls_version"] == "1.2"
    assert app["site_config"][0]["container_registry_use_managed_identity"] is True


def test_log_pipeline_stream_matches_its_table(tmp_path: Path) -> None:
    loc = tf()["locals"]
    assert loc["log_table"].endswith("_CL")
    assert loc["log_stream"] == "Custom-${local.log_table}"
    dcr = resource("azurerm_monitor_data_collection_rule", "logs")
    assert dcr["data_flow"][0]["streams"] == ["${local.log_stream}"]
