"""What each chaos run does, drawn from the seed alone: a pure plan, no I/O.

Called by the chaos runner (chaos_runner.py) for bench/chaos.py and
tests/operator/test_chaos_cluster.py; tests/operator/test_chaos_plan.py checks it.
The same (seed, run count, kinds) always gives the same plans; execution timing is
the only thing left to chance. Across runs every available kind is dealt out before
any repeats, so even a short variant covers them all.

Every run has one IBGateway `gw` (paper or live, writable) and five TradingBots:
`paper` and `live` (armed, one of them mismatches the gateway), `vpn` (armed, a
required VPN probe of a loopback listener the runner toggles), `exp` (armed, its
approval expires during the run) and `off` (not armed).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    OPERATOR_KILL = "operator-sigkill"
    OPERATOR_TERM = "operator-sigterm"
    APISERVER_STOP = "apiserver-stop"
    APISERVER_FREEZE = "apiserver-freeze"
    APISERVER_RESTART = "apiserver-restart"
    HAND_SCALE = "hand-scale-up"
    TEMPLATE_EDIT = "template-edit"
    ADMISSION_REFUSAL = "admission-refusal"
    APPROVAL_EXPIRY = "approval-expiry"
    HALT = "halt-resume"
    SECRET_DELETE = "secret-deletion"
    GATEWAY_DELETE = "gateway-deletion"
    VPN_FLAP = "vpn-flap"
    MODE_FLIP = "gateway-mode-flip"
    ORPHAN = "orphan-under-halt"


APISERVER_KINDS = frozenset({Kind.APISERVER_STOP, Kind.APISERVER_FREEZE, Kind.APISERVER_RESTART})
OPERATOR_KINDS = frozenset({Kind.OPERATOR_KILL, Kind.OPERATOR_TERM})
BOTS = ("paper", "live", "vpn", "exp", "off")
ARMED_BOTS = ("paper", "live", "vpn", "exp")

# Variants: what else happens during the step (see chaos_runner.py for each).
WHILE_DOWN = ("none", "scale", "disarm", "expire", "halt")  # while the operator is down
REFUSAL_TRIGGERS = ("disarm", "halt", "scale", "expire")  # while writes are refused
TEMPLATE_EDITS = ("command", "sidecar", "strategy")
FLIPS = ("rolling", "ondelete")  # the StatefulSet's updateStrategy at the flip
SECRETS = ("acr-pull", "ib-creds")


@dataclass(frozen=True)
class Step:
    kind: Kind
    pause: float  # how long the disturbance lasts (a deliberate chaos pause), s
    target: str = ""  # a bot or Secret name, when the kind has one
    variant: str = ""
    replicas: int = 0  # for scale-ups
    gap: float = 0.5  # quiet time after the step, s

    def label(self) -> str:
        extra = ":".join(x for x in (self.variant, self.target) if x)
        return f"{self.kind.value}" + (f":{extra}" if extra else "")


@dataclass(frozen=True)
class RunPlan:
    index: int
    gateway_mode: str  # "paper" or "live"
    expiry_seconds: float  # the `exp` bot's approval, from the run's start
    steps: tuple[Step, ...]


def _step(kind: Kind, rng: random.Random, pace: float) -> Step:
    """One step of `kind` with its parameters; `pace` scales the chaos pauses."""

    def pause(lo: float, hi: float) -> float:
        return round(rng.uniform(lo, hi) * pace, 2)

    gap = pause(0.3, 1.2)
    if kind in OPERATOR_KINDS:
        return Step(kind, pause(1.0, 4.0), rng.choice(BOTS), rng.choice(WHILE_DOWN), 2, gap)
    if kind in APISERVER_KINDS:
        return Step(kind, pause(2.0, 5.0), gap=gap)
    if kind is Kind.HAND_SCALE:
        return Step(kind, pause(2.5, 4.0), rng.choice(BOTS), replicas=rng.randint(2, 3), gap=gap)
    if kind is Kind.TEMPLATE_EDIT:
        target = rng.choice(ARMED_BOTS)
        return Step(kind, pause(3.0, 5.0), target, rng.choice(TEMPLATE_EDITS), gap=gap)
    if kind is Kind.ADMISSION_REFUSAL:
        target = rng.choice(ARMED_BOTS)
        return Step(kind, pause(3.0, 6.0), target, rng.choice(REFUSAL_TRIGGERS), 2, gap)
    if kind is Kind.APPROVAL_EXPIRY:
        # variant: seconds until the approval expires
        expires = f"{rng.uniform(0.5, 3):.1f}"
        return Step(kind, pause(3.0, 5.0), rng.choice(ARMED_BOTS), expires, gap=gap)
    if kind is Kind.SECRET_DELETE:
        return Step(kind, pause(2.5, 5.0), rng.choice(SECRETS), gap=gap)
    if kind is Kind.MODE_FLIP:
        return Step(kind, pause(3.0, 6.0), variant=rng.choice(FLIPS), gap=gap)
    if kind is Kind.ORPHAN:
        return Step(kind, pause(3.0, 5.0), rng.choice(ARMED_BOTS), gap=gap)
    return Step(kind, pause(2.5, 5.0), gap=gap)  # HALT, GATEWAY_DELETE, VPN_FLAP


def plan_runs(
    seed: int,
    runs: int,
    steps_per_run: int = 4,
    kinds: frozenset[Kind] = frozenset(Kind),
    pace: float = 1.0,
) -> list[RunPlan]:
    """`runs` plans from `seed`. Kinds are dealt from shuffled decks (every kind once
    before any twice), so coverage does not depend on luck."""
    rng = random.Random(seed)
    ordered = sorted(kinds, key=lambda k: k.value)
    deck: list[Kind] = []
    plans = []
    for index in range(runs):
        steps = []
        for _ in range(steps_per_run):
            if not deck:
                deck = list(ordered)
                rng.shuffle(deck)
            steps.append(_step(deck.pop(), rng, pace))
        plans.append(
            RunPlan(
                index=index,
                gateway_mode=rng.choice(("paper", "live")),
                expiry_seconds=round(rng.uniform(8, 8 + 6 * steps_per_run) * pace, 1),
                steps=tuple(steps),
            )
        )
    return plans
