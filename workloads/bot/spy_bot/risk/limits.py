"""spec.risk parsed into ``RiskLimits`` with safe defaults; ``LimitsError`` names the
bad field. Pure; called by spy_bot.settings (at start-up) and the risk policies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class LimitsError(ValueError):
    """spec.risk is malformed; the message names the field."""


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """spec.risk with its safe defaults (docs/bot.md lists each)."""

    max_contracts_per_order: int = 1
    max_contracts: int = 1  # total open spreads, all expiries
    max_position_per_expiry: int = 1
    max_order_notional: float = 5000.0  # max loss of one order, USD
    max_open_orders: int = 1
    max_orders_per_minute: int = 5
    max_daily_loss: float = 1000.0
    reduce_at_loss_fraction: float = 0.8
    max_consecutive_rejects: int = 3
    trading_hours: bool = True  # only inside NYSE regular sessions
    allowed_symbols: tuple[str, ...] = ("SPY",)
    allowed_rights: tuple[str, ...] = ("C", "P")
    min_dte: int = 1
    max_dte: int = 45


# spec.risk field -> (attribute, parser kind, minimum, maximum)
_FIELDS: dict[str, tuple[str, str, float, float]] = {
    "maxContractsPerOrder": ("max_contracts_per_order", "int", 1, 10_000),
    "maxContracts": ("max_contracts", "int", 1, 10_000),
    "maxPositionPerExpiry": ("max_position_per_expiry", "int", 1, 10_000),
    "maxOrderNotional": ("max_order_notional", "num", 0, 1e9),
    "maxOpenOrders": ("max_open_orders", "int", 1, 1000),
    "maxOrdersPerMinute": ("max_orders_per_minute", "int", 1, 600),
    "maxDailyLoss": ("max_daily_loss", "num", 0, 1e9),
    "reduceAtLossFraction": ("reduce_at_loss_fraction", "num", 0, 1),
    "maxConsecutiveRejects": ("max_consecutive_rejects", "int", 1, 100),
    "minDTE": ("min_dte", "int", 0, 3650),
    "maxDTE": ("max_dte", "int", 0, 3650),
}


def parse_limits(spec: Mapping[str, Any] | None) -> RiskLimits:
    """spec.risk -> RiskLimits; absent fields keep the safe defaults."""
    spec = spec or {}
    if not isinstance(spec, Mapping):
        raise LimitsError("risk: expected an object")
    values: dict[str, Any] = {}
    for key, (attr, kind, lo, hi) in _FIELDS.items():
        if key not in spec:
            continue
        raw = spec[key]
        ok = not isinstance(raw, bool) and isinstance(raw, int | float) and math.isfinite(raw)
        if kind == "int":
            ok = ok and float(raw).is_integer()
        if not ok or not lo <= raw <= hi:
            raise LimitsError(f"risk.{key}: expected a {kind} in [{lo:g}, {hi:g}], got {raw!r}")
        values[attr] = int(raw) if kind == "int" else float(raw)
    if "tradingHours" in spec:
        hours = spec["tradingHours"]
        if hours not in ("regular", "any"):
            raise LimitsError(f"risk.tradingHours: 'regular' or 'any', got {hours!r}")
        values["trading_hours"] = hours == "regular"
    for key, attr, allowed in (
        ("allowedSymbols", "allowed_symbols", None),
        ("allowedRights", "allowed_rights", ("C", "P")),
    ):
        if key in spec:
            items = spec[key]
            if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
                raise LimitsError(f"risk.{key}: expected a list of strings")
            if allowed is not None and any(x not in allowed for x in items):
                raise LimitsError(f"risk.{key}: each must be one of {allowed}, got {items}")
            values[attr] = tuple(items)
    limits = RiskLimits(**values)
    if limits.min_dte > limits.max_dte:
        raise LimitsError(f"risk.minDTE ({limits.min_dte}) exceeds risk.maxDTE ({limits.max_dte})")
    return limits
