"""The Helm chart on the real local control plane (spy_dev.devcluster, KWOK nodes, so
`--wait` waits for real scheduling and rollout): install, then the operator process
authenticated as the chart's ServiceAccount (a TokenRequest token in a kubeconfig of
its own, chart_release.py) passes the gate's core scenarios in namespaced mode behind
the chart's own admission objects: its approval webhook (served by that process with
the chart's certificate, refusing an approval written for someone else) and its
bot-guard ValidatingAdmissionPolicies (refusing an editor's hand scale-up, exempting
the ServiceAccount); `kubectl auth can-i` as that account shows what it must not do;
upgrade (certificate and key kept), rollback, uninstall.

Tests in this module share one release and run in file order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from chart_release import (
    ADDED,
    BINDINGS,
    OUTSIDE,
    RELEASE,
    RELEASE_NS,
    SA,
    SA_USER,
    WATCHED,
    WEBHOOK_CONFIG,
    WEBHOOK_SECRET,
    DevAdmission,
    Release,
    SaOperator,
    running_sa_operator,
    sa_kubeconfig,
)
from chart_state import (
    approval_key,
    chart_bot_guard_lifted,
    leftovers,
    operator_args,
    role_namespaces,
    webhook_cert,
)
from delivery_support import CHART, THIRD_PARTY_CRDS
from k8s_support import Cluster, Kubectl, wait_for
from operator_support import (
    bot,
    condition,
    credentials,
    deployment_replicas,
    gateway,
    in_seconds,
    pull_secret,
    wait_bot,
)
from spy_dev.webhook import editors_rbac
from spy_operator import constants as c


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
    dev = DevAdmission(cluster)
    try:
        assert "STATUS: deployed" in rel.install().stdout
        # Only now, so some binding of ConfigMap params always exists
        # (spy_dev.admission.suspend_bindings).
        dev.lift()
        token = kubectl("-n", RELEASE_NS, "create", "token", SA, "--duration=2h").strip()
        sa_kubeconfig(cluster.kubeconfig, token, rel.sa_kubeconfig)
        rel.sa_kubectl = Kubectl(rel.sa_kubeconfig)
        rel.dev_admission = dev
        yield rel
    finally:
        dev.restore()
        rel.helm("uninstall", RELEASE, "--wait", check=False)
        for ns in (RELEASE_NS, WATCHED, ADDED, OUTSIDE):
            kubectl.run("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture(scope="module")
def sa_operator(release: Release) -> Iterator[SaOperator]:
    yield from running_sa_operator(release)


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


def test_install_registered_the_admission_objects(release: Release) -> None:
    """The webhook registration and the bot guard, scoped to the watched namespace,
    exempting exactly this release's ServiceAccount."""
    k = release.kubectl
    hook = k.get("mutatingwebhookconfiguration", WEBHOOK_CONFIG)["webhooks"][0]
    assert hook["failurePolicy"] == "Fail"
    assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == [WATCHED]
    secret = k.get("secret", WEBHOOK_SECRET, RELEASE_NS)
    assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    params = k.get("configmap", f"{RELEASE}-spy-options-admission", RELEASE_NS)
    assert params["data"]["operators"] == SA_USER
    for name in BINDINGS:
        binding = k.get("validatingadmissionpolicybinding", name)
        assert binding["spec"]["paramRef"]["namespace"] == RELEASE_NS
        selector = binding["spec"]["matchResources"]["namespaceSelector"]
        assert selector["matchExpressions"][0]["values"] == [WATCHED]
        assert k.get("validatingadmissionpolicy", binding["spec"]["policyName"]) is not None


