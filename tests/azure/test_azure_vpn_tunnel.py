"""IKEv2 tunnel between two network namespaces with the generated swanctl config.

The "onprem" namespace runs charon with the config terraform/vpn/swanctl_config.py
generates from Terraform-shaped outputs; the "azure" namespace runs a second charon
as a stand-in for the Azure VPN gateway (no real Azure gateway can run here), with a
hand-written config that states Azure's side of the pinned policy independently:
IKE AES256/SHA256/DHGroup14, ESP GCMAES256 with PFS ECP256, the same PSK. Then the
operator's own VPN probe (spy_operator.vpn.probe, unchanged) runs inside "onprem" and
must reach a TCP listener on an address of the Azure VNet range through the tunnel,
and must fail once the Azure side is gone. All traffic stays between the two
namespaces this test creates.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure_support import GENERATOR, outputs_for
from strongswan_support import Charon, Lab, missing_tools, run, wait_for

pytestmark = pytest.mark.slow

AZURE_SIDE = """\
connections {{
  onprem {{
    version = 2
    local_addrs = {azure}
    remote_addrs = {onprem}
    proposals = aes256-sha256-modp2048
    local {{
      auth = psk
      id = {azure}
    }}
    remote {{
      auth = psk
      id = {onprem}
    }}
    children {{
      vnet {{
        local_ts = 10.60.0.0/16
        remote_ts = 192.168.50.0/24
        esp_proposals = aes256gcm16-ecp256
      }}
    }}
  }}
}}
secrets {{
  ike-onprem {{
    id = {onprem}
    secret = "{psk}"
  }}
}}
"""

LISTENER = """\
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen()
print("listening", flush=True)
while True:
    c, peer = s.accept()
    print("accepted", peer[0], flush=True)
    c.close()
"""

PROBE = """\
import asyncio, json, sys
from spy_operator.vpn import probe
r = asyncio.run(probe(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
print(json.dumps({"ok": r.ok, "rtt_ms": r.rtt_ms, "error": r.error}))
"""


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    missing = missing_tools()
    if missing:
        pytest.fail(
            f"strongSwan tools missing: {', '.join(missing)} (`make strongswan` installs them)"
        )
    lab = Lab(tmp_path)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


def probe_from(lab: Lab, host: str, port: int, timeout: float) -> dict[str, object]:
    """spy_operator.vpn.probe run inside the onprem namespace."""
    done = run(
        "ip",
        "netns",
        "exec",
        lab.onprem,
        sys.executable,
        "-c",
        PROBE,
        host,
        str(port),
        str(timeout),
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def swanctl_configs(lab: Lab, tmp_path: Path) -> tuple[Path, Path]:
    """(onprem, azure) configs: onprem's generated from Terraform-shaped outputs, the
    Azure stand-in's written by hand, with one fresh PSK."""
    psk = secrets.token_urlsafe(36)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(outputs_for(lab.azure_public, lab.onprem_public, psk)))
    onprem_conf = tmp_path / "onprem-swanctl.conf"
    run(sys.executable, str(GENERATOR), "--outputs", str(outputs), "--output", str(onprem_conf))
    azure_conf = tmp_path / "azure-swanctl.conf"
    azure_conf.write_text(
        AZURE_SIDE.format(azure=lab.azure_public, onprem=lab.onprem_public, psk=psk)
    )
    return onprem_conf, azure_conf


def start_listener(lab: Lab, port: int) -> subprocess.Popen[str]:
    """A TCP listener on an address of the Azure VNet range, inside the azure namespace."""
    in_azure = ["ip", "netns", "exec", lab.azure]
    return subprocess.Popen(
        [*in_azure, sys.executable, "-c", LISTENER, lab.azure_host, str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )


def bring_up_tunnel(lab: Lab, onprem_conf: Path, azure_conf: Path) -> tuple[Charon, Charon]:
    """(onprem, azure) charons, once onprem's CHILD_SA is installed with the pinned
    proposals and traffic selectors."""
    azure = lab.charon(lab.azure)
    azure.load(azure_conf)
    onprem = lab.charon(lab.onprem)
    onprem.load(onprem_conf)  # start_action = start: it initiates on load

    def child_installed() -> bool:
        return "INSTALLED" in onprem.swanctl("--list-sas", check=False).stdout

    wait_for(child_installed, 20, "the CHILD_SA to be installed (see charon.log in tmp_path)")
    sas = onprem.swanctl("--list-sas").stdout
    assert "ESTABLISHED, IKEv2" in sas
    assert "ESP:AES_GCM_16-256" in sas
    assert "192.168.50.0/24" in sas and "10.60.0.0/16" in sas
    return onprem, azure


def test_operator_probe_reaches_the_far_side_only_through_the_tunnel(
    lab: Lab, tmp_path: Path
) -> None:
    onprem_conf, azure_conf = swanctl_configs(lab, tmp_path)
    port = 4002  # IB Gateway's API port; only inside the test's namespace
    listener = start_listener(lab, port)
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "listening"

        # Before any tunnel the far side is unreachable: no route leads there.
        before = probe_from(lab, lab.azure_host, port, 1.0)
        assert before["ok"] is False, before

        onprem, azure = bring_up_tunnel(lab, onprem_conf, azure_conf)
        up = probe_from(lab, lab.azure_host, port, 3.0)
        assert up["ok"] is True, up
        # The listener saw the onprem protected address, not the veth one: the
        # connection went through the tunnel.
        assert listener.stdout.readline().split() == ["accepted", lab.onprem_host]
        counters = onprem.swanctl("--list-sas").stdout
        assert " 0 packets" not in counters.split("out ")[-1].splitlines()[0], counters

        # The Azure side goes away: the probe fails (and the gate would close).
        azure.stop()
        down = probe_from(lab, lab.azure_host, port, 1.0)
        assert down["ok"] is False, down
    finally:
        listener.kill()
        listener.wait(5)
