"""The chaos suite's plans (tests/chaos_plan.py) are a pure function of the seed and
cover every kind of chaos, so a short run still exercises them all. No cluster."""

from __future__ import annotations

from collections import Counter

from chaos_plan import APISERVER_KINDS, Kind, plan_runs


def test_same_seed_same_plans_other_seed_other_plans() -> None:
    assert plan_runs(7, 10) == plan_runs(7, 10)
    assert plan_runs(7, 10) != plan_runs(8, 10)


def test_every_kind_is_dealt_before_any_repeats() -> None:
    kinds = len(Kind)
    plans = plan_runs(3, runs=5, steps_per_run=3)
    dealt = [step.kind for plan in plans for step in plan.steps]
    assert len(dealt) == kinds == 15
    assert Counter(dealt) == Counter(set(Kind))
    hundred = Counter(s.kind for p in plan_runs(1, 100) for s in p.steps)
    assert max(hundred.values()) - min(hundred.values()) <= 1


def test_unavailable_kinds_are_never_planned() -> None:
    kinds = frozenset(Kind) - APISERVER_KINDS - {Kind.ADMISSION_REFUSAL}
    planned = {s.kind for p in plan_runs(5, 20, kinds=kinds) for s in p.steps}
    assert planned == kinds


def test_pauses_are_bounded_and_scaled_by_pace() -> None:
    slow = plan_runs(2, 30)
    fast = plan_runs(2, 30, pace=0.5)
    for a, b in zip(slow, fast, strict=True):
        for sa, sb in zip(a.steps, b.steps, strict=True):
            assert 0 < sa.pause <= 6.0
            assert abs(sb.pause - sa.pause / 2) < 0.02
            assert sa.kind == sb.kind
