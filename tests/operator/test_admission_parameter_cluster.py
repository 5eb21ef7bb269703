"""The bot-guard admission policies (deploy/admission/) on the real kube-apiserver: the
exempt identities come from the policy's parameter ConfigMap, and without it every
bot Deployment write is refused (fail closed). Helpers in admission_support.py.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from admission_support import (
    PARAM,
    bot_deployment,
    create,
    plain_deployment,
)
from k8s_support import Kubectl, wait_for
from operator_support import admission_suspended

pytestmark = pytest.mark.usefixtures("local_cluster")


def test_the_exempt_identities_come_from_the_parameter(kubectl: Kubectl, ns: str) -> None:
    """One policy YAML for dev and Helm: who is exempt lives in the ConfigMap only.
    (A parameter change reaches the apiserver's policy cache by a watch: seconds, up to
    15 s and more on a loaded machine; the waits below allow 60 s.)

    First the bindings are suspended and resumed the way the revert-path tests do it.
    That used to delete and re-create them, and kube-apiserver then stopped the
    parameter's informer for good (kubernetes/kubernetes#130887): this test failed
    after any such test. Suspending now patches validationActions instead."""
    with admission_suspended(kubectl):
        pass
    original = kubectl.get(*PARAM[:2], PARAM[3])["data"]["operators"]

    def alice_may_create() -> bool:
        return (
            create(kubectl, "alice", bot_deployment("p", ns), ns, "--dry-run=server").returncode
            == 0
        )

    def set_operators(value: str) -> None:
        kubectl("patch", *PARAM, "--type=merge", "-p", json.dumps({"data": {"operators": value}}))

    assert not alice_may_create()
    set_operators(f"{original}, alice")
    try:
        wait_for("alice exempt through the parameter", alice_may_create, 60)
    finally:
        set_operators(original)
    wait_for("alice refused again", lambda: not alice_may_create(), 60)


def test_without_the_parameter_every_deployment_write_is_refused(kubectl: Kubectl, ns: str) -> None:
    """Deleting the ConfigMap does not switch the guard off (parameterNotFoundAction: Deny)."""
    param = kubectl.get(*PARAM[:2], PARAM[3])
    saved = {k: param[k] for k in ("apiVersion", "kind", "data")}
    saved["metadata"] = {k: param["metadata"][k] for k in ("name", "namespace", "labels")}

    def plain_create() -> subprocess.CompletedProcess[str]:
        return create(kubectl, "admin", plain_deployment("any"), ns, "--dry-run=server")

    kubectl("delete", *PARAM)
    try:
        failed = wait_for(
            "deployment writes refused without the parameter",
            lambda: (proc := plain_create()).returncode != 0 and proc,
            60,
        )
        assert "spyoptions-admission" in failed.stderr or "param" in failed.stderr, failed.stderr
    finally:
        kubectl.apply(saved)
    wait_for("deployment writes allowed again", lambda: plain_create().returncode == 0, 60)