def test_gate_core_scenarios_as_the_chart_service_account(
    release: Release, sa_operator: SaOperator
) -> None:
    k = release.kubectl  # the humans (admin) apply; only the operator (the SA) acts
    ns = WATCHED
    apply_ready_gateway(k, ns)
    # Through the chart's approval webhook (admin is the release's GitOps identity),
    # signed with the chart's key, verified by the operator with the same mounted key.
    k.apply(bot("b1"), ns)
    tb = wait_bot(k, ns, "b1", 1, "Armed", timeout=60)
    assert condition(tb, "Approved")["status"] == "True"
    assert tb["metadata"]["annotations"]["spyoptions.io/approval-via"] == "gitops"
    # A hand scale-up is set back (the chart's bot guard would refuse it outright:
    # test_chart_bot_guard_refuses_an_editors_scale_up).
    with chart_bot_guard_lifted(k):
        k("scale", "-n", ns, "deployment/b1-bot", "--replicas=3")
        wait_for("scale-up reverted", lambda: deployment_replicas(k, ns, "b1") == 1, 30, 0.05)
    # Disarm, then re-arm.
    k("patch", "-n", ns, "tradingbot/b1", "--type=merge", "-p", '{"spec":{"armed":false}}')
    wait_bot(k, ns, "b1", 0, "NotArmed", timeout=60)
    k("patch", "-n", ns, "tradingbot/b1", "--type=merge", "-p", '{"spec":{"armed":true}}')
    wait_bot(k, ns, "b1", 1, "Armed", timeout=60)
    global_halt_drill(k, ns)
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
        writers = bot_writers(Path(release.cluster.state.audit_log), ns)
        assert writers == {SA_USER}, writers


def apply_ready_gateway(k: Kubectl, ns: str) -> None:
    """paper_world() with a longer wait: the gateway's pod must be scheduled, bound to a
    volume and Ready, which takes longer than 30 s on this machine under load."""
    k.apply(pull_secret(), ns)
    k.apply(credentials(), ns)
    k.apply(gateway("gw"), ns)
    wait_for(
        "gateway gw Ready",
        lambda: condition(k.get("ibgateway", "gw", ns), "Ready").get("status") == "True",
        120,
        0.5,
    )


def global_halt_drill(k: Kubectl, ns: str) -> None:
    """b1 stops for the halt and re-arms when it is lifted. The global halt lives in the
    operator namespace, which is the release namespace."""
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


def bot_writers(audit_log: Path, ns: str) -> set[str]:
    """Who other than admin wrote the bots or their Deployments in `ns`."""
    writers = set()
    for line in audit_log.read_text().splitlines():
        event = json.loads(line)
        ref = event.get("objectRef", {})
        ours = ref.get("namespace") == ns and ref.get("resource") in (
            "deployments",
            "tradingbots",
        )
        if ours and event["user"]["username"] != "admin":
            writers.add(event["user"]["username"])
    return writers


def test_chart_webhook_refuses_an_approval_for_someone_else(
    release: Release, sa_operator: SaOperator
) -> None:
    """The two-person rule, enforced by the webhook the operator serves under the
    release (the session's own webhook is unregistered for this module)."""
    k, ns = release.kubectl, WATCHED
    k.apply(editors_rbac(), ns)
    alice = Kubectl(release.cluster.kubeconfig_for("alice"))
    k.apply(bot("tb2", armed=False, approved_by=None), ns)
    approval = {"approvedBy": "bob", "reason": "chart test", "expiresAt": in_seconds(3600)}
    proc = alice.run(
        "-n", ns, "patch", "tradingbot", "tb2", "--type=merge",
        "-p", json.dumps({"spec": {"approval": approval}}), check=False,
    )  # fmt: skip
    assert proc.returncode != 0, proc.stdout
    assert 'admission webhook "approval.tradingbots.spyoptions.io"' in proc.stderr
    assert "approvedBy must be the user who writes" in proc.stderr
    assert "approval" not in k.get("tradingbot", "tb2", ns)["spec"]
    assert "approval review" in sa_operator.text() and "alice" in sa_operator.text()


