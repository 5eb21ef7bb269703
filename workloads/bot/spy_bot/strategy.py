"""The strategy as data: ``TradingBot.spec.strategy`` -> rules -> an order intent. Pure.

Called by ``service.Bot`` for every signal. A rule matches an anomaly by kind and a
minimum severity and answers with a defined-risk vertical on the anomaly's own
contract (docs/bot.md):

* ``fade``: the option is rich (IV above the fitted smile) -> sell it and buy the wing
  ``width`` further out of the money (a credit vertical); cheap -> buy it and sell the
  wing (a debit vertical);
* ``follow``: buy it and sell the wing (a debit vertical), riding the flow.

Every vertical is one combo, legs ``BUY near / SELL far`` (far = strike + width for
calls, strike - width for puts); selling the combo is the credit spread. The limit
price is the combo's mid from IB quotes, conceding ``edge`` at most (``broker``).
Max loss, which the risk engine limits as the order's notional: a debit spread loses
at most what it paid, a credit spread ``width - credit`` (times 100 per contract).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from spy_bot.signals import Signal

SEVERITIES = ("LOW", "MEDIUM", "HIGH")
ACTIONS = ("fade", "follow")
MULTIPLIER = 100


class StrategyError(ValueError):
    """spec.strategy is malformed; the message names the field."""


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    kind: str
    min_severity: str
    action: str
    width: float = 5.0
    quantity: int = 1
    edge: float = 0.0

    def matches(self, s: Signal) -> bool:
        return (
            s.type == "anomaly"
            and s.kind == self.kind
            and s.severity in SEVERITIES
            and SEVERITIES.index(s.severity) >= SEVERITIES.index(self.min_severity)
        )


@dataclass(frozen=True, slots=True)
class Strategy:
    name: str
    rules: tuple[Rule, ...]


DEFAULT_RULES = (
    Rule("fade-iv-residual", "iv_residual", "HIGH", "fade"),
    Rule("follow-vol-oi", "vol_oi", "HIGH", "follow"),
)


@dataclass(frozen=True, slots=True)
class Leg:
    expiry: date
    strike: float
    right: str
    action: str  # BUY | SELL
    ratio: int = 1


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """A vertical to trade for one signal; priced later from IB quotes."""

    signal_id: str
    rule: str
    symbol: str
    action: str  # BUY (debit) | SELL (credit) the combo BUY near / SELL far
    quantity: int
    legs: tuple[Leg, Leg]
    width: float
    edge: float

    @property
    def expiry(self) -> date:
        return self.legs[0].expiry

    @property
    def right(self) -> str:
        return self.legs[0].right

    def max_loss(self, limit_price: float) -> float:
        """Worst case of the filled spread in USD (positive)."""
        per = limit_price if self.action == "BUY" else self.width - limit_price
        return max(0.0, per) * MULTIPLIER * self.quantity


@dataclass(frozen=True, slots=True)
class Skip:
    reason: str
    message: str


def parse_strategy(spec: Mapping[str, Any] | None) -> Strategy:
    """spec.strategy -> Strategy; no ``rules`` gives the default rules (docs/bot.md)."""
    spec = spec or {}
    if not isinstance(spec, Mapping):
        raise StrategyError("strategy: expected an object")
    name = str(spec.get("name") or "default")
    raw = spec.get("rules")
    if raw is None:
        return Strategy(name, DEFAULT_RULES)
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise StrategyError("strategy.rules: expected a list")
    rules = tuple(_rule(i, r) for i, r in enumerate(raw))
    return Strategy(name, rules)


def _rule(i: int, r: Any) -> Rule:
    at = f"strategy.rules[{i}]"
    if not isinstance(r, Mapping):
        raise StrategyError(f"{at}: expected an object")
    when = r.get("when") or {}
    if not isinstance(when, Mapping):
        raise StrategyError(f"{at}.when: expected an object")
    kind = when.get("kind")
    if not isinstance(kind, str) or not kind:
        raise StrategyError(f"{at}.when.kind: required (an anomaly kind, e.g. iv_residual)")
    severity = str(when.get("minSeverity", "HIGH"))
    if severity not in SEVERITIES:
        raise StrategyError(f"{at}.when.minSeverity: one of {SEVERITIES}, got {severity!r}")
    action = r.get("action")
    if action not in ACTIONS:
        raise StrategyError(f"{at}.action: one of {ACTIONS}, got {action!r}")
    width = _num(r, "width", 5.0, at)
    if not 0 < width <= 100:
        raise StrategyError(f"{at}.width: must be in (0, 100] strike points, got {width}")
    quantity = r.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 1000:
        raise StrategyError(f"{at}.quantity: an integer 1..1000, got {quantity!r}")
    edge = _num(r, "edge", 0.0, at)
    if not 0 <= edge <= 10:
        raise StrategyError(f"{at}.edge: must be in [0, 10] USD, got {edge}")
    return Rule(
        str(r.get("name") or f"rule-{i}"), kind, severity, str(action), width, quantity, edge
    )


def _num(r: Mapping[str, Any], key: str, default: float, at: str) -> float:
    value = r.get(key, default)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise StrategyError(f"{at}.{key}: expected a number, got {value!r}")
    return float(value)


def decide(strategy: Strategy, s: Signal) -> OrderIntent | Skip:
    """The first matching rule's vertical for this signal, or why there is none."""
    if s.type != "anomaly" or s.expiry is None or s.strike is None or s.right not in ("C", "P"):
        return Skip("NoContract", f"a {s.type} without a contract is recorded, not traded")
    rule = next((r for r in strategy.rules if r.matches(s)), None)
    if rule is None:
        return Skip("NoRuleMatches", f"no rule for {s.kind} {s.severity}")
    far = s.strike + rule.width if s.right == "C" else s.strike - rule.width
    if far <= 0:
        return Skip("NoWing", f"the wing strike {far:g} does not exist")
    action = "SELL" if rule.action == "fade" and s.rich else "BUY"
    legs = (
        Leg(s.expiry, s.strike, s.right, "BUY"),
        Leg(s.expiry, far, s.right, "SELL"),
    )
    return OrderIntent(
        signal_id=s.id,
        rule=rule.name,
        symbol=s.symbol,
        action=action,
        quantity=rule.quantity,
        legs=legs,
        width=rule.width,
        edge=rule.edge,
    )


def limit_price(intent: OrderIntent, near_mid: float, far_mid: float) -> float | None:
    """The combo's limit from the legs' mids, conceding ``edge``; None when unpriceable."""
    mid = near_mid - far_mid
    if not (math.isfinite(mid) and mid > 0):
        return None
    price = mid + intent.edge if intent.action == "BUY" else mid - intent.edge
    # round to the cent first, then clamp: rounding after the clamp could land a cent
    # above the width, a credit larger than the spread can ever be worth
    cap = math.floor(intent.width * 100 + 1e-9) / 100
    return min(max(round(price, 2), 0.01), cap)
