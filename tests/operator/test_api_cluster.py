"""The API and the children on the real control plane: example CRs, printer columns,
schema/CEL rejections, garbage collection, zero writes on a no-op reconcile, and bad
objects that must give conditions, never a crash."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from k8s_support import Cluster, Kubectl, wait_for
from operator_support import (
    admission_suspended,
    bot,
    condition,
    credentials,
    deployment_replicas,
    gateway,
    in_seconds,
    paper_world,
    pull_secret,
    tcp_listener,
    wait_bot,
)
from spy_dev.devcluster import REPO_ROOT
from spy_operator import constants as c

pytestmark = pytest.mark.usefixtures("operator")
EXAMPLES = REPO_ROOT / "examples"


def ready(kubectl: Kubectl, kind: str, name: str, namespace: str) -> bool:
    return condition(kubectl.get(kind, name, namespace), "Ready").get("status") == "True"


def test_paper_example_creates_every_child(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "paper.yaml"))
    wait_for("gateway Ready", lambda: ready(kubectl, "ibgateway", "paper", namespace))
    wait_for("detector Ready", lambda: ready(kubectl, "optionsdetector", "spy", namespace))

    sts = kubectl.get("statefulset", "paper", namespace)
    assert sts["spec"]["replicas"] == 1
    assert (
        sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    )
    env = {e["name"]: e for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["TRADING_MODE"]["value"] == "paper"
    assert env["READ_ONLY_API"]["value"] == "no"
    assert env["TWS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "ib-paper-credentials",
        "key": "password",
    }
    assert kubectl.get("service", "paper-headless", namespace)["spec"]["clusterIP"] == "None"
    assert kubectl.get("service", "paper", namespace)["spec"]["ports"][0]["port"] == 4002
    gw = kubectl.get("ibgateway", "paper", namespace)
    assert gw["status"]["endpoint"] == f"paper.{namespace}.svc:4002"

    det = kubectl.get("statefulset", "spy-detector", namespace)
    assert det["spec"]["replicas"] == 2
    denv = {e["name"]: e for e in det["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert denv["SPY_SHARD_COUNT"]["value"] == "2"
    assert denv["SPY_SHARD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"].endswith("pod-index']")
    assert det["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "acr-pull"}]
    od = kubectl.get("optionsdetector", "spy", namespace)
    tb = wait_bot(kubectl, namespace, "mean-reversion", 0, "NotArmed")
    # Distinct client ids on the shared gateway: the detector's block and the bot's.
    ids = od["status"]["ibClientIds"]
    assert len(ids) == 2 and len(set(ids)) == 2
    assert tb["status"]["ibClientId"] not in ids

    dep = kubectl.get("deployment", "mean-reversion-bot", namespace)
    assert dep["spec"]["replicas"] == 0
    assert dep["spec"]["strategy"]["type"] == "Recreate"
    for child in (sts, det, dep):
        labels = child["metadata"]["labels"]
        assert labels[c.LABEL_MANAGED_BY] == c.MANAGED_BY
        assert labels[c.LABEL_PART_OF] == c.PART_OF
        assert child["metadata"]["ownerReferences"][0]["apiVersion"] == c.API_VERSION


def test_live_example_is_held_until_armed(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "live.yaml"))
    wait_for("live gateway Ready", lambda: ready(kubectl, "ibgateway", "live", namespace))
    tb = wait_bot(kubectl, namespace, "live-hedger", 0, "NotArmed")
    assert tb["spec"]["mode"] == "live"
    sts = kubectl.get("statefulset", "live", namespace)
    assert sts["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 4001


def test_kubectl_get_tradingbots_shows_the_gate(kubectl: Kubectl, namespace: str) -> None:
    paper_world(kubectl, namespace)
    kubectl.apply(bot("armed-one", expires_in=3600), namespace)
    kubectl.apply(bot("idle-one", armed=False, expires_in=None), namespace)
    wait_bot(kubectl, namespace, "armed-one", 1, "Armed")
    wait_bot(kubectl, namespace, "idle-one", 0, "NotArmed")
    wait_for("armed bot Ready", lambda: ready(kubectl, "tradingbot", "armed-one", namespace))
    out = kubectl("get", "tradingbots", "-n", namespace)
    lines = out.strip().splitlines()
    header = lines[0].split()
    assert header == [
        "NAME",
        "MODE",
        "ARMED",
        "APPROVED-BY",
        "EXPIRES",
        "REPLICAS",
        "READY",
        "REASON",
        "AGE",
    ]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["armed-one"][1:4] == ["paper", "true", "bob"]
    assert rows["armed-one"][5:8] == ["1", "True", "Armed"]
    # idle-one has no approval: the Approved-By and Expires cells are empty.
    assert rows["idle-one"][1:3] == ["paper", "false"]
    assert rows["idle-one"][3:5] == ["0", "True"]
    assert rows["idle-one"][5] == "NotArmed"
    # The short name and the category work too.
    assert "armed-one" in kubectl("get", "tb", "-n", namespace)
    assert "tradingbot.spyoptions.io/armed-one" in kubectl("get", "spyoptions", "-n", namespace)


def test_kubectl_explain_teaches_the_approval(kubectl: Kubectl) -> None:
    out = kubectl("explain", "tradingbot.spec.approval")
    for text in ("approvedBy", "expiresAt", "reason", "RFC 3339"):
        assert text in out


REJECTIONS: list[tuple[str, dict[str, Any], str]] = [
    (
        "armed-without-approval",
        {"armed": True},
        "armed: true requires approval.approvedBy and approval.expiresAt",
    ),
    (
        "armed-without-expiry",
        {"armed": True, "approval": {"approvedBy": "bob"}},
        "armed: true requires approval.approvedBy",
    ),
    (
        "live-without-reason",
        # within the approval webhook's caps, so the schema's own rule is what refuses
        {"mode": "live", "approval": {"approvedBy": "bob", "expiresAt": in_seconds(3600)}},
        "mode: live needs an explicit approval.reason",
    ),
    ("bad-mode", {"mode": "yolo"}, 'Unsupported value: "yolo"'),
    (
        "bad-expiry",
        {"approval": {"approvedBy": "bob", "expiresAt": "tomorrow"}},
        "spec.approval.expiresAt",
    ),
    ("zero-contracts", {"risk": {"maxContracts": 0}}, "spec.risk.maxContracts"),
    ("vpn-port", {"vpn": {"host": "h", "port": 70000}}, "spec.vpn.port"),
    ("armed-not-bool", {"armed": "yes"}, "spec.armed"),
    (
        "vpn-timeout",
        {"vpn": {"host": "h", "port": 1, "timeoutSeconds": 60}},
        "spec.vpn.timeoutSeconds",
    ),
]


@pytest.mark.parametrize(
    ("spec", "message"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS]
)
def test_tradingbot_schema_rejections(
    kubectl: Kubectl, namespace: str, spec: dict[str, Any], message: str
) -> None:
    body = {
        "apiVersion": c.API_VERSION,
        "kind": "TradingBot",
        "metadata": {"name": "bad"},
        "spec": {"image": "x", "gatewayRef": {"name": "g"}, **spec},
    }
    proc = kubectl.run("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body), check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


OTHER_REJECTIONS: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "shards-zero",
        "OptionsDetector",
        {"image": "x", "gatewayRef": {"name": "g"}, "shards": 0},
        "spec.shards",
    ),
    (
        "dte-window",
        "OptionsDetector",
        {"image": "x", "gatewayRef": {"name": "g"}, "expiryWindow": {"minDte": 30, "maxDte": 7}},
        "minDte must be <= maxDte",
    ),
    (
        "symbol",
        "OptionsDetector",
        {"image": "x", "gatewayRef": {"name": "g"}, "symbol": "spy!"},
        "spec.symbol",
    ),
    (
        "api-port",
        "IBGateway",
        {"credentialsSecretRef": {"name": "c"}, "apiPort": 80},
        "spec.apiPort",
    ),
    (
        "restart-time",
        "IBGateway",
        {"credentialsSecretRef": {"name": "c"}, "dailyRestartTime": "25:00"},
        "spec.dailyRestartTime",
    ),
    ("no-credentials", "IBGateway", {"tradingMode": "paper"}, "spec.credentialsSecretRef"),
]


def test_names_too_long_for_children_are_refused(kubectl: Kubectl, namespace: str) -> None:
    body = {
        "apiVersion": c.API_VERSION,
        "kind": "IBGateway",
        "metadata": {"name": "g" * 51},
        "spec": {"credentialsSecretRef": {"name": "c"}},
    }
    proc = kubectl.run("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body), check=False)
    assert proc.returncode != 0
    assert "metadata.name must be at most 50 characters" in proc.stderr


@pytest.mark.parametrize(
    ("kind", "spec", "message"),
    [r[1:] for r in OTHER_REJECTIONS],
    ids=[r[0] for r in OTHER_REJECTIONS],
)
def test_gateway_and_detector_schema_rejections(
    kubectl: Kubectl, namespace: str, kind: str, spec: dict[str, Any], message: str
) -> None:
    body = {"apiVersion": c.API_VERSION, "kind": kind, "metadata": {"name": "bad"}, "spec": spec}
    proc = kubectl.run("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body), check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_deleting_a_cr_garbage_collects_its_children(kubectl: Kubectl, namespace: str) -> None:
    paper_world(kubectl, namespace)
    kubectl.apply(bot("gc", armed=False), namespace)
    wait_bot(kubectl, namespace, "gc", 0, "NotArmed")
    kubectl("delete", "-n", namespace, "tradingbot/gc")
    wait_for(
        "bot deployment collected",
        lambda: kubectl.get("deployment", "gc-bot", namespace) is None,
        30,
    )
    kubectl("delete", "-n", namespace, "ibgateway/gw")
    for kind, name in (("statefulset", "gw"), ("service", "gw"), ("service", "gw-headless")):
        wait_for(
            f"{kind} {name} collected",
            lambda k=kind, n=name: kubectl.get(k, n, namespace) is None,
            30,
        )


def test_a_child_without_our_labels_is_still_ours(kubectl: Kubectl, namespace: str) -> None:
    """Children are found by ownerReference: stripping the managed-by label does not hide
    a hand scale-up from the operator."""
    paper_world(kubectl, namespace)
    kubectl.apply(bot("unlabelled", armed=False), namespace)
    wait_bot(kubectl, namespace, "unlabelled", 0, "NotArmed")
    kubectl("label", "-n", namespace, "deployment/unlabelled-bot", f"{c.LABEL_MANAGED_BY}-")
    with admission_suspended(kubectl):  # else refused at admission
        kubectl("scale", "-n", namespace, "deployment/unlabelled-bot", "--replicas=1")
        wait_for(
            "scale-up reverted",
            lambda: deployment_replicas(kubectl, namespace, "unlabelled") == 0,
            5,
            0.05,
        )
    wait_for(
        "label restored",
        lambda: (
            kubectl.get("deployment", "unlabelled-bot", namespace)["metadata"]["labels"].get(
                c.LABEL_MANAGED_BY
            )
            == c.MANAGED_BY
        ),
        10,
    )


def test_a_child_deleted_by_hand_is_recreated(kubectl: Kubectl, namespace: str) -> None:
    paper_world(kubectl, namespace)
    kubectl.apply(bot("again", armed=False), namespace)
    wait_bot(kubectl, namespace, "again", 0, "NotArmed")
    uid = kubectl.get("deployment", "again-bot", namespace)["metadata"]["uid"]
    kubectl("delete", "-n", namespace, "deployment/again-bot")

    def recreated() -> bool:
        dep = kubectl.get("deployment", "again-bot", namespace)
        return dep is not None and dep["metadata"]["uid"] != uid

    wait_for("bot deployment recreated", recreated, 30)
    kubectl("delete", "-n", namespace, "service/gw")
    wait_for(
        "gateway service recreated", lambda: kubectl.get("service", "gw", namespace) is not None, 30
    )


def _operator_writes(audit_log: Path, start: int, namespace: str) -> list[dict[str, Any]]:
    writes = []
    with audit_log.open() as fh:
        fh.seek(start)
        for line in fh:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            user = event.get("user", {}).get("username")
            ref = event.get("objectRef", {})
            if user == c.MANAGED_BY and ref.get("namespace") == namespace:
                writes.append(
                    {
                        "verb": event["verb"],
                        "resource": ref.get("resource"),
                        "name": ref.get("name"),
                        "sub": ref.get("subresource"),
                    }
                )
    return writes


def _quiet_audit_offset(audit: Path, namespace: str) -> int:
    """Audit-log offset once the operator has written nothing in this namespace for 1 s."""
    seen = {"n": -1, "since": time.monotonic()}

    def quiet() -> int | None:
        n = len(_operator_writes(audit, 0, namespace))
        if n != seen["n"]:
            seen.update(n=n, since=time.monotonic())
            return None
        return audit.stat().st_size if time.monotonic() - seen["since"] >= 1.0 else None

    return wait_for("operator quiet", quiet, 30)


def test_no_op_reconcile_writes_nothing(
    cluster: Cluster, kubectl: Kubectl, namespace: str, operator: Any
) -> None:
    if not cluster.local:
        pytest.skip("counts writes in the local control plane's audit log")
    assert cluster.state is not None
    audit = cluster.state.audit_log
    listener = tcp_listener()
    _, port = listener.__enter__()
    kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "paper.yaml"))
    paper_world(kubectl, namespace)
    kubectl.apply(bot("quiet"), namespace)
    # A probed VPN is re-checked every second in tests: its status must not churn.
    kubectl.apply(
        bot("quietvpn", vpn={"host": "127.0.0.1", "port": port, "timeoutSeconds": 0.5}), namespace
    )
    wait_bot(kubectl, namespace, "quiet", 1, "Armed")
    wait_bot(kubectl, namespace, "quietvpn", 1, "Armed")
    for kind, name in (
        ("tradingbot", "quiet"),
        ("tradingbot", "mean-reversion"),
        ("ibgateway", "paper"),
        ("optionsdetector", "spy"),
    ):
        wait_for(f"{kind} {name} Ready", lambda k=kind, n=name: ready(kubectl, k, n, namespace), 30)
    start = _quiet_audit_offset(audit, namespace)
    before = _operator_writes(audit, 0, namespace)
    assert before, "the audit log records the operator's writes (sanity check of the counter)"
    # Touch every object without changing its spec: each touch is an event, so the
    # operator reconciles each one; plus two resync periods (3 s each in tests).
    for kind, name in (
        ("tradingbot", "quiet"),
        ("tradingbot", "mean-reversion"),
        ("ibgateway", "paper"),
        ("optionsdetector", "spy"),
        ("secret", "acr-pull"),
    ):
        kubectl("label", "-n", namespace, f"{kind}/{name}", "touched=yes", "--overwrite")
    # Absence of writes can only be observed over a window: two resync periods.
    time.sleep(2 * operator.resync_seconds + 1)
    writes = _operator_writes(audit, start, namespace)
    listener.__exit__(None, None, None)
    assert writes == [], f"a no-op reconcile wrote: {writes}"


BAD_OBJECTS: list[tuple[str, dict[str, Any]]] = [
    ("bot-missing-gateway", bot("orphan", gw="does-not-exist")),
    (
        "gateway-missing-credentials",
        {
            "apiVersion": c.API_VERSION,
            "kind": "IBGateway",
            "metadata": {"name": "nocreds"},
            "spec": {"credentialsSecretRef": {"name": "missing"}},
        },
    ),
    (
        "detector-missing-gateway",
        {
            "apiVersion": c.API_VERSION,
            "kind": "OptionsDetector",
            "metadata": {"name": "lost"},
            "spec": {
                "image": "x",
                "gatewayRef": {"name": "missing"},
                "imagePullSecrets": [{"name": "missing"}],
                "backend": {"url": "http://b", "tokenSecretRef": {"name": "missing"}},
            },
        },
    ),
]


@pytest.mark.parametrize("obj", [b[1] for b in BAD_OBJECTS], ids=[b[0] for b in BAD_OBJECTS])
def test_dangling_objects_get_conditions_not_crashes(
    kubectl: Kubectl, namespace: str, operator: Any, obj: dict[str, Any]
) -> None:
    kubectl.apply(obj, namespace)
    kind, name = obj["kind"].lower(), obj["metadata"]["name"]

    def reported() -> dict[str, Any] | None:
        got = kubectl.get(kind, name, namespace)
        cond = condition(got, "Ready") if kind != "tradingbot" else condition(got, "Armed")
        return cond if cond.get("status") == "False" else None

    cond = wait_for(f"{kind} {name} reports the problem", reported, 30)
    assert cond["reason"] in {"GatewayNotFound", "CredentialsSecretNotFound"}
    assert operator.alive()
    assert "reconcile crashed" not in operator.log_text()


def test_credentials_secret_with_a_missing_key(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(pull_secret(), namespace)
    kubectl.apply(credentials(keys=("username",)), namespace)
    kubectl.apply(gateway("gw"), namespace)
    cond = wait_for(
        "credentials reported",
        lambda: (
            condition(kubectl.get("ibgateway", "gw", namespace), "Ready").get("reason")
            == "CredentialsKeyMissing"
            and condition(kubectl.get("ibgateway", "gw", namespace), "Ready")
        ),
        30,
    )
    assert "password" in cond["message"]


def test_secret_values_never_reach_the_logs(
    operator: Any, kubectl: Kubectl, namespace: str
) -> None:
    marker = "s3cr3t-value-that-must-not-leak"
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "ib-creds"},
            "type": "Opaque",
            "stringData": {"username": marker, "password": marker},
        },
        namespace,
    )
    kubectl.apply(pull_secret(), namespace)
    kubectl.apply(gateway("gw"), namespace)
    wait_for("gateway Ready", lambda: ready(kubectl, "ibgateway", "gw", namespace), 30)
    import base64

    encoded = base64.b64encode(marker.encode()).decode()
    text = operator.log_text()
    assert marker not in text and encoded not in text
