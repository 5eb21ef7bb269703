"""The safety gate end to end on the real control plane with the operator running.

Every test here runs under the module's gate invariant watcher (conftest.py), which
fails the module if any bot Deployment stays above what the gate allows for longer
than the revert window.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from k8s_support import Kubectl, wait_for
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
from spy_operator import constants as c

pytestmark = pytest.mark.usefixtures("operator", "gate_watcher")


def test_armed_approved_with_ready_gateway_runs_one_replica(
    kubectl: Kubectl, namespace: str
) -> None:
    paper_world(kubectl, namespace)
    kubectl.apply(bot("b1"), namespace)
    tb = wait_bot(kubectl, namespace, "b1", 1, "Armed")
    assert tb["status"]["armed"] is True
    assert condition(tb, "Armed")["status"] == "True"
    assert condition(tb, "Approved")["reason"] == "ApprovalRecorded"
    dep = kubectl.get("deployment", "b1-bot", namespace)
    assert dep["spec"]["strategy"]["type"] == "Recreate"
    owner = dep["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("TradingBot", "b1", True)
    wait_for(
        "bot Ready",
        lambda: (
            condition(kubectl.get("tradingbot", "b1", namespace), "Ready").get("status") == "True"
        ),
    )


CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    # (id, bot overrides, gateway overrides, expected reason)
    ("not-armed", {"armed": False}, {}, "NotArmed"),
    ("approval-expired", {"expires_in": -60}, {}, "ApprovalExpired"),
    ("gateway-missing", {"gw": "nope"}, {}, "GatewayNotFound"),
    ("mode-mismatch", {"mode": "live"}, {}, "GatewayModeMismatch"),
    ("pull-secret-missing", {"imagePullSecrets": [{"name": "absent"}]}, {}, "PullSecretNotFound"),
    (
        "pull-secret-wrong-type",
        {"imagePullSecrets": [{"name": "ib-creds"}]},
        {},
        "PullSecretWrongType",
    ),
    (
        "pull-secret-other-registry",
        {"imagePullSecrets": [{"name": "other-reg"}]},
        {},
        "PullSecretMissingRegistry",
    ),
    (
        "pull-secret-unparsable",
        {"imagePullSecrets": [{"name": "garbage"}]},
        {},
        "PullSecretUnparsable",
    ),
    (
        "vpn-unreachable",
        {"vpn": {"host": "127.0.0.1", "port": 1, "timeoutSeconds": 0.5}},
        {},
        "VPNUnreachable",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "gw_overrides", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_failing_condition_holds_the_bot_at_zero(
    kubectl: Kubectl,
    namespace: str,
    overrides: dict[str, Any],
    gw_overrides: dict[str, Any],
    reason: str,
) -> None:
    paper_world(kubectl, namespace, **gw_overrides)
    kubectl.apply(pull_secret("other-reg", "elsewhere.azurecr.io"), namespace)
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "garbage"},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": '{"credsStore": "desktop"}'},
        },
        namespace,
    )
    kubectl.apply(bot("b", **overrides), namespace)
    tb = wait_bot(kubectl, namespace, "b", 0, reason)
    assert tb["status"]["armed"] is False
    assert condition(tb, "Armed")["reason"] == reason
    assert condition(tb, "Armed")["status"] == "False"


def test_live_bot_on_read_only_live_gateway_is_held(kubectl: Kubectl, namespace: str) -> None:
    paper_world(kubectl, namespace, gw="live", mode="live", read_only=True)
    kubectl.apply(bot("lb", gw="live", mode="live"), namespace)
    tb = wait_bot(kubectl, namespace, "lb", 0, "GatewayReadOnly")
    assert "readOnlyApi: false" in tb["status"]["message"]


def test_gateway_not_ready_holds_the_bot(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(pull_secret(), namespace)
    # No credentials Secret: the gateway cannot become Ready.
    kubectl.apply(gateway("gw"), namespace)
    kubectl.apply(bot("b"), namespace)
    wait_bot(kubectl, namespace, "b", 0, "GatewayNotReady")
    gw = kubectl.get("ibgateway", "gw", namespace)
    assert condition(gw, "Ready")["reason"] == "CredentialsSecretNotFound"
    # Fixing the world (adding the Secret) arms the bot with no edit to it.
    kubectl.apply(credentials(), namespace)
    wait_bot(kubectl, namespace, "b", 1, "Armed")


def test_approval_expiry_disarms_without_any_edit(kubectl: Kubectl, namespace: str) -> None:
    paper_world(kubectl, namespace)
    kubectl.apply(bot("exp", expires_in=6), namespace)
    wait_bot(kubectl, namespace, "exp", 1, "Armed")
    generation = kubectl.get("tradingbot", "exp", namespace)["metadata"]["generation"]
    tb = wait_bot(kubectl, namespace, "exp", 0, "ApprovalExpired", timeout=20)
    assert tb["metadata"]["generation"] == generation, "nobody edited the bot"
    assert condition(tb, "Approved")["status"] == "False"


def test_hand_scale_up_is_reverted(kubectl: Kubectl, namespace: str, operator: Any) -> None:
    paper_world(kubectl, namespace)
    kubectl.apply(bot("sc", armed=False), namespace)
    wait_bot(kubectl, namespace, "sc", 0, "NotArmed")
    # The admission policy refuses hand scale-ups first; this is the revert behind it.
    with admission_suspended(kubectl):
        kubectl("scale", "-n", namespace, "deployment/sc-bot", "--replicas=3")
        wait_for(
            "scale-up reverted", lambda: deployment_replicas(kubectl, namespace, "sc") == 0, 5, 0.05
        )
        # And for an armed bot, anything above 1 goes back to 1.
        kubectl(
            "patch",
            "-n",
            namespace,
            "tradingbot/sc",
            "--type=merge",
            "-p",
            json.dumps(
                {
                    "spec": {
                        "armed": True,
                        "approval": {"approvedBy": "bob", "expiresAt": in_seconds(3600)},
                    }
                }
            ),
        )
        wait_bot(kubectl, namespace, "sc", 1, "Armed")
        kubectl("scale", "-n", namespace, "deployment/sc-bot", "--replicas=2")
        wait_for(
            "scale-up reverted to 1",
            lambda: deployment_replicas(kubectl, namespace, "sc") == 1,
            5,
            0.05,
        )


def test_global_halt_disarms_every_bot_and_shows_in_status(
    kubectl: Kubectl, namespace: str
) -> None:
    paper_world(kubectl, namespace)
    for name in ("h1", "h2"):
        kubectl.apply(bot(name), namespace)
    for name in ("h1", "h2"):
        wait_bot(kubectl, namespace, name, 1, "Armed")
    kubectl(
        "-n",
        c.DEFAULT_OPERATOR_NAMESPACE,
        "create",
        "configmap",
        c.HALT_CONFIGMAP,
        "--from-literal=reason=integration drill",
    )
    try:
        for name in ("h1", "h2"):
            tb = wait_bot(kubectl, namespace, name, 0, "GlobalHalt", timeout=10)
            assert condition(tb, "Halted")["status"] == "True"
            assert "integration drill" in tb["status"]["message"]
    finally:
        kubectl("-n", c.DEFAULT_OPERATOR_NAMESPACE, "delete", "configmap", c.HALT_CONFIGMAP)
    for name in ("h1", "h2"):
        tb = wait_bot(kubectl, namespace, name, 1, "Armed")
        assert condition(tb, "Halted")["status"] == "False"


def test_vpn_probe_follows_the_tunnel_up_and_down(kubectl: Kubectl, namespace: str) -> None:
    paper_world(kubectl, namespace)
    with tcp_listener() as (_, port):
        kubectl.apply(
            bot("v", vpn={"host": "127.0.0.1", "port": port, "timeoutSeconds": 0.5}), namespace
        )
        tb = wait_bot(kubectl, namespace, "v", 1, "Armed")
        assert condition(tb, "VPNReady")["reason"] == "VPNReachable"
        assert tb["status"]["vpnRttMs"] >= 0
    # Listener closed: the tunnel is down, the bot goes to 0 with no edit.
    tb = wait_bot(kubectl, namespace, "v", 0, "VPNUnreachable", timeout=15)
    assert condition(tb, "VPNReady")["status"] == "False"


def test_vpn_not_required_only_reports(kubectl: Kubectl, namespace: str) -> None:
    paper_world(kubectl, namespace)
    kubectl.apply(
        bot("nr", vpn={"host": "127.0.0.1", "port": 1, "required": False, "timeoutSeconds": 0.5}),
        namespace,
    )
    tb = wait_bot(kubectl, namespace, "nr", 1, "Armed")
    wait_for(
        "VPNReady False reported",
        lambda: (
            condition(kubectl.get("tradingbot", "nr", namespace), "VPNReady").get("reason")
            == "VPNUnreachable"
        ),
    )
    assert tb["status"]["replicas"] == 1


def test_a_bot_being_deleted_is_stopped_at_once(kubectl: Kubectl, namespace: str) -> None:
    """Deletion can wait on someone else's finalizer; the bot must not trade meanwhile."""
    paper_world(kubectl, namespace)
    body = bot("fin")
    body["metadata"]["finalizers"] = ["example.com/keep"]
    kubectl.apply(body, namespace)
    wait_bot(kubectl, namespace, "fin", 1, "Armed")
    kubectl("delete", "-n", namespace, "tradingbot/fin", "--wait=false")
    try:
        wait_for(
            "deleting bot closed",
            lambda: deployment_replicas(kubectl, namespace, "fin") == 0,
            10,
            0.05,
        )
        assert kubectl.get("tradingbot", "fin", namespace)["metadata"]["deletionTimestamp"]
    finally:
        kubectl(
            "patch",
            "-n",
            namespace,
            "tradingbot/fin",
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
        )


