"""Argo CD health of the three kinds, executed by Argo CD's own Lua code.

tools/argolua (built by tools/build-delivery.sh) links github.com/argoproj/argo-cd/v2
util/lua and calls ResourceHealthOverrides.GetResourceHealth, the lookup the
application controller makes, in the same sandbox (no string/math/io; os cut down). It
reads the scripts from argocd/argocd-cm.yaml, the snippet users paste, so the table
below tests exactly what Argo CD will run. Statuses come from the operator's real
condition reasons (spy_operator.gate.Reason, vpn.py, pullsecrets.py, reconcile.py).
That the snippet and the scripts are rendered from argocd/health/src/ is checked by
test_argocd_health_scripts.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from delivery_support import run, tool
from spy_dev.devcluster import REPO_ROOT
from spy_operator.gate import Reason

ARGOCD = REPO_ROOT / "argocd"
SNIPPET = ARGOCD / "argocd-cm.yaml"


def cond(type_: str, status: str, reason: str, message: str = "m") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def bot(
    armed: bool | None,
    reason: str | None,
    *conds: dict[str, Any],
    generation: int = 3,
    observed: int | None = 3,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "spyoptions.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "b", "namespace": "n", "generation": generation},
        "spec": {
            "armed": bool(armed),
            "approval": {"approvedBy": "bob", "expiresAt": "2030-01-01T00:00:00Z"},
        },
    }
    if observed is not None:
        obj["status"] = {
            "observedGeneration": observed,
            "armed": armed,
            "reason": reason,
            "message": f"gate says {reason}",
            "conditions": list(conds),
        }
    return obj


def other(
    kind: str, *conds: dict[str, Any], generation: int = 1, observed: int | None = 1, **status: Any
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "spyoptions.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "n", "generation": generation},
        "spec": {},
    }
    if observed is not None:
        obj["status"] = {"observedGeneration": observed, "conditions": list(conds), **status}
    return obj


NOT_HALTED = cond("Halted", "False", "NotHalted")
HALTED = cond("Halted", "True", "GlobalHalt", "maintenance window")
READY = cond("Ready", "True", "Running")
IDLE = cond("Ready", "True", "Idle")
STARTING = cond("Ready", "False", "Progressing", "deployment b-bot has 0/1 ready replicas")

# (case, object, expected status, text the message must contain)
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "bot: no status yet",
        bot(None, None, observed=None),
        "Progressing",
        "Waiting for the operator",
    ),
    (
        "bot: spec changed, not yet seen",
        bot(True, "Armed", NOT_HALTED, READY, generation=4),
        "Progressing",
        "generation 4",
    ),
    (
        "bot: armed, running",
        bot(True, Reason.OPEN, NOT_HALTED, READY),
        "Healthy",
        "approved by bob until 2030-01-01T00:00:00Z",
    ),
    (
        "bot: arming, Deployment starting",
        bot(True, Reason.OPEN, NOT_HALTED, STARTING),
        "Progressing",
        "Armed; starting",
    ),
    ("bot: disarmed", bot(False, Reason.NOT_ARMED, NOT_HALTED, IDLE), "Suspended", "Disarmed"),
    (
        "bot: approval expired",
        bot(False, Reason.APPROVAL_EXPIRED, NOT_HALTED, IDLE),
        "Suspended",
        "approval expired",
    ),
    (
        "bot: approval missing",
        bot(False, Reason.APPROVAL_MISSING, NOT_HALTED, IDLE),
        "Suspended",
        "no valid approval",
    ),
    (
        "bot: expired, still stopping",
        bot(False, Reason.APPROVAL_EXPIRED, NOT_HALTED, STARTING),
        "Progressing",
        "stopping",
    ),
    (
        "bot: global halt",
        bot(False, Reason.HALTED, HALTED, IDLE),
        "Suspended",
        "maintenance window",
    ),
    (
        "bot: halt wins over anything",
        bot(False, Reason.HALTED, HALTED, STARTING),
        "Suspended",
        "Global halt",
    ),
    (
        "bot: gateway not ready",
        bot(False, Reason.GATEWAY_NOT_READY, NOT_HALTED, IDLE),
        "Progressing",
        "GatewayNotReady",
    ),
    (
        "bot: VPN probe pending",
        bot(False, "VPNProbePending", NOT_HALTED, IDLE),
        "Progressing",
        "VPNProbePending",
    ),
    (
        "bot: gateway missing",
        bot(False, Reason.GATEWAY_NOT_FOUND, NOT_HALTED, IDLE),
        "Degraded",
        "GatewayNotFound",
    ),
    (
        "bot: mode mismatch",
        bot(False, Reason.GATEWAY_MODE_MISMATCH, NOT_HALTED, IDLE),
        "Degraded",
        "GatewayModeMismatch",
    ),
    (
        "bot: read-only gateway",
        bot(False, Reason.GATEWAY_READ_ONLY, NOT_HALTED, IDLE),
        "Degraded",
        "GatewayReadOnly",
    ),
    (
        "bot: invalid approval",
        bot(False, Reason.APPROVAL_INVALID, NOT_HALTED, IDLE),
        "Degraded",
        "ApprovalInvalid",
    ),
    (
        "bot: pull secret missing",
        bot(False, "PullSecretNotFound", NOT_HALTED, IDLE),
        "Degraded",
        "PullSecretNotFound",
    ),
    (
        "bot: VPN unreachable",
        bot(False, "VPNUnreachable", NOT_HALTED, IDLE),
        "Degraded",
        "VPNUnreachable",
    ),
    (
        "bot: enforcement failed (fail closed)",
        bot(False, "EnforcementFailed", NOT_HALTED, IDLE),
        "Degraded",
        "EnforcementFailed",
    ),
    (
        "bot: foreign pod-template change",
        bot(False, "ForeignChange", NOT_HALTED, IDLE),
        "Degraded",
        "ForeignChange",
    ),
    (
        "bot: approval not recorded by the webhook",
        bot(False, "ApprovalUnverified", NOT_HALTED, IDLE),
        "Degraded",
        "ApprovalUnverified",
    ),
    ("bot: invalid spec", bot(False, "InvalidSpec", NOT_HALTED, IDLE), "Degraded", "InvalidSpec"),
    (
        "gateway: no status",
        other("IBGateway", observed=None),
        "Progressing",
        "Waiting for the operator",
    ),
    (
        "gateway: ready",
        other("IBGateway", cond("Ready", "True", "GatewayRunning"), endpoint="gw.n.svc:4002"),
        "Healthy",
        "gw.n.svc:4002",
    ),
    (
        "gateway: starting",
        other("IBGateway", cond("Ready", "False", "GatewayStarting")),
        "Progressing",
        "GatewayStarting",
    ),
    (
        "gateway: credentials missing",
        other("IBGateway", cond("Ready", "False", "CredentialsSecretNotFound")),
        "Degraded",
        "CredentialsSecretNotFound",
    ),
    (
        "gateway: VPN pending",
        other("IBGateway", cond("Ready", "False", "VPNProbePending")),
        "Progressing",
        "VPNProbePending",
    ),
    (
        "gateway: stale generation",
        other("IBGateway", cond("Ready", "True", "GatewayRunning"), generation=2),
        "Progressing",
        "generation 2",
    ),
    (
        "detector: ready",
        other("OptionsDetector", cond("Ready", "True", "ShardsReady"), readyShards=3),
        "Healthy",
        "3 shard(s)",
    ),
    (
        "detector: shards starting",
        other("OptionsDetector", cond("Ready", "False", "ShardsStarting")),
        "Progressing",
        "ShardsStarting",
    ),
    (
        "detector: gateway not ready",
        other("OptionsDetector", cond("Ready", "False", "GatewayNotReady")),
        "Progressing",
        "GatewayNotReady",
    ),
    (
        "detector: gateway missing",
        other("OptionsDetector", cond("Ready", "False", "GatewayNotFound")),
        "Degraded",
        "GatewayNotFound",
    ),
    ("detector: no Ready condition", other("OptionsDetector"), "Progressing", "Ready condition"),
]


def argo_health(objects: list[dict[str, Any]], snippet: str = str(SNIPPET)) -> list[dict[str, str]]:
    out = run(tool("argolua"), snippet, stdin=json.dumps(objects)).stdout
    return list(json.loads(out))


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, str]]:
    got = argo_health([obj for _, obj, _, _ in CASES])
    return {case: result for (case, *_), result in zip(CASES, got, strict=True)}


@pytest.mark.parametrize(("case", "expected", "text"), [(c, e, t) for c, _, e, t in CASES])
def test_health_through_argocd_lua(
    results: dict[str, dict[str, str]], case: str, expected: str, text: str
) -> None:
    got = results[case]
    assert "error" not in got, got
    assert got["status"] == expected, got
    assert text in got["message"], got


def test_sandbox_is_argocds_own(tmp_path: Any) -> None:
    """The harness really runs Argo CD's sandbox: a script using the string library fails
    there, as it would in the application controller (so ours must not use it)."""
    snippet = tmp_path / "cm.yaml"
    snippet.write_text(
        yaml.safe_dump(
            {
                "data": {
                    "resource.customizations.health.spyoptions.io_TradingBot": (
                        'hs = {}\nhs.status = string.upper("healthy")\nreturn hs\n'
                    )
                }
            }
        )
    )
    got = argo_health([bot(True, "Armed", READY)], str(snippet))
    assert "error" in got[0] and "string" in got[0]["error"]


def test_application_example_points_at_the_chart() -> None:
    app = yaml.safe_load((ARGOCD / "application.yaml").read_text())
    assert app["kind"] == "Application" and app["apiVersion"] == "argoproj.io/v1alpha1"
    source = app["spec"]["source"]
    assert (REPO_ROOT / source["path"] / "Chart.yaml").exists()
    for values in source["helm"]["valueFiles"]:
        assert (REPO_ROOT / source["path"] / values).resolve().exists(), values
    assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
