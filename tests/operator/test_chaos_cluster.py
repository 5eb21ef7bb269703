"""The chaos suite's short variant (bench/chaos.py runs 100): a few randomized runs
with a fixed seed on the session's control plane, with the session's operator, under
the gate invariant watcher. Every kind of chaos is dealt once over the runs
(tests/chaos_plan.py); no bot Deployment or running bot pod may stay above the gate's
allowance longer than the revert window (2 s), or the restart window (5 s) after the
operator or kube-apiserver comes back.
"""

from __future__ import annotations

import pytest
from chaos_plan import Kind
from chaos_plane import ProcessControl
from chaos_runner import Harness, Settings, available_kinds, run_chaos
from k8s_support import Cluster
from operator_support import OperatorProcess

SEED = 8
RUNS = 5


@pytest.mark.slow
def test_randomized_chaos_leaves_nothing_above_the_gate(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    local = cluster.state is not None
    harness = Harness(
        kubeconfig=cluster.kubeconfig,
        operator=operator,
        # On an existing cluster the operator runs with your kubeconfig: its identity
        # (for admission refusals) and the apiserver's process are not ours to use.
        operator_user=operator.user if local else None,
        operator_kubeconfig=cluster.kubeconfig_for(operator.user) if local else None,
        plane=ProcessControl(cluster.state) if cluster.state is not None else None,
    )
    if local:
        assert available_kinds(harness) == frozenset(Kind)
    summary = run_chaos(harness, Settings(runs=RUNS, seed=SEED, steps=3, pace=0.8))
    try:
        assert summary["runs"] == RUNS
        assert summary["samples"] > 100, "the invariant watcher barely ran"
        assert not summary["harness_errors"], summary["harness_errors"]
        assert summary["violations"] == 0, "\n".join(summary["violation_list"])
    finally:
        if not operator.alive():
            operator.start()
