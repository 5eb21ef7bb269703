"""The children on the real control plane: garbage collection with their CR, a child
that lost our labels or was deleted by hand, and zero writes on a no-op reconcile
(counted in the control plane's audit log)."""

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
    deployment_replicas,
    paper_world,
    ready,
    tcp_listener,
    wait_bot,
)
from spy_dev.devcluster import REPO_ROOT
from spy_operator import constants as c

pytestmark = pytest.mark.usefixtures("operator")


EXAMPLES = REPO_ROOT / "examples"


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
