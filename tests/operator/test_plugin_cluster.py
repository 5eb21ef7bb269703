"""`kubectl spyoptions` run as a real kubectl plugin (kubectl finds the installed
`kubectl-spyoptions` on PATH) by the real token users bob and alice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from k8s_support import Cluster, Kubectl
from operator_support import bot, paper_world, wait_bot
from spy_dev.devcluster import DEFAULT_BIN
from spy_dev.webhook import editors_rbac
from spy_operator import constants as c

pytestmark = pytest.mark.usefixtures("operator", "gate_watcher")


def plugin(cluster: Cluster, user: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        KUBECONFIG=str(cluster.kubeconfig_for(user)),
        PATH=f"{Path(sys.executable).parent}:{DEFAULT_BIN}:{os.environ.get('PATH', '')}",
    )
    return subprocess.run(
        [str(DEFAULT_BIN / "kubectl"), "spyoptions", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_approve_arm_status_disarm_through_the_plugin(cluster: Cluster, namespace: str) -> None:
    kubectl: Kubectl = cluster.kubectl
    paper_world(kubectl, namespace)
    kubectl.apply(editors_rbac(), namespace)
    kubectl.apply(bot("pl", armed=False, approved_by=None), namespace)
    wait_bot(kubectl, namespace, "pl", 0, "NotArmed")

    approved = plugin(cluster, "bob", "approve", "pl", "-n", namespace, "--for", "1h",
                      "--reason", "plugin test")  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    assert "approval: by bob" in approved.stdout and "recorded for bob via user" in approved.stdout
    assert "why not running: arm it" in approved.stdout

    self_arm = plugin(cluster, "bob", "arm", "pl", "-n", namespace)
    assert self_arm.returncode == 1 and "two-person rule" in self_arm.stderr

    armed = plugin(cluster, "alice", "arm", "pl", "-n", namespace)
    assert armed.returncode == 0, armed.stderr
    wait_bot(kubectl, namespace, "pl", 1, "Armed")
    status = plugin(cluster, "alice", "status", "pl", "-n", namespace)
    assert "armed true" in status.stdout and "armed by alice" in status.stdout
    listing = plugin(cluster, "admin", "status", "-A")
    assert any(
        line.split()[:2] == [namespace, "pl"] and "Armed" in line
        for line in listing.stdout.splitlines()
    )

    halted = plugin(cluster, "admin", "halt", "--reason", "plugin drill")
    assert halted.returncode == 0, halted.stderr
    try:
        wait_bot(kubectl, namespace, "pl", 0, "GlobalHalt")
        why = plugin(cluster, "alice", "status", "pl", "-n", namespace)
        assert "why not running: a global halt is set" in why.stdout
    finally:
        resumed = plugin(cluster, "admin", "resume")
        assert resumed.returncode == 0, resumed.stderr
    assert kubectl.get("configmap", c.HALT_CONFIGMAP, c.DEFAULT_OPERATOR_NAMESPACE) is None
    wait_bot(kubectl, namespace, "pl", 1, "Armed")

    disarmed = plugin(cluster, "bob", "disarm", "pl", "-n", namespace)
    assert disarmed.returncode == 0, disarmed.stderr
    wait_bot(kubectl, namespace, "pl", 0, "NotArmed")


def test_plugin_errors_are_clear(cluster: Cluster) -> None:
    bad = plugin(cluster, "bob", "approve", "nope", "-n", "default", "--for", "soon")
    assert bad.returncode == 1 and "--for 'soon'" in bad.stderr
