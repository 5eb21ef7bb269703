"""The risk engine: every order proposal against every limit, and the trading state.

Modelled on NautilusTrader's RiskEngine (trading states ACTIVE / REDUCING / HALTED,
notional and rate limits), freqtrade's protections and Hummingbot's kill switch. Pure:
no I/O, the clock and the market-hours answer are arguments, so it is table-tested
and property-tested (tests/bot/test_risk.py). ``service.Bot`` calls ``check_order``
before every order and the transition functions on every fill, reject and P&L update.

States:

* ACTIVE: new positions may be opened.
* REDUCING: the day's loss passed ``reduceAtLossFraction`` of ``maxDailyLoss``; only
  orders that reduce a position pass (this bot only opens, so none do).
* HALTED: the day's loss reached ``maxDailyLoss`` or ``maxConsecutiveRejects`` orders
  in a row were rejected (circuit breaker). Nothing passes, and the state stays until a
  human resets it (``reset``; docs/bot.md says how) -- a better P&L never un-halts.

``check_order`` applies the policies in a fixed order; the first failure is the
reason. Every refusal names its limit and the numbers.

Layout: ``limits`` (spec.risk -> RiskLimits), ``state`` (the trading state and its
transitions), ``policies`` (``check_order``). Callers import the names below from
``spy_bot.risk``.
"""

from __future__ import annotations

from spy_bot.risk.limits import LimitsError, RiskLimits, parse_limits
from spy_bot.risk.policies import PASS, POLICIES, Policy, Proposal, Verdict, check_order
from spy_bot.risk.state import (
    Mode,
    RiskState,
    loss_today,
    on_accept,
    on_order_sent,
    on_pnl,
    on_reject,
    reset,
    with_book,
)

__all__ = [
    "PASS",
    "POLICIES",
    "LimitsError",
    "Mode",
    "Policy",
    "Proposal",
    "RiskLimits",
    "RiskState",
    "Verdict",
    "check_order",
    "loss_today",
    "on_accept",
    "on_order_sent",
    "on_pnl",
    "on_reject",
    "parse_limits",
    "reset",
    "with_book",
]
