"""The local Kubernetes control plane (DESIGN §6), started from binaries in .bin/.

etcd + kube-apiserver (RBAC, token users, audit log of writes) + kube-controller-manager
+ kube-scheduler + KWOK with simulated nodes, on free loopback ports, with certificates
made here. Used by the pytest session fixture (tests/conftest.py), by `make cluster`
(`python -m spy_dev.devcluster up`) and by the demo. Nothing here is imported by
the operator itself.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import ipaddress
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / ".bin"
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kubectl",
)
OPERATOR_NAMESPACE = "spy-system"
OPERATOR_USER = "spy-operator"
# name -> groups. admin and the operator are cluster admins here (least-privilege RBAC
# for the operator ships with the Helm chart); alice and bob are plain users for RBAC
# and two-person-rule tests.
USERS: dict[str, tuple[str, ...]] = {
    "admin": ("system:masters",),
    OPERATOR_USER: ("system:masters",),
    "spy-operator-2": ("system:masters",),
    "alice": ("traders", "system:authenticated"),
    "bob": ("approvers", "system:authenticated"),
    "components": ("system:masters",),
}
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"


class ClusterError(RuntimeError):
    """The control plane could not be started; the message says which part and why."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def log(msg: str) -> None:
    print(f"[cluster] {msg}", file=sys.stderr, flush=True)


@dataclass
class ClusterState:
    """What a running cluster is: persisted as state_dir/cluster.json."""

    state_dir: str
    server: str
    etcd_url: str
    tokens: dict[str, str]
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return Path(self.state_dir) / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        return Path(self.state_dir) / "pki" / "ca.crt"

    @property
    def audit_log(self) -> Path:
        return Path(self.state_dir) / "logs" / "audit.log"

    def kubeconfig_for(self, user: str) -> Path:
        return Path(self.state_dir) / f"kubeconfig-{user}"

    def save(self) -> None:
        path = Path(self.state_dir) / "cluster.json"
        path.write_text(json.dumps(self.__dict__, indent=2))
        path.chmod(0o600)

    @classmethod
    def load(cls, state_dir: Path) -> ClusterState | None:
        path = state_dir / "cluster.json"
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))


# ---------------------------------------------------------------------------------
# Certificates and config files


def _write_pki(pki: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    pki.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    def pem_key(key: Any) -> bytes:
        data: bytes = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return data

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "spyoptions-dev-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    srv_key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default.svc"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("10.96.0.1")),
    ]
    srv_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(srv_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (pki / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (pki / "ca.key").write_bytes(pem_key(ca_key))
    (pki / "apiserver.crt").write_bytes(srv_cert.public_bytes(serialization.Encoding.PEM))
    (pki / "apiserver.key").write_bytes(pem_key(srv_key))
    (pki / "sa.key").write_bytes(pem_key(sa_key))
    (pki / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    for key_file in ("ca.key", "apiserver.key", "sa.key"):
        (pki / key_file).chmod(0o600)


AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived", "ResponseStarted"],
    "rules": [
        # The control plane's own components write constantly; tests count the
        # operator's and users' writes only.
        {"level": "None", "users": ["components"]},
        {
            "level": "Metadata",
            "verbs": ["create", "update", "patch", "delete", "deletecollection"],
        },
        {"level": "None"},
    ],
}


def _kubeconfig(server: str, ca_file: Path, users: dict[str, str], current: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "spyoptions-dev",
                "cluster": {"server": server, "certificate-authority": str(ca_file)},
            }
        ],
        "users": [{"name": name, "user": {"token": token}} for name, token in users.items()],
        "contexts": [
            {"name": name, "context": {"cluster": "spyoptions-dev", "user": name}} for name in users
        ],
        "current-context": current,
    }


def _write_secret_file(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


# ---------------------------------------------------------------------------------
# Processes


def _spawn(name: str, argv: list[str], logs: Path, detach: bool) -> subprocess.Popen[bytes]:
    out = (logs / f"{name}.log").open("ab")
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=detach,
    )


