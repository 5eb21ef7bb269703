"""The bot-guard admission policies (deploy/admission/) on the real kube-apiserver: what
keeps working under them (the deployment controller, the garbage collector) and that
hand scale-ups of a disarmed bot create no pods. Helpers in admission_support.py.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from admission_support import (
    allowed,
    refused,
    scale,
)
from k8s_support import Cluster, Kubectl, wait_for
from operator_support import (
    bot,
    in_seconds,
    paper_world,
    wait_bot,
)
from spy_dev.devcluster import client_options
from spy_operator import constants as c

pytestmark = pytest.mark.usefixtures("local_cluster")


# ------------------------------------------------- with the operator and the controllers


def test_deployment_controller_and_garbage_collector_still_work(
    kubectl: Kubectl, ns: str, operator: Any
) -> None:
    """kube-controller-manager (user `components`, not exempt) updates bot Deployments:
    the revision annotation, ownerReferences removed on --cascade=orphan, the
    foregroundDeletion finalizer. None of it touches a guarded field."""
    paper_world(kubectl, ns)
    kubectl.apply(bot("orph"), ns)
    kubectl.apply(bot("fg"), ns)
    for name in ("orph", "fg"):
        wait_bot(kubectl, ns, name, 1, "Armed")
        dep = wait_for(
            f"{name}-bot rolled out by the deployment controller",
            lambda name=name: (
                (d := kubectl.get("deployment", f"{name}-bot", ns))
                and d["status"].get("readyReplicas") == 1
                and d
            ),
            30,
        )
        # Written by the deployment controller (not exempt) on the bot Deployment itself.
        assert int(dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"]) >= 1

    kubectl("delete", "-n", ns, "tradingbot/orph", "--cascade=orphan", "--timeout=30s")
    orphan = wait_for(
        "garbage collector removed the ownerReference",
        lambda: (
            (d := kubectl.get("deployment", "orph-bot", ns))
            and not d["metadata"].get("ownerReferences")
            and d
        ),
        30,
    )
    assert orphan["metadata"]["labels"][c.LABEL_COMPONENT] == "trading-bot"
    assert kubectl.get("tradingbot", "orph", ns) is None

    kubectl("delete", "-n", ns, "tradingbot/fg", "--cascade=foreground", "--timeout=60s")
    assert kubectl.get("deployment", "fg-bot", ns) is None
    # The orphan is nobody's now; scaling it down stays allowed, up does not.
    refused(scale(kubectl, "admin", ns, "orph-bot", 2), "bot-scale", "admin")
    allowed(scale(kubectl, "admin", ns, "orph-bot", 0))


@contextlib.contextmanager
def pod_additions(cluster: Cluster, namespace: str) -> Iterator[list[tuple[float, str]]]:
    """Every pod ADDED in `namespace` while the block runs: (monotonic time, name)."""
    assert cluster.state is not None
    seen: list[tuple[float, str]] = []
    ready = threading.Event()
    stop = threading.Event()

    errors: list[Exception] = []

    def watch() -> None:
        opts = client_options(cluster.state)  # type: ignore[arg-type]
        path = f"/api/v1/namespaces/{namespace}/pods"
        try:
            with httpx.Client(**opts, timeout=httpx.Timeout(5, read=None)) as client:
                listing = client.get(path).json()
                params = {
                    "watch": "1",
                    "resourceVersion": listing["metadata"]["resourceVersion"],
                    "timeoutSeconds": "300",
                }
                with client.stream("GET", path, params=params) as resp:
                    ready.set()
                    for line in resp.iter_lines():
                        event = json.loads(line)
                        if event["type"] == "ADDED":
                            seen.append((time.monotonic(), event["object"]["metadata"]["name"]))
                        if stop.is_set():
                            return
        # The session's cluster may stop under a watch that outlives its test.
        except httpx.HTTPError as err:
            if not stop.is_set():
                errors.append(err)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    assert ready.wait(15), "pod watch did not start"
    try:
        yield seen
    finally:
        stop.set()
    assert not errors, f"the pod watch broke off: {errors}"


def test_twenty_hand_scale_ups_of_a_disarmed_bot_create_no_pods(
    cluster: Cluster, kubectl: Kubectl, ns: str, operator: Any
) -> None:
    """Issue 8 #5: 20 hand scale-ups of a disarmed bot were each reverted, yet 13 pods
    were created. Refused at admission, they create none; arming the bot afterwards
    shows the watch does see the bot's pods."""
    paper_world(kubectl, ns)
    kubectl.apply(bot("five", armed=False), ns)
    wait_bot(kubectl, ns, "five", 0, "NotArmed")
    with pod_additions(cluster, ns) as added:
        results = [scale(kubectl, "admin", ns, "five-bot", 1) for _ in range(20)]
        armed_at = time.monotonic()
        kubectl(
            "patch",
            "-n",
            ns,
            "tradingbot/five",
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
        wait_bot(kubectl, ns, "five", 1, "Armed")
        wait_for(
            "the armed bot's pod in the watch",
            lambda: [n for _, n in added if n.startswith("five-bot-")],
            30,
        )
    before_arming = [
        name for moment, name in added if moment < armed_at and name.startswith("five-bot-")
    ]
    assert before_arming == [], f"hand scale-ups created pods: {before_arming}"
    for proc in results:
        refused(proc, "bot-scale", "admin")
