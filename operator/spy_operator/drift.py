"""Foreign changes to a bot's Deployment: pure policies over what the API returned.

Server-side apply restores only the fields the operator owns; a field another manager
added (a sidecar, a `command`, a RollingUpdate strategy) would persist in an armed
bot's pods. These policies find such fields so the reconciler can take the bot to 0
with reason ForeignChange and rebuild the Deployment from the operator's manifest.
Called by reconcile.py; tested in tests/operator/test_drift.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spy_operator.conditions import Check

FOREIGN_CHANGE = "ForeignChange"

# Fields of a Deployment's spec another manager may own without changing what runs:
# replicas (a hand scale-up is reverted separately, and counted).
_ALLOWED_SPEC_FIELDS = frozenset({"f:replicas", "."})


def foreign_spec_owners(deployment: Mapping[str, Any], manager: str) -> list[str]:
    """'manager: field, ...' for each other manager owning spec fields beside replicas.

    Status and scale subresource entries are ignored (the controllers write status;
    /scale only carries replicas)."""
    out = []
    for entry in deployment.get("metadata", {}).get("managedFields") or []:
        if not isinstance(entry, Mapping) or entry.get("manager") == manager:
            continue
        if entry.get("subresource"):
            continue
        spec = (entry.get("fieldsV1") or {}).get("f:spec")
        if not isinstance(spec, Mapping):
            continue
        fields = sorted(k[2:] for k in spec if k not in _ALLOWED_SPEC_FIELDS)
        if fields:
            out.append(f"{entry.get('manager')}: spec.{', spec.'.join(fields)}")
    return out


def _containers(template: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = template.get("spec") or {}
    return list(spec.get("containers") or []) + list(spec.get("initContainers") or [])


def template_drift(desired: Mapping[str, Any], observed: Mapping[str, Any]) -> list[str]:
    """What runs that the operator did not ask for, even if managedFields were wiped:
    other containers, a command or args the manifest does not set, another strategy."""
    want_t = desired.get("spec", {}).get("template", {})
    have_t = observed.get("spec", {}).get("template", {})
    want = {str(c.get("name")): c for c in _containers(want_t)}
    have = {str(c.get("name")): c for c in _containers(have_t)}
    problems = [
        f"container {name!r} is not the operator's" for name in sorted(set(have) - set(want))
    ]
    for name in sorted(set(have) & set(want)):
        for key in ("command", "args"):
            if have[name].get(key) and have[name].get(key) != want[name].get(key):
                problems.append(f"container {name!r} has a {key} the operator did not set")
    want_strategy = (desired.get("spec", {}).get("strategy") or {}).get("type")
    have_strategy = (observed.get("spec", {}).get("strategy") or {}).get("type")
    if have_strategy and want_strategy and have_strategy != want_strategy:
        problems.append(f"strategy is {have_strategy}, not {want_strategy}")
    return problems


def check_foreign_change(
    desired: Mapping[str, Any], observed: Mapping[str, Any] | None, manager: str
) -> Check:
    """Ok when the bot's Deployment runs only what the operator built (or is absent)."""
    if observed is None:
        return Check(True, "NoForeignChange", "deployment not created yet")
    problems = foreign_spec_owners(observed, manager) + template_drift(desired, observed)
    if problems:
        return Check(
            False,
            FOREIGN_CHANGE,
            "deployment changed outside the operator (" + "; ".join(problems) + "); "
            "it is held at 0 and rebuilt from the operator's manifest",
        )
    return Check(True, "NoForeignChange", "deployment matches the operator's manifest")
