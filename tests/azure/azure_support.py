"""Shared by tests/azure: where the Terraform tree is, the swanctl generator, outputs.

tests/azure has no __init__.py and no conftest.py on purpose: a regular package named
`azure` on the test path would shadow the Azure SDK's `azure` namespace package that
the backend tests import, and a second `conftest` module would clash with tests/'s.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

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
