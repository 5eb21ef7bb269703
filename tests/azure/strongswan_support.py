"""Two network namespaces joined by a veth pair, and a charon in each (tests/azure).

Used by test_azure_swanctl.py (config load) and test_azure_vpn_tunnel.py (IKEv2 tunnel).
Everything lives inside namespaces the test creates ("onprem" and "azure", with
addresses chosen here and routed nowhere else) and a temporary directory; nothing
touches the host's network or a system charon.

Each charon runs with its own strongswan.conf (STRONGSWAN_CONF), vici socket and log in
the temporary directory, and a private /run (a bind mount inside its own mount
namespace), because charon's pid file path is compiled in and two instances would
otherwise refuse to share it.

This machine's kernel has XFRM but no ESP (CONFIG_INET_ESP unset, no modules), so the
kernel cannot hold an ESP SA ("unable to install inbound and outbound IPsec SA (SAD)
in kernel", netlink error 38). charon's kernel-libipsec plugin does ESP in user space
through a TUN device instead (UDP-encapsulated); IKE, the traffic selectors, routes
and the PSK authentication are the same code paths either way.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SWANCTL = Path("/usr/sbin/swanctl")
CHARON = Path("/usr/lib/ipsec/charon")
LIBIPSEC = Path("/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so")
GCM = Path("/usr/lib/ipsec/plugins/libstrongswan-gcm.so")  # Azure's pinned ESP cipher

# kernel-libipsec first: it claims the IPsec half of the kernel interface before
# kernel-netlink (which still does addresses and routes).
PLUGINS = (
    "kernel-libipsec random nonce aes sha1 sha2 hmac gcm kdf openssl pem pkcs1 x509 pubkey "
    "kernel-netlink socket-default vici"
)


def missing_tools() -> list[str]:
    return [str(p) for p in (SWANCTL, CHARON, LIBIPSEC, GCM) if not p.exists()] + [
        t for t in ("ip", "unshare", "mount") if shutil.which(t) is None
    ]


def run(*cmd: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout)


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


@dataclass
class Charon:
    """One charon inside one namespace, driven through its own vici socket."""

    netns: str
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.workdir / "charon.vici"

    @property
    def log(self) -> Path:
        return self.workdir / "charon.log"

    def start(self) -> None:
        (self.workdir / "run").mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "strongswan.conf"
        conf.write_text(
            "charon {\n"
            "  install_routes = yes\n"
            f"  load = {PLUGINS}\n"
            f"  filelog {{\n    log {{\n      path = {self.log}\n"
            "      default = 1\n      ike = 2\n    }\n  }\n"
            f"  plugins {{\n    vici {{\n      socket = unix://{self.socket}\n    }}\n  }}\n"
            "}\n"
        )
        env = {**os.environ, "STRONGSWAN_CONF": str(conf)}
        script = f"mount --bind {self.workdir / 'run'} /run && exec {CHARON}"
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "unshare", "--mount", "sh", "-c", script],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(self.workdir / "charon.stderr").open("wb"),
            start_new_session=True,
        )
        wait_for(self._answers, 15, f"charon in {self.netns} to open {self.socket}")

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            err = (self.workdir / "charon.stderr").read_text(errors="replace")
            raise AssertionError(
                f"charon in {self.netns} exited with {self.proc.returncode}: {err[-2000:]}"
            )
        return self.socket.exists() and self.swanctl("--stats", check=False).returncode == 0

    def swanctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(str(SWANCTL), *args, "--uri", f"unix://{self.socket}", check=check)

    def load(self, conf: Path) -> subprocess.CompletedProcess[str]:
        """`swanctl --load-all`; it exits 0 on a syntax error, so stderr is checked too."""
        done = self.swanctl("--load-all", "--file", str(conf), check=False)
        if done.returncode != 0 or "invalid config file" in done.stderr:
            raise AssertionError(f"swanctl refused {conf.name}:\n{done.stdout}\n{done.stderr}")
        return done

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # The Popen is the session leader of sh -> charon (exec): signal only that group.
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


@dataclass
class Lab:
    """onprem (strongSwan, IB Gateway side) <-veth-> azure (stand-in VPN gateway)."""

    root: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    # "Public" addresses of the two gateways, and one address inside each protected
    # network (onprem_address_space / vnet_address_space of the test's outputs).
    onprem_public: str = "172.31.250.1"
    azure_public: str = "172.31.250.2"
    onprem_host: str = "192.168.50.1"
    azure_host: str = "10.60.1.4"
    charons: list[Charon] = field(default_factory=list)

    @property
    def onprem(self) -> str:
        return f"spyaz-op-{self.tag}"

    @property
    def azure(self) -> str:
        return f"spyaz-az-{self.tag}"

    def up(self) -> None:
        run("ip", "netns", "add", self.onprem)
        run("ip", "netns", "add", self.azure)
        a, b = f"az{self.tag}a", f"az{self.tag}b"
        run(
            "ip",
            "link",
            "add",
            a,
            "netns",
            self.onprem,
            "type",
            "veth",
            "peer",
            "name",
            b,
            "netns",
            self.azure,
        )
        for ns, dev, public, host in (
            (self.onprem, a, self.onprem_public, self.onprem_host),
            (self.azure, b, self.azure_public, self.azure_host),
        ):
            run("ip", "-n", ns, "addr", "add", f"{public}/30", "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "-n", ns, "addr", "add", f"{host}/32", "dev", "lo")

    def charon(self, netns: str) -> Charon:
        c = Charon(netns, self.root / netns)
        self.charons.append(c)
        c.start()
        return c

    def down(self) -> None:
        for c in self.charons:
            c.stop()
        for ns in (self.onprem, self.azure):
            run("ip", "netns", "del", ns, check=False)
