"""The approval webhook (two-person rule) on the real API server with its real token
users: alice (a trader) and bob (an approver) write as themselves; `admin` stands
for the GitOps identity. The webhook runs as `python -m spy_operator --webhook-only`
registered by the session fixture (spy_dev.webhook), as a chart would register it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from k8s_support import Cluster, Kubectl, wait_for
from operator_support import bot, condition, in_seconds, paper_world, wait_bot
from spy_dev.webhook import editors_rbac
from spy_operator import admission as adm

pytestmark = pytest.mark.usefixtures("operator", "gate_watcher")


def users(cluster: Cluster, namespace: str) -> tuple[Kubectl, Kubectl]:
    """alice and bob may read and edit TradingBots in this namespace (and nothing else)."""
    cluster.kubectl.apply(editors_rbac(), namespace)
    return Kubectl(cluster.kubeconfig_for("alice")), Kubectl(cluster.kubeconfig_for("bob"))


def patch(k: Kubectl, namespace: str, spec: dict[str, Any], check: bool = True) -> Any:
    return k.run(
        "-n", namespace, "patch", "tradingbot", "tb", "--type=merge",
        "-p", json.dumps({"spec": spec}), check=check,
    )  # fmt: skip


def approval(by: str, seconds: float = 3600) -> dict[str, Any]:
    return {"approvedBy": by, "reason": "two-person test", "expiresAt": in_seconds(seconds)}


def disarmed_bot(cluster: Cluster, namespace: str) -> tuple[Kubectl, Kubectl]:
    paper_world(cluster.kubectl, namespace)
    cluster.kubectl.apply(bot("tb", armed=False, approved_by=None), namespace)
    wait_bot(cluster.kubectl, namespace, "tb", 0, "NotArmed")
    return users(cluster, namespace)


def test_self_approval_is_refused_naming_the_rule(cluster: Cluster, namespace: str) -> None:
    alice, _ = disarmed_bot(cluster, namespace)
    proc = patch(alice, namespace, {"armed": True, "approval": approval("alice")}, check=False)
    assert proc.returncode != 0 and "two-person rule" in proc.stderr
    proc = patch(alice, namespace, {"approval": approval("bob")}, check=False)
    assert proc.returncode != 0 and "approvedBy must be the user who writes" in proc.stderr
    tb = cluster.kubectl.get("tradingbot", "tb", namespace)
    assert tb["spec"]["armed"] is False and "approval" not in tb["spec"]


def test_bob_approves_alice_arms_and_the_bot_runs(cluster: Cluster, namespace: str) -> None:
    alice, bob = disarmed_bot(cluster, namespace)
    patch(bob, namespace, {"approval": approval("bob")})
    patch(alice, namespace, {"armed": True})
    tb = wait_bot(cluster.kubectl, namespace, "tb", 1, "Armed")
    notes = tb["metadata"]["annotations"]
    assert notes[adm.APPROVAL_RECORDED_BY] == "bob" and notes[adm.ARMED_BY] == "alice"
    assert notes[adm.APPROVAL_VIA] == "user"
    assert condition(tb, "Approved")["status"] == "True"
    # bob cannot rewrite the record, nor can alice
    for who in (bob, alice):
        proc = who.run(
            "-n", namespace, "annotate", "tradingbot", "tb",
            f"{adm.ARMED_BY}=bob", "--overwrite", check=False,
        )  # fmt: skip
        assert proc.returncode != 0 and "recorded by the approval webhook" in proc.stderr


def test_approval_beyond_the_cap_is_refused(cluster: Cluster, namespace: str) -> None:
    _, bob = disarmed_bot(cluster, namespace)
    proc = patch(bob, namespace, {"approval": approval("bob", 9 * 3600)}, check=False)
    assert proc.returncode != 0 and "capped at 8 h" in proc.stderr


def test_webhook_down_refuses_writes_and_keeps_bots(cluster: Cluster, namespace: str) -> None:
    if cluster.webhook is None:
        pytest.skip("needs the local webhook process")
    alice, bob = disarmed_bot(cluster, namespace)
    patch(bob, namespace, {"approval": approval("bob")})
    patch(alice, namespace, {"armed": True})
    wait_bot(cluster.kubectl, namespace, "tb", 1, "Armed")
    cluster.webhook.stop()
    try:
        proc = patch(cluster.kubectl, namespace, {"armed": False}, check=False)
        assert proc.returncode != 0 and "approval.tradingbots.spyoptions.io" in proc.stderr
        tb = cluster.kubectl.get("tradingbot", "tb", namespace)
        assert tb["spec"]["armed"] is True and tb["status"]["armed"] is True
        assert (cluster.kubectl.get("deployment", "tb-bot", namespace) or {})["spec"][
            "replicas"
        ] == 1
    finally:
        cluster.webhook.start(port=cluster.webhook.port)
    patch(cluster.kubectl, namespace, {"armed": False})
    wait_bot(cluster.kubectl, namespace, "tb", 0, "NotArmed")


def test_unrecorded_approval_stays_at_zero(cluster: Cluster, namespace: str) -> None:
    """Without the webhook's signed record (never registered, or annotations copied
    from elsewhere) the gate holds the bot: ApprovalUnverified."""
    if cluster.state is None:
        pytest.skip("re-registers the local webhook")
    from spy_dev.webhook import register, unregister

    paper_world(cluster.kubectl, namespace)
    unregister(cluster.state)
    wait_for(
        "webhook gone",
        lambda: (
            cluster.kubectl.run(
                "get", "mutatingwebhookconfiguration", "spyoptions-approval", check=False
            ).returncode
            != 0
        ),
    )
    try:
        forged = bot("u")
        forged["metadata"]["annotations"] = {
            adm.APPROVAL_RECORDED_BY: "bob", adm.APPROVAL_VIA: "user",
            adm.ARMED_BY: "alice", adm.SIGNATURE: "0" * 64,
        }  # fmt: skip
        wait_for(
            "forged object accepted with no webhook", lambda: _apply(cluster, forged, namespace)
        )
        tb = wait_bot(cluster.kubectl, namespace, "u", 0, "ApprovalUnverified")
        assert "not recorded by the approval webhook" in tb["status"]["message"]
    finally:
        register(cluster.state, cluster.webhook.port)
        probe = bot("probe")
        probe["metadata"]["annotations"] = {adm.ARMED_BY: "x"}
        wait_for(
            "webhook active again",
            lambda: not _apply(cluster, probe, namespace, "--dry-run=server"),
        )


def _apply(cluster: Cluster, obj: dict[str, Any], namespace: str, *extra: str) -> bool:
    proc = cluster.kubectl.run(
        "apply", "-n", namespace, *extra, "-f", "-", stdin=json.dumps(obj), check=False
    )
    return proc.returncode == 0
