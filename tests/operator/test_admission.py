"""The two-person rule as pure policies (spy_operator.admission) and the webhook's
AdmissionReview handling (spy_operator.webhook.respond), table-driven."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from spy_operator import admission as adm
from spy_operator.webhook import json_patch, respond

NOW = dt.datetime(2026, 12, 2, 15, 0, tzinfo=dt.UTC)
KEY = b"k" * 32
POLICY = adm.Policy(gitops_identities=frozenset({"argocd"}))


def tb(spec: dict[str, Any], notes: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "b", "namespace": "ns", "annotations": dict(notes or {})},
        "spec": {"image": "i", "gatewayRef": {"name": "g"}, **spec},
    }


def approval(by: str, hours: float = 1, reason: str = "why") -> dict[str, Any]:
    expires = (NOW + dt.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"approvedBy": by, "reason": reason, "expiresAt": expires}


def apply(
    user: str, obj: dict[str, Any], old: dict[str, Any] | None = None
) -> tuple[adm.Review, dict[str, Any]]:
    """Review and, if allowed, return the object as stored (annotations applied)."""
    result = adm.review("UPDATE" if old else "CREATE", user, obj, old, POLICY, NOW, KEY)
    stored = json.loads(json.dumps(obj))
    notes = stored["metadata"]["annotations"]
    for key, value in result.annotations.items():
        if value is None:
            notes.pop(key, None)
        else:
            notes[key] = value
    return result, stored


def verify(obj: dict[str, Any]) -> Any:
    return adm.verify(KEY, "ns", "b", obj["spec"], obj["metadata"]["annotations"])


def test_approver_then_another_user_arms() -> None:
    created = apply("argocd", tb({"armed": False}))[1]
    notes = created["metadata"]["annotations"]
    ok, approved = apply("bob", tb({"armed": False, "approval": approval("bob")}, notes), created)
    assert ok.allowed and approved["metadata"]["annotations"][adm.APPROVAL_RECORDED_BY] == "bob"
    assert verify(approved).ok is not False  # approved, not armed: the record verifies
    armed_spec = {"armed": True, "approval": approval("bob")}
    ok, armed = apply("alice", tb(armed_spec, approved["metadata"]["annotations"]), approved)
    assert ok.allowed
    assert armed["metadata"]["annotations"][adm.ARMED_BY] == "alice"
    assert verify(armed).ok


def test_self_approval_and_arming_is_refused() -> None:
    result, _ = apply("alice", tb({"armed": True, "approval": approval("alice")}))
    assert not result.allowed and "two-person rule" in result.message


def test_approver_cannot_arm_their_own_approval_later() -> None:
    approved = apply("bob", tb({"armed": False, "approval": approval("bob")}))[1]
    notes = approved["metadata"]["annotations"]
    result, _ = apply("bob", tb({"armed": True, "approval": approval("bob")}, notes), approved)
    assert not result.allowed and "bob approved this bot and cannot also arm it" in result.message


def test_writing_an_approval_for_someone_else_is_refused() -> None:
    result, _ = apply("alice", tb({"armed": False, "approval": approval("bob")}))
    assert not result.allowed
    assert "approvedBy must be the user who writes the approval" in result.message


@pytest.mark.parametrize(
    ("mode", "hours", "allowed"),
    [("paper", 8, True), ("paper", 8.1, False), ("live", 2, True), ("live", 3, False)],
)
def test_approval_lifetime_is_capped(mode: str, hours: float, allowed: bool) -> None:
    result, _ = apply("bob", tb({"mode": mode, "approval": approval("bob", hours)}))
    assert result.allowed is allowed
    if not allowed:
        assert "capped at" in result.message and "spec.approval.expiresAt" in result.message


@pytest.mark.parametrize("key", adm.RECORDED)
def test_recorded_annotations_cannot_be_set_by_hand(key: str) -> None:
    result, _ = apply("bob", tb({"armed": False}, {key: "bob"}))
    assert not result.allowed and key in result.message
    approved = apply("bob", tb({"approval": approval("bob")}))[1]
    forged = dict(approved["metadata"]["annotations"], **{key: "mallory"})
    result, _ = apply("bob", tb({"approval": approval("bob")}, forged), approved)
    assert not result.allowed


def test_gitops_identity_carries_an_approval_from_git() -> None:
    result, stored = apply("argocd", tb({"armed": True, "approval": approval("carol")}))
    assert result.allowed
    notes = stored["metadata"]["annotations"]
    assert notes[adm.APPROVAL_VIA] == "gitops" and notes[adm.APPROVAL_RECORDED_BY] == "carol"
    assert verify(stored).ok


def test_verify_fails_closed() -> None:
    armed = apply("argocd", tb({"armed": True, "approval": approval("carol")}))[1]
    assert adm.verify(None, "ns", "b", armed["spec"], armed["metadata"]["annotations"]).reason == (
        "ApprovalUnverified"
    )
    unrecorded = tb({"armed": True, "approval": approval("bob")})
    assert verify(unrecorded).reason == "ApprovalUnverified"
    changed = json.loads(json.dumps(armed))
    changed["spec"]["approval"]["expiresAt"] = "2027-01-01T00:00:00Z"  # around the webhook
    assert verify(changed).reason == "ApprovalUnverified"
    wrong_key = adm.verify(b"x" * 32, "ns", "b", armed["spec"], armed["metadata"]["annotations"])
    assert not wrong_key.ok
    # Signed over nothing (an unrelated update of a bot approved before the webhook
    # existed) is not a record of an approval.
    legacy = apply("argocd", tb({"approval": approval("bob")}))[1]
    legacy["metadata"]["annotations"].pop(adm.APPROVAL_RECORDED_BY)
    assert not verify(legacy).ok


def test_disarming_is_always_allowed_and_clears_the_armer() -> None:
    armed = apply("argocd", tb({"armed": True, "approval": approval("carol")}))[1]
    notes = armed["metadata"]["annotations"]
    result, disarmed = apply(
        "mallory", tb({"armed": False, "approval": approval("carol")}, notes), armed
    )
    assert result.allowed and adm.ARMED_BY not in disarmed["metadata"]["annotations"]


def test_respond_builds_an_admission_review_with_a_json_patch() -> None:
    body = {
        "request": {
            "uid": "u-1",
            "operation": "CREATE",
            "userInfo": {"username": "bob"},
            "object": {
                "metadata": {"name": "b", "namespace": "ns"},
                "spec": {"approval": approval("bob")},
            },
        }
    }
    out = respond(body, POLICY, KEY, NOW)["response"]
    assert out["uid"] == "u-1" and out["allowed"] is True and out["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(out["patch"]))
    assert ops[0] == {"op": "add", "path": "/metadata/annotations", "value": {}}
    assert {
        "op": "add",
        "path": "/metadata/annotations/spyoptions.io~1approval-recorded-by",
        "value": "bob",
    } in ops
    body["request"]["userInfo"]["username"] = "alice"
    refused = respond(body, POLICY, KEY, NOW)["response"]
    assert refused["allowed"] is False and refused["status"]["code"] == 403


def test_json_patch_removes_only_present_keys() -> None:
    assert json_patch({"a/b": "1"}, {"a/b": None, "c": None}) == [
        {"op": "remove", "path": "/metadata/annotations/a~1b"}
    ]
