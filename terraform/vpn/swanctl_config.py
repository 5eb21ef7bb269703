#!/usr/bin/env python3
"""Generate the on-premises strongSwan (swanctl) config from the Terraform outputs.

One command on the IB Gateway side of the tunnel (docs/azure.md):

    tofu -chdir=terraform output -json | python3 terraform/vpn/swanctl_config.py \\
        --output /etc/swanctl/conf.d/azure.conf

The Azure connection (terraform/vpn.tf) pins its IKE/IPsec algorithms; this module
maps those Azure names to strongSwan proposal keywords, so both ends agree by
construction. Called by people and by tests/azure (config, load and tunnel tests).
Standard library only: it runs on a bare gateway host.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

# Azure's names (azurerm ipsec_policy) -> strongSwan keywords (swanctl.conf proposals).
# Broken algorithms (DES, MD5, 768-bit DH) are left out on purpose: a policy using one
# is refused with the field's name instead of producing a weak tunnel.
IKE_ENCRYPTION = {
    "AES128": "aes128",
    "AES192": "aes192",
    "AES256": "aes256",
    "GCMAES128": "aes128gcm16",
    "GCMAES256": "aes256gcm16",
    "DES3": "3des",
}
IKE_INTEGRITY = {"SHA1": "sha1", "SHA256": "sha256", "SHA384": "sha384"}
DH_GROUP = {
    "DHGroup2": "modp1024",
    "DHGroup14": "modp2048",
    "DHGroup2048": "modp2048",
    "DHGroup24": "modp2048s256",
    "ECP256": "ecp256",
    "ECP384": "ecp384",
}
IPSEC_ENCRYPTION = {
    "AES128": "aes128",
    "AES192": "aes192",
    "AES256": "aes256",
    "GCMAES128": "aes128gcm16",
    "GCMAES192": "aes192gcm16",
    "GCMAES256": "aes256gcm16",
    "DES3": "3des",
}
IPSEC_INTEGRITY = {"SHA1": "sha1", "SHA256": "sha256"}
PFS_GROUP = {
    "None": None,
    "PFS2": "modp1024",
    "PFS14": "modp2048",
    "PFS2048": "modp2048",
    "PFS24": "modp2048s256",
    "ECP256": "ecp256",
    "ECP384": "ecp384",
}
# Characters a PSK may hold (terraform/variables.tf validates the same set): no quote
# or backslash, so the secret needs no escaping inside swanctl.conf.
PSK_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=._~-")


class ConfigError(ValueError):
    """Bad Terraform outputs or arguments; the message names the field and the reason."""


@dataclass(frozen=True)
class Tunnel:
    name: str
    local_addrs: str
    local_id: str
    remote_addr: str
    local_ts: tuple[str, ...]
    remote_ts: tuple[str, ...]
    ike_proposal: str
    esp_proposal: str
    child_lifetime_s: int
    psk: str


def _pick(table: Mapping[str, str | None], field: str, value: object) -> str | None:
    if not isinstance(value, str) or value not in table:
        allowed = ", ".join(sorted(table))
        raise ConfigError(
            f"vpn_ipsec_policy.{field}: {value!r} is not supported (use one of {allowed})"
        )
    return table[value]


def ike_proposal(policy: Mapping[str, Any]) -> str:
    """IKE SA proposal: encryption-integrity-dh, or encryption-prf-dh for AES-GCM."""
    enc = _pick(IKE_ENCRYPTION, "ike_encryption", policy.get("ike_encryption"))
    integ = _pick(IKE_INTEGRITY, "ike_integrity", policy.get("ike_integrity"))
    dh = _pick(DH_GROUP, "dh_group", policy.get("dh_group"))
    # An AEAD cipher carries its own integrity; IKE then needs a PRF, which Azure
    # derives from the integrity setting (RFC 5282 §7).
    middle = f"prf{integ}" if str(enc).endswith("gcm16") else integ
    return f"{enc}-{middle}-{dh}"


def esp_proposal(policy: Mapping[str, Any]) -> str:
    """CHILD SA (ESP) proposal: encryption[-integrity][-pfs group]."""
    raw_enc = policy.get("ipsec_encryption")
    enc = _pick(IPSEC_ENCRYPTION, "ipsec_encryption", raw_enc)
    parts = [str(enc)]
    if str(enc).endswith("gcm16"):
        # Azure requires ipsec_integrity to name the same GCM cipher as the encryption.
        if policy.get("ipsec_integrity") != raw_enc:
            raise ConfigError(
                "vpn_ipsec_policy.ipsec_integrity: must equal ipsec_encryption "
                f"({raw_enc}) for AES-GCM"
            )
    else:
        parts.append(str(_pick(IPSEC_INTEGRITY, "ipsec_integrity", policy.get("ipsec_integrity"))))
    pfs = _pick(PFS_GROUP, "pfs_group", policy.get("pfs_group"))
    if pfs is not None:
        parts.append(pfs)
    return "-".join(parts)


def _value(outputs: Mapping[str, Any], name: str) -> Any:
    if name not in outputs:
        raise ConfigError(
            f"{name}: missing from the Terraform outputs (run `tofu output -json` in terraform/)"
        )
    entry = outputs[name]
    return entry["value"] if isinstance(entry, Mapping) and "value" in entry else entry


def _ip(name: str, value: object) -> str:
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise ConfigError(f"{name}: {value!r} is not an IP address") from None


def _cidrs(name: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{name}: expected a non-empty list of CIDR blocks, got {value!r}")
    try:
        return tuple(str(ipaddress.ip_network(str(c))) for c in value)
    except ValueError as err:
        raise ConfigError(f"{name}: {err}") from None


def check_psk(psk: str) -> str:
    psk = psk.strip()
    if len(psk) < 32:
        raise ConfigError("psk: shorter than 32 characters")
    if not set(psk) <= PSK_CHARS:
        raise ConfigError("psk: holds characters outside letters, digits and + / = . _ ~ -")
    return psk


def tunnel_from_outputs(
    outputs: Mapping[str, Any],
    psk: str | None = None,
    local_addrs: str = "%any",
    name: str = "azure",
) -> Tunnel:
    """The on-premises end of the tunnel described by `tofu output -json`."""
    policy = _value(outputs, "vpn_ipsec_policy")
    if not isinstance(policy, Mapping):
        raise ConfigError(f"vpn_ipsec_policy: expected an object, got {policy!r}")
    lifetime = policy.get("sa_lifetime", 3600)
    if not isinstance(lifetime, int) or lifetime < 300:
        raise ConfigError(
            f"vpn_ipsec_policy.sa_lifetime: {lifetime!r} is not a number of seconds >= 300"
        )
    if psk is None:
        psk = str(_value(outputs, "vpn_shared_key"))
    if not name.isidentifier():
        raise ConfigError(f"name: {name!r} must be letters, digits and _")
    return Tunnel(
        name=name,
        local_addrs=local_addrs,
        local_id=_ip("onprem_gateway_ip", _value(outputs, "onprem_gateway_ip")),
        remote_addr=_ip("vpn_gateway_public_ip", _value(outputs, "vpn_gateway_public_ip")),
        local_ts=_cidrs("onprem_address_space", _value(outputs, "onprem_address_space")),
        remote_ts=_cidrs("vnet_address_space", _value(outputs, "vnet_address_space")),
        ike_proposal=ike_proposal(policy),
        esp_proposal=esp_proposal(policy),
        child_lifetime_s=lifetime,
        psk=check_psk(psk),
    )


def render(t: Tunnel) -> str:
    """swanctl.conf text for one route-based Azure connection (IKEv2, PSK)."""
    # Rekey before Azure does (Azure: IKE SA 28800 s, CHILD SA sa_lifetime), with
    # strongSwan's default jitter, so the two ends never both rekey at once.
    child_rekey = max(t.child_lifetime_s * 9 // 10, 240)
    return f"""# Generated by terraform/vpn/swanctl_config.py from `tofu output -json`; do not edit.
