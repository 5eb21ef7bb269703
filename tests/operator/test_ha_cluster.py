"""Two operator replicas (leader Lease) and the invariant watcher's own check."""

from __future__ import annotations

import json
from typing import Any

import pytest
from k8s_support import Cluster, Kubectl, loopback_text, wait_for
from operator_support import (
    GateInvariantWatcher,
    OperatorProcess,
    admission_suspended,
    bot,
    deployment_replicas,
    paper_world,
    wait_bot,
)
from spy_operator import constants as c


def leader_metric(op: OperatorProcess) -> float | None:
    text = loopback_text(f"http://127.0.0.1:{op.metrics_port}/metrics")
    if text is None:
        return None
    for line in text.splitlines():
        if line.startswith("spy_operator_leader "):
            return float(line.split()[1])
    return None


def test_two_replicas_one_leader_and_failover(
    cluster: Cluster,
    kubectl: Kubectl,
    namespace: str,
    operator: OperatorProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    standby = OperatorProcess(cluster, tmp_path_factory.mktemp("standby"), user="spy-operator-2")
    standby.start()
    try:
        wait_for("standby serves metrics", lambda: leader_metric(standby) is not None, 30)
        wait_for("session operator leads", lambda: leader_metric(operator) == 1.0, 30)
        assert leader_metric(standby) == 0.0
        paper_world(kubectl, namespace)
        kubectl.apply(bot("ha", armed=False), namespace)
        wait_bot(kubectl, namespace, "ha", 0, "NotArmed")

        operator.kill()  # the leader dies without releasing its Lease
        wait_for("standby takes over", lambda: leader_metric(standby) == 1.0, 30)
        with admission_suspended(kubectl):  # else refused at admission
            kubectl("scale", "-n", namespace, "deployment/ha-bot", "--replicas=1")
            wait_for(
                "new leader reverts the scale-up",
                lambda: deployment_replicas(kubectl, namespace, "ha") == 0,
                10,
                0.05,
            )
        lease = json.loads(
            kubectl("get", "lease", "-n", c.DEFAULT_OPERATOR_NAMESPACE, c.LEASE_NAME, "-o", "json")
        )
        assert lease["spec"]["leaseTransitions"] >= 1
    finally:
        if not operator.alive():
            operator.start()
        standby.stop()  # a clean stop hands the Lease back at once
    wait_for("session operator leads again", lambda: leader_metric(operator) == 1.0, 30)
    assert "reconcile crashed" not in standby.log_text()


def test_invariant_watcher_catches_a_deployment_above_the_gate(
    kubectl: Kubectl, namespace: str, operator: Any
) -> None:
    """The watcher must fail on a real violation, or its silence means nothing.

    A Deployment labelled as the bot's, running 1 replica while the bot is not armed,
    with the operator stopped (a running operator stops such a copy within a second:
    test_gate_restart_and_halt_cluster.py).
    """
    paper_world(kubectl, namespace)
    kubectl.apply(bot("w", armed=False), namespace)
    wait_bot(kubectl, namespace, "w", 0, "NotArmed")
    watcher = GateInvariantWatcher(kubectl, revert_window=0.5)
    watcher.start()
    operator.stop()
    # The admission policy refuses a rogue bot-labelled Deployment; lift it to plant one.
    with admission_suspended(kubectl):
        try:
            kubectl.apply(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {
                        "name": "rogue",
                        "labels": {c.LABEL_COMPONENT: "trading-bot", c.LABEL_INSTANCE: "w"},
                    },
                    "spec": {
                        "replicas": 1,
                        "selector": {"matchLabels": {"app": "rogue"}},
                        "template": {
                            "metadata": {"labels": {"app": "rogue"}},
                            "spec": {"containers": [{"name": "c", "image": "x"}]},
                        },
                    },
                },
                namespace,
            )
            wait_for("violation recorded", lambda: watcher.violations, 15)
        finally:
            watcher.stop()
            kubectl("delete", "-n", namespace, "deployment/rogue")
            operator.start()
    assert watcher.violations[0].deployment == f"{namespace}/rogue"
    assert watcher.violations[0].allowed == 0
