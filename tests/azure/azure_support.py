"""Shared by tests/azure: where the Terraform tree is, the swanctl generator, outputs.

tests/azure has no __init__.py and no conftest.py on purpose: a regular package named
`azure` on the test path would shadow the Azure SDK's `azure` namespace package that
the backend tests import, and a second `conftest` module would clash with tests/'s.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import hcl2

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
GENERATOR = TERRAFORM / "vpn" / "swanctl_config.py"


def load_generator() -> ModuleType:
    """terraform/vpn/swanctl_config.py is a script, not a package: load it by path."""
    if "swanctl_config" in sys.modules:
        return sys.modules["swanctl_config"]
    spec = importlib.util.spec_from_file_location("swanctl_config", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["swanctl_config"] = module
    spec.loader.exec_module(module)
    return module


def outputs_for(
    azure_public: str, onprem_public: str, psk: str, policy: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What `tofu output -json` prints for the outputs the generator reads."""
    values: dict[str, Any] = {
        "vpn_gateway_public_ip": azure_public,
        "onprem_gateway_ip": onprem_public,
        "vnet_address_space": ["10.60.0.0/16"],
        "onprem_address_space": ["192.168.50.0/24"],
        "vpn_ipsec_policy": policy
        or {
            "dh_group": "DHGroup14",
            "ike_encryption": "AES256",
            "ike_integrity": "SHA256",
            "ipsec_encryption": "GCMAES256",
            "ipsec_integrity": "GCMAES256",
            "pfs_group": "ECP256",
            "sa_lifetime": 3600,
            "sa_datasize": 102400000,
        },
        "vpn_shared_key": psk,
    }
    return {
        k: {"sensitive": k == "vpn_shared_key", "type": "string", "value": v}
        for k, v in values.items()
    }


def _clean(node: Any) -> Any:
    """python-hcl2 8 keeps quotes on strings and labels and adds __markers__: drop them."""
    if isinstance(node, dict):
        return {_unquote(k): _clean(v) for k, v in node.items() if not k.startswith("__")}
    if isinstance(node, list):
        return [_clean(v) for v in node]
    if isinstance(node, str):
        return _unquote(node)
    return node


def _unquote(s: str) -> str:
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] == '"' else s


@cache
def tf() -> dict[str, Any]:
    """All .tf files merged: {"resource": {type: {name: body}}, "variable": {...}, ...}."""
    merged: dict[str, Any] = {"resource": {}, "data": {}, "variable": {}, "output": {}}
    merged["locals"] = {}
    merged["terraform"] = []
    for path in sorted(TERRAFORM.glob("*.tf")):
        doc = _clean(hcl2.loads(path.read_text()))
        for kind in ("resource", "data"):
            for block in doc.get(kind, []):
                for rtype, named in block.items():
                    merged[kind].setdefault(rtype, {}).update(named)
        for kind in ("variable", "output"):
            for block in doc.get(kind, []):
                merged[kind].update(block)
        for block in doc.get("locals", []):
            merged["locals"].update(block)
        merged["terraform"].extend(doc.get("terraform", []))
    return merged