def test_operator_killed_and_restarted_converges(
    kubectl: Kubectl, namespace: str, operator: Any, gate_watcher: Any
) -> None:
    paper_world(kubectl, namespace)
    kubectl.apply(bot("k1"), namespace)
    kubectl.apply(bot("k2", armed=False), namespace)
    wait_bot(kubectl, namespace, "k1", 1, "Armed")
    wait_bot(kubectl, namespace, "k2", 0, "NotArmed")
    with gate_watcher.outage():
        operator.kill()
        # While it is down: disarm k1 and scale k2 by hand. Nothing but a human can
        # raise replicas now; the restarted operator must put both back under the gate.
        kubectl(
            "patch",
            "-n",
            namespace,
            "tradingbot/k1",
            "--type=merge",
            "-p",
            '{"spec":{"armed":false}}',
        )
        with admission_suspended(kubectl):  # else refused at admission
            kubectl("scale", "-n", namespace, "deployment/k2-bot", "--replicas=1")
        leaders_before = operator.log_text().count("became leader")
        operator.start()
        # SIGKILL left the old Lease behind; the new process takes it when it lapses.
        wait_for(
            "restarted operator leads",
            lambda: operator.log_text().count("became leader") > leaders_before,
            30,
        )
    wait_bot(kubectl, namespace, "k1", 0, "NotArmed", timeout=10)
    wait_bot(kubectl, namespace, "k2", 0, "NotArmed", timeout=10)
