"""Where the local control plane is and how to reach it: the state file
(state_dir/cluster.json), its token users, and HTTP client options for them.

Imported by spy_dev.devcluster (which starts the cluster and re-exports these names),
the webhook, the demo, the benches and the test session. Knows nothing of processes
beyond their recorded pids.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from spy_dev.processes import alive

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / ".bin"
ADMISSION_DIR = REPO_ROOT / "deploy" / "admission"
OPERATOR_NAMESPACE = "spy-system"
OPERATOR_USER = "spy-operator"
# The identities the bot-guard admission policy exempts here (two operator replicas).
OPERATOR_USERS = (OPERATOR_USER, "spy-operator-2")
# name -> groups. admin and the operator are cluster admins here (least-privilege RBAC
# for the operator ships with the Helm chart); alice and bob are plain users for RBAC
# and two-person-rule tests. Being a cluster admin does not exempt admin from the
# bot-guard admission policy: only OPERATOR_USERS are.
USERS: dict[str, tuple[str, ...]] = {
    "admin": ("system:masters",),
    OPERATOR_USERS[0]: ("system:masters",),
    OPERATOR_USERS[1]: ("system:masters",),
    "alice": ("traders", "system:authenticated"),
    "bob": ("approvers", "system:authenticated"),
    "components": ("system:masters",),
}


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


def apiserver_ready(state: ClusterState) -> bool:
    with admin_client(state) as client:
        return client.get("/readyz", timeout=2).status_code == 200


def running(state_dir: Path) -> ClusterState | None:
    """The cluster recorded in state_dir if all its processes are alive and it answers."""
    state = ClusterState.load(state_dir)
    if state is None or not state.pids or not all(alive(p) for p in state.pids.values()):
        return None
    try:
        if apiserver_ready(state):
            return state
    except (httpx.HTTPError, OSError):
        return None
    return None