# Azure VPN gateway {t.remote_addr}, IKEv2 with a pre-shared key (Key Vault secret vpn-psk).
connections {{
  {t.name} {{
    version = 2
    local_addrs = {t.local_addrs}
    remote_addrs = {t.remote_addr}
    proposals = {t.ike_proposal}
    rekey_time = 25200s
    dpd_delay = 15s
    encap = no
    mobike = no
    local {{
      auth = psk
      id = {t.local_id}
    }}
    remote {{
      auth = psk
      id = {t.remote_addr}
    }}
    children {{
      {t.name} {{
        local_ts = {", ".join(t.local_ts)}
        remote_ts = {", ".join(t.remote_ts)}
        esp_proposals = {t.esp_proposal}
        rekey_time = {child_rekey}s
        life_time = {t.child_lifetime_s}s
        dpd_action = restart
        start_action = start
        close_action = start
      }}
    }}
  }}
}}
secrets {{
  ike-{t.name} {{
    id-local = {t.local_id}
    id-remote = {t.remote_addr}
    secret = "{t.psk}"
  }}
}}
"""


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="swanctl_config.py",
        description="Write the on-premises strongSwan swanctl.conf for the Azure VPN "
        "from `tofu output -json`.",
        epilog="example: tofu -chdir=terraform output -json | "
        "%(prog)s --output /etc/swanctl/conf.d/azure.conf",
    )
    p.add_argument("--outputs", default="-", help="file with `tofu output -json` (default: stdin)")
    p.add_argument(
        "--psk-file",
        type=Path,
        help="read the PSK from this file (e.g. from `az keyvault secret show`) "
        "instead of the vpn_shared_key output",
    )
    p.add_argument(
        "--local-addrs", default="%any", help="address(es) charon listens on (default %%any)"
    )
    p.add_argument("--name", default="azure", help="connection and child name (default azure)")
    p.add_argument("--output", type=Path, help="write here with mode 0600 (default: stdout)")
    return p.parse_args(argv)


def _read_outputs(src: str, stdin: TextIO) -> Mapping[str, Any]:
    text = stdin.read() if src == "-" else Path(src).read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"outputs: not JSON ({err.msg} at line {err.lineno}); pass `tofu output -json`"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError("outputs: expected the JSON object `tofu output -json` prints")
    return data


def main(argv: Sequence[str] | None = None, stdin: TextIO = sys.stdin) -> int:
    args = _parse_args(argv)
    try:
        outputs = _read_outputs(args.outputs, stdin)
        psk = args.psk_file.read_text() if args.psk_file else None
        text = render(tunnel_from_outputs(outputs, psk, args.local_addrs, args.name))
    except (ConfigError, OSError) as err:
        print(f"swanctl_config: {err}", file=sys.stderr)
        return 2
    if args.output is None:
        sys.stdout.write(text)
        return 0
    # The file holds the PSK: create it 0600 before writing a byte.
    fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    print(
        f"swanctl_config: wrote {args.output} (mode 0600); load it with `swanctl --load-all`",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