def test_chart_bot_guard_refuses_an_editors_scale_up(
    release: Release, sa_operator: SaOperator
) -> None:
    """A user with the `edit` ClusterRole in the namespace cannot raise a bot's
    replicas (neither through /scale nor by patching the Deployment); the operator's
    ServiceAccount may lower it and raise it back to what the gate allows."""
    k, ns = release.kubectl, WATCHED
    k("-n", ns, "create", "rolebinding", "alice-edit", "--clusterrole=edit", "--user=alice")
    alice = Kubectl(release.cluster.kubeconfig_for("alice"))
    can = alice("auth", "can-i", "patch", "deployments", "--subresource=scale", "-n", ns)
    assert can.strip() == "yes"
    wait_bot(k, ns, "b1", 1, "Armed", timeout=60)
    proc = alice.run("-n", ns, "scale", "deployment/b1-bot", "--replicas=2", check=False)
    assert proc.returncode != 0 and "spyoptions bot-guard rule bot-scale" in proc.stderr
    proc = alice.run(
        "-n", ns, "patch", "deployment", "b1-bot", "--type=merge",
        "-p", '{"spec":{"replicas":2}}', check=False,
    )  # fmt: skip
    assert proc.returncode != 0 and "spyoptions bot-guard rule bot-replicas" in proc.stderr
    assert deployment_replicas(k, ns, "b1") == 1
    # The ServiceAccount lowers it; the operator (the same account) raises it back.
    release.sa_kubectl("-n", ns, "scale", "deployment/b1-bot", "--replicas=0")
    wait_for("operator raised b1 back", lambda: deployment_replicas(k, ns, "b1") == 1, 60, 0.1)


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
    ("mint tokens", ("create", "serviceaccounts", "--subresource=token", "-n", WATCHED)),
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


def test_upgrade_with_changed_values_then_rollback(release: Release) -> None:
    k = release.kubectl
    key = approval_key(k)
    cert = webhook_cert(k)
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
    assert role_namespaces(k) == {RELEASE_NS, WATCHED, ADDED}
    assert f"--namespace={ADDED}" in operator_args(k)
    assert "--resync-seconds=15" in operator_args(k)
    assert approval_key(k) == key, "an upgrade must not rotate the approval key"
    assert webhook_cert(k) == cert, "an upgrade must not rotate the webhook certificate"
    binding = k.get("validatingadmissionpolicybinding", BINDINGS[0])
    selector = binding["spec"]["matchResources"]["namespaceSelector"]
    assert selector["matchExpressions"][0]["values"] == [WATCHED, ADDED]
    history = json.loads(release.helm("history", RELEASE, "-o", "json").stdout)
    assert [h["revision"] for h in history] == [1, 2]

    release.helm("rollback", RELEASE, "1", "--wait", "--timeout", "180s")
    wait_for("Role in the added namespace gone", lambda: ADDED not in role_namespaces(k), 30)
    assert role_namespaces(k) == {RELEASE_NS, WATCHED}
    assert f"--namespace={ADDED}" not in operator_args(k)
    assert (
        release.sa_kubectl.run(
            "auth", "can-i", "get", "secrets", "-n", ADDED, check=False
        ).stdout.strip()
        == "no"
    )


def test_uninstall_leaves_no_orphans(release: Release, sa_operator: SaOperator) -> None:
    k = release.kubectl
    assert leftovers(k)
    sa_operator.stop()
    release.dev_admission.restore()  # before the release's bindings go
    release.helm("uninstall", RELEASE, "--wait", "--timeout", "120s")
    wait_for("release objects gone", lambda: not leftovers(k), 60)
    # Helm keeps CRDs on purpose (deleting them would delete every TradingBot).
    assert k.get("crd", "tradingbots.spyoptions.io") is not None
    # The operator's and backend's pods go with their Deployments.
    wait_for(
        "operator pods gone",
        lambda: not json.loads(k("get", "pods", "-n", RELEASE_NS, "-o", "json"))["items"],
        60,
    )
