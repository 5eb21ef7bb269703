"""The API on the real control plane: the example CRs and their children, printer
columns, `kubectl explain`, and schema/CEL rejections. The children's lifecycle is
test_children_cluster.py; bad objects are test_bad_objects_cluster.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from k8s_support import Kubectl, wait_for
from operator_support import (
    bot,
    in_seconds,
    paper_world,
    ready,
    wait_bot,
)
from spy_dev.devcluster import REPO_ROOT
from spy_operator import constants as c

pytestmark = pytest.mark.usefixtures("operator")


EXAMPLES = REPO_ROOT / "examples"


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
