"""terraform/vpn/swanctl_config.py: Azure policy -> strongSwan proposals, errors, CLI,
and the generated file loaded by a real charon (`swanctl --load-all`).

The load tests start charon in a network namespace they create (strongswan_support)
and check swanctl's stderr for `invalid config file`, because swanctl exits 0 on a
syntax error.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from azure_support import GENERATOR, load_generator, outputs_for
from strongswan_support import SWANCTL, Lab, missing_tools

PSK = "Zm9vYmFyYmF6cXV1eDEyMzQ1Njc4OTBhYmNkZWZnaGlq"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return load_generator()


def policy(**overrides: Any) -> dict[str, Any]:
    base = outputs_for("1.2.3.4", "5.6.7.8", PSK)["vpn_ipsec_policy"]["value"]
    return {**base, **overrides}


@pytest.mark.parametrize(
    ("overrides", "ike", "esp"),
    [
        ({}, "aes256-sha256-modp2048", "aes256gcm16-ecp256"),  # terraform/vpn.tf's policy
        (
            {"ike_encryption": "GCMAES256", "ike_integrity": "SHA384", "dh_group": "ECP384"},
            "aes256gcm16-prfsha384-ecp384",
            "aes256gcm16-ecp256",
        ),
        (
            {"ipsec_encryption": "AES256", "ipsec_integrity": "SHA256", "pfs_group": "None"},
            "aes256-sha256-modp2048",
            "aes256-sha256",
        ),
        (
            {"ipsec_encryption": "AES128", "ipsec_integrity": "SHA1", "pfs_group": "PFS2048"},
            "aes256-sha256-modp2048",
            "aes128-sha1-modp2048",
        ),
        ({"dh_group": "DHGroup24", "pfs_group": "PFS24"}, "aes256-sha256-modp2048s256", None),
    ],
)
def test_azure_policy_maps_to_strongswan_proposals(
    gen: ModuleType, overrides: dict[str, Any], ike: str, esp: str | None
) -> None:
    p = policy(**overrides)
    assert gen.ike_proposal(p) == ike
    if esp is not None:
        assert gen.esp_proposal(p) == esp
    else:
        assert gen.esp_proposal(p).endswith("-modp2048s256")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"ike_integrity": "MD5"}, "ike_integrity"),  # broken: refused, not mapped
        ({"ike_encryption": "DES"}, "ike_encryption"),
        ({"dh_group": "DHGroup1"}, "dh_group"),
        ({"pfs_group": "PFSMM"}, "pfs_group"),
        ({"ipsec_integrity": "SHA256"}, "ipsec_integrity"),  # GCM needs GCM integrity
        ({"sa_lifetime": 10}, "sa_lifetime"),
    ],
)
def test_unsupported_policy_is_refused_naming_the_field(
    gen: ModuleType, overrides: dict[str, Any], field: str
) -> None:
    outputs = outputs_for("1.2.3.4", "5.6.7.8", PSK, policy(**overrides))
    with pytest.raises(gen.ConfigError, match=f"vpn_ipsec_policy.{field}"):
        gen.tunnel_from_outputs(outputs)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda o: o.pop("vpn_gateway_public_ip"), "vpn_gateway_public_ip: missing"),
        (
            lambda o: o["onprem_gateway_ip"].update(value="not-an-ip"),
            "onprem_gateway_ip: 'not-an-ip'",
        ),
        (lambda o: o["vnet_address_space"].update(value=[]), "vnet_address_space: expected"),
        (lambda o: o["onprem_address_space"].update(value=["10.0.0.0/33"]), "onprem_address_space"),
        (lambda o: o["vpn_shared_key"].update(value="short"), "psk: shorter than 32"),
        (lambda o: o["vpn_shared_key"].update(value='a"' * 20), "psk: holds characters"),
    ],
)
def test_bad_outputs_are_refused_naming_the_field(
    gen: ModuleType, mutate: Any, message: str
) -> None:
    outputs = outputs_for("1.2.3.4", "5.6.7.8", PSK)
    mutate(outputs)
    with pytest.raises(gen.ConfigError, match=message):
        gen.tunnel_from_outputs(outputs)


def test_rendered_config_is_ikev2_psk_with_the_outputs(gen: ModuleType) -> None:
    text = gen.render(gen.tunnel_from_outputs(outputs_for("20.1.2.3", "198.51.100.7", PSK)))
    assert "version = 2" in text
    assert "remote_addrs = 20.1.2.3" in text
    assert text.count("auth = psk") == 2
    assert "id = 198.51.100.7" in text  # local identity: the LNG's gateway_address
    assert "local_ts = 192.168.50.0/24" in text and "remote_ts = 10.60.0.0/16" in text
    assert f'secret = "{PSK}"' in text
    assert "life_time = 3600s" in text  # the connection's sa_lifetime


def test_cli_help_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(GENERATOR), "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "tofu output -json" in done.stdout and "--psk-file" in done.stdout


def test_cli_reads_stdin_and_writes_a_private_file(tmp_path: Path) -> None:
    out = tmp_path / "azure.conf"
    psk_file = tmp_path / "psk"
    other = "b" * 40
    psk_file.write_text(other + "\n")  # as `az keyvault secret show -o tsv` writes it
    done = subprocess.run(
        [sys.executable, str(GENERATOR), "--output", str(out), "--psk-file", str(psk_file)],
        input=json.dumps(outputs_for("20.1.2.3", "198.51.100.7", PSK)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert f'secret = "{other}"' in out.read_text()  # --psk-file wins over the output
    assert PSK not in done.stdout + done.stderr  # the secret is never echoed


def test_cli_error_is_one_line_naming_the_field(tmp_path: Path) -> None:
    outputs = outputs_for("20.1.2.3", "198.51.100.7", PSK)
    del outputs["vpn_ipsec_policy"]
    done = subprocess.run(
        [sys.executable, str(GENERATOR)],
        input=json.dumps(outputs),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("swanctl_config: vpn_ipsec_policy: missing")
    not_json = subprocess.run(
        [sys.executable, str(GENERATOR)],
        input="Outputs:\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert not_json.returncode == 2 and "outputs: not JSON" in not_json.stderr


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    missing = missing_tools()
    if missing:
        pytest.fail(f"strongSwan tools missing: {', '.join(missing)} (`make strongswan`)")
    lab = Lab(tmp_path)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


def test_charon_loads_the_generated_config(gen: ModuleType, lab: Lab, tmp_path: Path) -> None:
    conf = tmp_path / "swanctl.conf"
    outputs = outputs_for("172.31.250.2", "172.31.250.1", PSK)
    conf.write_text(
        gen.render(gen.tunnel_from_outputs(outputs)).replace("start_action = start", "")
    )
    charon = lab.charon(lab.onprem)
    done = charon.load(conf)
    assert "loaded connection 'azure'" in done.stdout
    assert "loaded ike secret 'ike-azure'" in done.stdout
    conns = charon.swanctl("--list-conns").stdout
    assert "azure: IKEv2" in conns
    assert "pre-shared key authentication" in conns
    assert "local:  192.168.50.0/24" in conns and "remote: 10.60.0.0/16" in conns


def test_load_check_catches_a_syntax_error(lab: Lab, tmp_path: Path) -> None:
    """swanctl exits 0 here; only stderr tells, and Charon.load must notice."""
    conf = tmp_path / "broken.conf"
    conf.write_text("connections {\n  azure {\n    version = 2\n")  # unbalanced braces
    charon = lab.charon(lab.onprem)
    raw = subprocess.run(
        [str(SWANCTL), "--load-all", "--file", str(conf), "--uri", f"unix://{charon.socket}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert raw.returncode == 0 and "invalid config file" in raw.stderr  # the trap itself
    with pytest.raises(AssertionError, match=r"swanctl refused broken\.conf"):
        charon.load(conf)
