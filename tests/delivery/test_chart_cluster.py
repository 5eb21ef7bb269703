"""The Helm chart on the real local control plane (spy_dev.devcluster, KWOK nodes, so
`--wait` waits for real scheduling and rollout): install, then the operator process
authenticated as the chart's ServiceAccount (a TokenRequest token in a kubeconfig of
its own) passes the gate's core scenarios in namespaced mode; `kubectl auth can-i`
as that account shows what it must not do; upgrade, rollback, uninstall.

Tests in this module share one release and run in file order.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from delivery_support import CHART, THIRD_PARTY_CRDS, run, tool
from k8s_support import Cluster, Kubectl, wait_for
from operator_support import (
    admission_suspended,
    bot,
    condition,
    credentials,
    deployment_replicas,
    gateway,
    pull_secret,
    wait_bot,
)
from spy_dev.devcluster import free_port
from spy_dev.webhook import operator_env
from spy_operator import constants as c

SUFFIX = uuid.uuid4().hex[:6]
RELEASE = f"spy-{SUFFIX}"
RELEASE_NS = f"spy-sys-{SUFFIX}"  # the operator namespace: halt ConfigMap and Lease
WATCHED = f"spy-paper-{SUFFIX}"
ADDED = f"spy-live-{SUFFIX}"  # added by the upgrade
OUTSIDE = f"spy-other-{SUFFIX}"  # never watched
SA = f"{RELEASE}-spy-options-operator"
SA_USER = f"system:serviceaccount:{RELEASE_NS}:{SA}"


@dataclass
class Release:
    cluster: Cluster
    kubectl: Kubectl
    sa_kubectl: Kubectl
    sa_kubeconfig: Path
    log_dir: Path

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(
            tool("helm"),
            "--kubeconfig",
            str(self.cluster.kubeconfig),
            "--namespace",
            RELEASE_NS,
            *args,
            check=check,
            timeout=300,
        )


def sa_kubeconfig(admin_kubeconfig: Path, token: str, path: Path) -> Path:
    """A kubeconfig that authenticates with the ServiceAccount's token only."""
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "operator-sa", "user": {"token": token}}],
        "contexts": [
            {"name": "operator-sa", "context": {"cluster": cluster["name"], "user": "operator-sa"}}
        ],
        "current-context": "operator-sa",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def release(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    kubectl = cluster.kubectl
    # ServiceMonitor/PrometheusRule served, so the chart's monitoring objects are applied
    # for real (monitoring.*.enabled=auto).
    kubectl("apply", "--server-side", "-f", str(THIRD_PARTY_CRDS))
    kubectl(
        "wait",
        "--for=condition=Established",
        "crd",
        "servicemonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
        "--timeout=30s",
    )
    for ns in (RELEASE_NS, WATCHED, ADDED, OUTSIDE):
        kubectl("create", "namespace", ns)
    kubectl(
        "-n",
        RELEASE_NS,
        "create",
        "secret",
        "generic",
        "spy-backend-azure",
        "--from-literal=SPY_BACKEND_INGEST_TOKEN=" + "x" * 32,
    )
    tmp = tmp_path_factory.mktemp("chart")
    rel = Release(cluster, kubectl, kubectl, tmp / "sa.kubeconfig", tmp)
    proc = rel.helm(
        "install",
        RELEASE,
        str(CHART),
        "--wait",
        "--timeout",
        "180s",
        "--set",
        f"operator.watchNamespaces={{{WATCHED}}}",
        "--set",
        "backend.existingSecret=spy-backend-azure",
    )
    assert "STATUS: deployed" in proc.stdout
    token = kubectl("-n", RELEASE_NS, "create", "token", SA, "--duration=2h").strip()
    sa_kubeconfig(cluster.kubeconfig, token, rel.sa_kubeconfig)
    rel.sa_kubectl = Kubectl(rel.sa_kubeconfig)
    try:
        yield rel
    finally:
        rel.helm("uninstall", RELEASE, "--wait", check=False)
        for ns in (RELEASE_NS, WATCHED, ADDED, OUTSIDE):
            kubectl.run("delete", "namespace", ns, "--wait=false", check=False)


@dataclass
class SaOperator:
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def sa_operator(release: Release) -> Iterator[SaOperator]:
    """`python -m spy_operator` exactly as the chart's Deployment runs it (namespaced
    mode, operator namespace = release namespace), authenticated as the ServiceAccount."""
    log = release.log_dir / "operator-sa.log"
    env = dict(
        os.environ,
        KUBECONFIG=str(release.sa_kubeconfig),
        SPY_METRICS_ADDR="127.0.0.1",
        SPY_VPN_PROBE_TTL="0.5",
        SPY_LEASE_SECONDS="5",
        SPY_LEASE_RENEW_SECONDS="1",
    )
    if release.cluster.state is not None:
        # The session's approval webhook signs with this key; the gate verifies with it.
        env.update(operator_env(Path(release.cluster.state.state_dir)))
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "spy_operator",
                f"--operator-namespace={RELEASE_NS}",
                f"--namespace={WATCHED}",
                f"--metrics-port={free_port()}",
                "--resync-seconds=3",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    op = SaOperator(proc, log)
    try:
        yield op
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_install_rolled_out_and_applied_everything(release: Release) -> None:
    k = release.kubectl
    for name in (f"{RELEASE}-spy-options-operator", f"{RELEASE}-spy-options-backend"):
        dep = k.get("deployment", name, RELEASE_NS)
        assert dep["status"].get("availableReplicas") == dep["spec"]["replicas"], name
    assert (
        k.get("deployment", f"{RELEASE}-spy-options-operator", RELEASE_NS)["spec"]["replicas"] == 2
    )
    for kind in ("servicemonitor", "prometheusrule", "configmap"):
        items = json.loads(
            k(
                "get",
                kind,
                "-n",
                RELEASE_NS,
                "-l",
                f"app.kubernetes.io/instance={RELEASE}",
                "-o",
                "json",
            )
        )["items"]
        assert items, kind
    roles = json.loads(
        k("get", "roles", "-A", "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "json")
    )["items"]
    assert {r["metadata"]["namespace"] for r in roles} == {RELEASE_NS, WATCHED}
    cluster_roles = json.loads(
        k("get", "clusterroles", "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "json")
    )["items"]
    assert [r["metadata"]["name"] for r in cluster_roles] == [f"{SA}-{RELEASE_NS}-observe"]


@pytest.fixture
def without_dev_bot_guard(release: Release) -> Iterator[None]:
    """The dev cluster's bot-guard admission policy exempts only the dev cluster's
    operator users (deploy/admission), not this release's ServiceAccount, and refuses
    the hand scale-up below: it is lifted for this test (it has its own tests)."""
    with admission_suspended(release.kubectl):
        yield


@pytest.mark.usefixtures("without_dev_bot_guard")
def test_gate_core_scenarios_as_the_chart_service_account(
    release: Release, sa_operator: SaOperator
) -> None:
    k = release.kubectl  # the humans (admin) apply; only the operator (the SA) acts
    ns = WATCHED
    # paper_world() with a longer wait: the gateway's pod must be scheduled, bound to a
    # volume and Ready, which takes longer than 30 s on this machine under load.
    k.apply(pull_secret(), ns)
    k.apply(credentials(), ns)
    k.apply(gateway("gw"), ns)
    wait_for(
        "gateway gw Ready",
        lambda: condition(k.get("ibgateway", "gw", ns), "Ready").get("status") == "True",
        120,
        0.5,
    )
    k.apply(bot("b1"), ns)
    tb = wait_bot(k, ns, "b1", 1, "Armed", timeout=60)
    assert condition(tb, "Approved")["status"] == "True"
    # A hand scale-up is set back.
    k("scale", "-n", ns, "deployment/b1-bot", "--replicas=3")
    wait_for("scale-up reverted", lambda: deployment_replicas(k, ns, "b1") == 1, 30, 0.05)
    # Disarm, then re-arm.
    k("patch", "-n", ns, "tradingbot/b1", "--type=merge", "-p", '{"spec":{"armed":false}}')
    wait_bot(k, ns, "b1", 0, "NotArmed", timeout=60)
    k("patch", "-n", ns, "tradingbot/b1", "--type=merge", "-p", '{"spec":{"armed":true}}')
    wait_bot(k, ns, "b1", 1, "Armed", timeout=60)
    # The global halt lives in the operator namespace, which is the release namespace.
    k(
        "-n",
        RELEASE_NS,
        "create",
        "configmap",
        c.HALT_CONFIGMAP,
        "--from-literal=reason=chart drill",
    )
    try:
        tb = wait_bot(k, ns, "b1", 0, "GlobalHalt", timeout=30)
        assert "chart drill" in tb["status"]["message"]
    finally:
        k("-n", RELEASE_NS, "delete", "configmap", c.HALT_CONFIGMAP)
    wait_bot(k, ns, "b1", 1, "Armed", timeout=60)
    # An approval expires with nobody editing anything.
    k.apply(bot("exp", expires_in=20), ns)
    wait_bot(k, ns, "exp", 1, "Armed", timeout=60)
    wait_bot(k, ns, "exp", 0, "ApprovalExpired", timeout=60)

    assert sa_operator.proc.poll() is None, sa_operator.text()[-3000:]
    log = sa_operator.text()
    assert "Forbidden" not in log and " 403" not in log and "reconcile crashed" not in log, log[
        -4000:
    ]
    lease = k.get("lease", c.LEASE_NAME, RELEASE_NS)
    assert lease is not None and lease["spec"]["holderIdentity"]
    if release.cluster.state is not None:
        # The audit log (writes only) proves the writes came from the ServiceAccount.
        writers = set()
        for line in Path(release.cluster.state.audit_log).read_text().splitlines():
            event = json.loads(line)
            ref = event.get("objectRef", {})
            ours = ref.get("namespace") == ns and ref.get("resource") in (
                "deployments",
                "tradingbots",
            )
            if ours and event["user"]["username"] != "admin":
                writers.add(event["user"]["username"])
        assert writers == {SA_USER}, writers


MUST_NOT = [
    ("list secrets cluster-wide", ("list", "secrets", "--all-namespaces")),
    ("read secrets outside the watched namespaces", ("get", "secrets", "-n", OUTSIDE)),
    ("watch TradingBots outside", ("watch", "tradingbots", "-n", OUTSIDE)),
    ("write TradingBot spec (patch)", ("patch", "tradingbots", "-n", WATCHED)),
    ("write TradingBot spec (update)", ("update", "tradingbots", "-n", WATCHED)),
    ("create TradingBots", ("create", "tradingbots", "-n", WATCHED)),
    ("write secrets", ("create", "secrets", "-n", WATCHED)),
    ("lift the halt", ("delete", "configmaps", "-n", RELEASE_NS)),
    ("create a halt or any ConfigMap", ("create", "configmaps", "-n", RELEASE_NS)),
    ("delete StatefulSets (gateway settings PVCs)", ("delete", "statefulsets", "-n", WATCHED)),
    ("delete Services", ("delete", "services", "-n", WATCHED)),
    ("write pods", ("patch", "pods", "-n", WATCHED)),
    ("delete PVCs", ("delete", "persistentvolumeclaims", "-n", WATCHED)),
    ("exec into pods", ("create", "pods/exec", "-n", WATCHED)),
    ("escalate roles", ("escalate", "roles", "-n", WATCHED)),
    ("bind cluster roles", ("bind", "clusterroles")),
    ("impersonate users", ("impersonate", "users")),
    ("impersonate service accounts", ("impersonate", "serviceaccounts", "-n", RELEASE_NS)),
    ("impersonate groups", ("impersonate", "groups")),
    ("create ClusterRoleBindings", ("create", "clusterrolebindings")),
    ("create RoleBindings outside", ("create", "rolebindings", "-n", OUTSIDE)),
    ("delete RoleBindings", ("delete", "rolebindings", "-n", WATCHED)),
    ("read service account tokens", ("create", "serviceaccounts/token", "-n", WATCHED)),
    ("edit CRDs", ("patch", "customresourcedefinitions")),
    ("take another Lease", ("update", "leases/other-lease", "-n", RELEASE_NS)),
]
MUST = [
    ("watch TradingBots", ("watch", "tradingbots", "-n", WATCHED)),
    ("patch TradingBot status", ("patch", "tradingbots", "--subresource=status", "-n", WATCHED)),
    ("read pull secrets", ("get", "secrets", "-n", WATCHED)),
    ("apply bot Deployments", ("patch", "deployments", "-n", WATCHED)),
    ("lower bot replicas", ("patch", "deployments", "--subresource=scale", "-n", WATCHED)),
    ("watch gateway pods", ("watch", "pods", "-n", WATCHED)),
    # Each bot's own identity (bot_access.py): create/patch by server-side apply; the
    # API server lets it bind only rights it holds itself (no bind/escalate above).
    ("apply a bot's ServiceAccount", ("create", "serviceaccounts", "-n", WATCHED)),
    ("apply a bot's Role", ("patch", "roles", "-n", WATCHED)),
    ("apply a bot's RoleBinding", ("create", "rolebindings", "-n", WATCHED)),
    ("renew its Lease", ("update", f"leases/{c.LEASE_NAME}", "-n", RELEASE_NS)),
]


@pytest.mark.parametrize(("what", "args"), MUST_NOT, ids=[m[0] for m in MUST_NOT])
def test_service_account_cannot(release: Release, what: str, args: tuple[str, ...]) -> None:
    proc = release.sa_kubectl.run("auth", "can-i", *args, check=False)
    assert proc.stdout.strip() == "no", f"the operator's account can {what}: {proc.stdout}"


@pytest.mark.parametrize(("what", "args"), MUST, ids=[m[0] for m in MUST])
def test_service_account_can(release: Release, what: str, args: tuple[str, ...]) -> None:
    proc = release.sa_kubectl.run("auth", "can-i", *args, check=False)
    assert proc.stdout.strip() == "yes", f"the operator's account cannot {what}: {proc.stderr}"


def _role_namespaces(k: Kubectl) -> set[str]:
    roles = json.loads(
        k("get", "roles", "-A", "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "json")
    )["items"]
    return {
        r["metadata"]["namespace"] for r in roles if r["metadata"]["name"].endswith("-operator")
    }


def _operator_args(k: Kubectl) -> list[str]:
    dep = k.get("deployment", f"{RELEASE}-spy-options-operator", RELEASE_NS)
    return list(dep["spec"]["template"]["spec"]["containers"][0]["args"])


def _approval_key(k: Kubectl) -> str:
    secret = k.get("secret", f"{RELEASE}-spy-options-approval-key", RELEASE_NS)
    return str(secret["data"]["key"])


def test_upgrade_with_changed_values_then_rollback(release: Release) -> None:
    k = release.kubectl
    key = _approval_key(k)
    release.helm(
        "upgrade",
        RELEASE,
        str(CHART),
        "--wait",
        "--timeout",
        "180s",
        "--reuse-values",
        "--set",
        f"operator.watchNamespaces={{{WATCHED},{ADDED}}}",
        "--set",
        "operator.resyncSeconds=15",
    )
    assert _role_namespaces(k) == {RELEASE_NS, WATCHED, ADDED}
    assert f"--namespace={ADDED}" in _operator_args(k)
    assert "--resync-seconds=15" in _operator_args(k)
    assert _approval_key(k) == key, "an upgrade must not rotate the approval key"
    history = json.loads(release.helm("history", RELEASE, "-o", "json").stdout)
    assert [h["revision"] for h in history] == [1, 2]

    release.helm("rollback", RELEASE, "1", "--wait", "--timeout", "180s")
    wait_for("Role in the added namespace gone", lambda: ADDED not in _role_namespaces(k), 30)
    assert _role_namespaces(k) == {RELEASE_NS, WATCHED}
    assert f"--namespace={ADDED}" not in _operator_args(k)
    assert (
        release.sa_kubectl.run(
            "auth", "can-i", "get", "secrets", "-n", ADDED, check=False
        ).stdout.strip()
        == "no"
    )


RELEASE_KINDS = (
    "deployments,services,serviceaccounts,roles,rolebindings,networkpolicies,configmaps,"
    "poddisruptionbudgets,servicemonitors,prometheusrules,secrets"
)


def _leftovers(k: Kubectl) -> list[str]:
    selector = f"app.kubernetes.io/instance={RELEASE}"
    names = k("get", RELEASE_KINDS, "-A", "-l", selector, "-o", "name").split()
    names += k("get", "clusterroles,clusterrolebindings", "-l", selector, "-o", "name").split()
    return names


def test_uninstall_leaves_no_orphans(release: Release, sa_operator: SaOperator) -> None:
    k = release.kubectl
    assert _leftovers(k)
    sa_operator.proc.terminate()
    sa_operator.proc.wait(15)
    release.helm("uninstall", RELEASE, "--wait", "--timeout", "120s")
    wait_for("release objects gone", lambda: not _leftovers(k), 60)
    # Helm keeps CRDs on purpose (deleting them would delete every TradingBot).
    assert k.get("crd", "tradingbots.spyoptions.io") is not None
    # The operator's and backend's pods go with their Deployments.
    wait_for(
        "operator pods gone",
        lambda: not json.loads(k("get", "pods", "-n", RELEASE_NS, "-o", "json"))["items"],
        60,
    )