def _wait(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    proc: subprocess.Popen[bytes] | None,
    logs: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = ""
            if logs is not None and logs.exists():
                tail = "\n".join(logs.read_text(errors="replace").splitlines()[-15:])
            raise ClusterError(f"{what}: process exited with {proc.returncode}\n{tail}")
        with contextlib.suppress(httpx.HTTPError, OSError):
            if check():
                return
        time.sleep(0.1)
    raise ClusterError(f"{what}: not ready after {timeout:.0f} s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_pids(pids: dict[str, int]) -> None:
    # Reverse start order: kwok and controllers before the apiserver, etcd last.
    order = ["kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"]
    for name in order:
        pid = pids.get(name)
        if pid and _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for name in order:
        pid = pids.get(name)
        while pid and _alive(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        if pid and _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class DevCluster:
    """Starts and stops the local control plane. Use as a context manager or via up/down."""

    def __init__(
        self,
        state_dir: Path,
        bin_dir: Path = DEFAULT_BIN,
        nodes: int = 2,
        persistent_volumes: int = 40,
        detach: bool = False,
        crds: Path | None = REPO_ROOT / "crds",
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.bin_dir = bin_dir
        self.nodes = nodes
        self.persistent_volumes = persistent_volumes
        self.detach = detach
        self.crds = crds
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.state: ClusterState | None = None

    def __enter__(self) -> ClusterState:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _bin(self, name: str) -> str:
        path = self.bin_dir / name
        if not path.exists():
            raise ClusterError(f"{path} is missing: run `make tools` first")
        return str(path)

    def start(self) -> ClusterState:
        for name in BINARIES:
            self._bin(name)
        started = time.monotonic()
        sd = self.state_dir
        for sub in ("pki", "logs", "etcd-data"):
            (sd / sub).mkdir(parents=True, exist_ok=True)
        logs = sd / "logs"
        for old in logs.glob("*.log"):
            old.unlink()
        pki = sd / "pki"
        _write_pki(pki)
        tokens = {user: secrets.token_hex(16) for user in USERS}
        _write_secret_file(
            sd / "tokens.csv",
            "".join(
                f'{tokens[u]},{u},uid-{u},"{",".join(groups)}"\n' for u, groups in USERS.items()
            ),
        )
        (sd / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))

        etcd_port, etcd_peer, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        server = f"https://127.0.0.1:{api_port}"
        state = ClusterState(state_dir=str(sd), server=server, etcd_url=etcd_url, tokens=tokens)
        self.state = state
        for user in USERS:
            _write_secret_file(
                state.kubeconfig_for(user),
                yaml.safe_dump(_kubeconfig(server, state.ca_file, {user: tokens[user]}, user)),
            )
        _write_secret_file(
            state.kubeconfig,
            yaml.safe_dump(_kubeconfig(server, state.ca_file, tokens, "admin")),
        )
        try:
            self._start_processes(state, logs, pki, etcd_port, etcd_peer, api_port)
            self._bootstrap(state)
        except BaseException:
            self.stop()
            raise
        state.save()
        log(f"control plane ready in {time.monotonic() - started:.1f} s at {server}")
        return state

    def _start_processes(
        self,
        state: ClusterState,
        logs: Path,
        pki: Path,
        etcd_port: int,
        etcd_peer: int,
        api_port: int,
    ) -> None:
        sd = self.state_dir
        log("starting etcd")
        self.procs["etcd"] = _spawn(
            "etcd",
            [
                self._bin("etcd"),
                "--name=dev",
                f"--data-dir={sd / 'etcd-data'}",
                f"--listen-client-urls={state.etcd_url}",
                f"--advertise-client-urls={state.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-cluster=dev=http://127.0.0.1:{etcd_peer}",
                "--unsafe-no-fsync",
                "--quota-backend-bytes=4294967296",
                "--log-level=warn",
            ],
            logs,
            self.detach,
        )
        _wait(
            "etcd",
            lambda: httpx.get(f"{state.etcd_url}/health", timeout=1).json().get("health") == "true",
            30,
            self.procs["etcd"],
            logs / "etcd.log",
        )

        log("starting kube-apiserver")
        self.procs["kube-apiserver"] = _spawn(
            "kube-apiserver",
            [
                self._bin("kube-apiserver"),
                f"--etcd-servers={state.etcd_url}",
                "--bind-address=127.0.0.1",
                f"--secure-port={api_port}",
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--token-auth-file={sd / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--api-audiences=https://kubernetes.default.svc",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--allow-privileged=true",
                f"--audit-policy-file={sd / 'audit-policy.yaml'}",
                f"--audit-log-path={state.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
                "--audit-log-maxsize=500",
                "--profiling=false",
                "--v=0",
            ],
            logs,
            self.detach,
        )
        ca = ssl.create_default_context(cafile=str(state.ca_file))
        admin = {"Authorization": f"Bearer {state.tokens['admin']}"}
        _wait(
            "kube-apiserver",
            lambda: (
                httpx.get(f"{state.server}/readyz", headers=admin, verify=ca, timeout=2).status_code
                == 200
            ),
            90,
            self.procs["kube-apiserver"],
            logs / "kube-apiserver.log",
        )

        if self.crds is not None:
            # Before the controllers start: the garbage collector discovers resource
            # types at start-up and then only every 30 s, and it cannot collect the
            # children of an owner kind it does not know yet.
            log(f"installing CRDs from {self.crds}")
            kubectl = [self._bin("kubectl"), f"--kubeconfig={state.kubeconfig}"]
            for step in (
                ["apply", "-f", str(self.crds)],
                ["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"],
            ):
                proc = subprocess.run(
                    [*kubectl, *step], capture_output=True, text=True, check=False
                )
                if proc.returncode != 0:
                    raise ClusterError(f"kubectl {' '.join(step)}: {proc.stderr.strip()}")

        components = state.kubeconfig_for("components")
        log("starting kube-controller-manager, kube-scheduler and kwok")
        self.procs["kube-controller-manager"] = _spawn(
            "kube-controller-manager",
            [
                self._bin("kube-controller-manager"),
                f"--kubeconfig={components}",
                "--secure-port=0",
                "--leader-elect=false",
                "--use-service-account-credentials=false",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                "--controllers=*",
                "--concurrent-deployment-syncs=10",
                "--concurrent-statefulset-syncs=10",
                "--concurrent-gc-syncs=20",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                "--v=0",
            ],
            logs,
            self.detach,
        )
        self.procs["kube-scheduler"] = _spawn(
            "kube-scheduler",
            [
                self._bin("kube-scheduler"),
                f"--kubeconfig={components}",
                "--secure-port=0",
                "--leader-elect=false",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                "--v=0",
            ],
            logs,
            self.detach,
        )
        self.procs["kwok"] = _spawn(
            "kwok",
            [
                self._bin("kwok"),
                f"--kubeconfig={components}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
                "--cidr=10.0.0.1/16",
                "--node-ip=10.0.0.1",
                "--node-lease-duration-seconds=40",
                f"--server-address=127.0.0.1:{free_port()}",
            ],
            logs,
            self.detach,
        )
        state.pids = {name: p.pid for name, p in self.procs.items()}
        state.save()

    def _bootstrap(self, state: ClusterState) -> None:
        """Objects every test and the demo expect: fake nodes, storage, namespaces."""
        client = admin_client(state)
        with client:
            for idx in range(self.nodes):
                name = f"kwok-node-{idx}"
                client.post(
                    "/api/v1/nodes",
                    json={
                        "apiVersion": "v1",
                        "kind": "Node",
                        "metadata": {
                            "name": name,
                            "annotations": {
                                FAKE_NODE_ANNOTATION: "fake",
                                "node.alpha.kubernetes.io/ttl": "0",
                            },
                            "labels": {
                                "kubernetes.io/hostname": name,
                                "kubernetes.io/os": "linux",
                                "kubernetes.io/arch": "amd64",
                                "type": "kwok",
                            },
                        },
                        "status": {
                            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
                            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
                        },
                    },
                ).raise_for_status()
            client.post(
                "/apis/storage.k8s.io/v1/storageclasses",
                json={
                    "apiVersion": "storage.k8s.io/v1",
                    "kind": "StorageClass",
                    "metadata": {
                        "name": "standard",
                        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                    },
                    "provisioner": "kubernetes.io/no-provisioner",
                    "volumeBindingMode": "Immediate",
                    "reclaimPolicy": "Retain",
                },
            ).raise_for_status()
            # No volume provisioner runs here; pre-made volumes let the PV binder (a
            # real controller) bind the gateways' settings PVCs.
            for idx in range(self.persistent_volumes):
                client.post(
                    "/api/v1/persistentvolumes",
                    json={
                        "apiVersion": "v1",
                        "kind": "PersistentVolume",
                        "metadata": {"name": f"dev-pv-{idx:03d}"},
                        "spec": {
                            "capacity": {"storage": "10Gi"},
                            "accessModes": ["ReadWriteOnce"],
                            "storageClassName": "standard",
                            "persistentVolumeReclaimPolicy": "Retain",
                            "hostPath": {"path": f"/tmp/spyoptions-dev-pv/{idx}"},
                        },
                    },
                ).raise_for_status()
            client.post(
                "/api/v1/namespaces",
                json={
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": OPERATOR_NAMESPACE},
                },
            ).raise_for_status()

            def nodes_ready() -> bool:
                items = client.get("/api/v1/nodes").json()["items"]
                ready = [
                    n
                    for n in items
                    for c in n.get("status", {}).get("conditions", [])
                    if c["type"] == "Ready" and c["status"] == "True"
                ]
                return len(ready) == self.nodes

            _wait(
                "kwok nodes Ready",
                nodes_ready,
                60,
                self.procs.get("kwok"),
                Path(state.state_dir) / "logs" / "kwok.log",
            )
            _wait(
                "default service account (controller-manager)",
                lambda: (
                    client.get("/api/v1/namespaces/default/serviceaccounts/default").status_code
                    == 200
                ),
                60,
                self.procs.get("kube-controller-manager"),
                Path(state.state_dir) / "logs" / "kube-controller-manager.log",
            )

    def stop(self) -> None:
        pids = {name: p.pid for name, p in self.procs.items()}
        if not pids and self.state is not None:
            pids = self.state.pids
        _stop_pids(pids)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self.procs.clear()


def client_options(state: ClusterState, user: str = "admin") -> dict[str, Any]:
    """httpx client options for the apiserver as one of the token users (sync or async)."""
    return {
        "base_url": state.server,
        "headers": {"Authorization": f"Bearer {state.tokens[user]}"},
        "verify": ssl.create_default_context(cafile=str(state.ca_file)),
    }


def admin_client(state: ClusterState, user: str = "admin") -> httpx.Client:
    """A plain HTTP client to the apiserver as one of the token users."""
    return httpx.Client(**client_options(state, user), timeout=30)


def running(state_dir: Path) -> ClusterState | None:
    """The cluster recorded in state_dir if all its processes are alive and it answers."""
    state = ClusterState.load(state_dir)
    if state is None or not state.pids or not all(_alive(p) for p in state.pids.values()):
        return None
    try:
        with admin_client(state) as client:
            if client.get("/readyz", timeout=3).status_code == 200:
                return state
    except (httpx.HTTPError, OSError):
        return None
    return None


def _usage(state: ClusterState) -> str:
    return (
        f"\nLocal control plane is up at {state.server}\n"
        f"  export KUBECONFIG={state.kubeconfig}\n"
        f"  {DEFAULT_BIN / 'kubectl'} get nodes\n"
        f"  kubeconfigs per user: {Path(state.state_dir)}/kubeconfig-{{admin,alice,bob}}\n"
        f"  stop it with: make cluster-down\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spy_dev.devcluster",
        description="Start or stop the local control plane (etcd, kube-apiserver, "
        "kube-controller-manager, kube-scheduler, kwok) built in .bin/.",
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=REPO_ROOT / ".local",
        help="where certificates, logs, etcd data and the kubeconfig live",
    )
    parser.add_argument("--nodes", type=int, default=2, help="simulated KWOK nodes")
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir.resolve()
    current = running(state_dir)
    if args.command == "status":
        print("running" if current else "stopped")
        return 0 if current else 1
    if args.command == "down":
        state = ClusterState.load(state_dir)
        if state is None:
            log("no cluster recorded in " + str(state_dir))
            return 0
        _stop_pids(state.pids)
        (state_dir / "cluster.json").unlink(missing_ok=True)
        log("stopped")
        return 0
    if current is not None:
        log("already running")
        print(_usage(current))
        return 0
    stale = ClusterState.load(state_dir)
    if stale is not None:
        _stop_pids(stale.pids)
    for sub in ("etcd-data",):
        target = state_dir / sub
        if target.exists():
            subprocess.run(["rm", "-rf", str(target)], check=True)
    try:
        state = DevCluster(state_dir, nodes=args.nodes, detach=True).start()
    except ClusterError as err:
        log(f"failed: {err}")
        return 1
    print(_usage(state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
