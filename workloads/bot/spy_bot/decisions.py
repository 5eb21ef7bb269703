"""The decision lines ``service.Bot`` writes for a signal, and the order's audit record.

Pure data: every signal gets exactly one ``decision`` line (``order``, ``skip``,
``duplicate`` or ``refuse``), built here. A step of ``Bot._decide`` that ends the
signal early raises ``Decided`` carrying its line, so the happy path reads top to bottom.
"""

from __future__ import annotations

from typing import Any

from spy_bot import risk
from spy_bot.strategy import OrderIntent


class Decided(Exception):  # noqa: N818 -- a verdict, not an error
    """A step ended the signal early; ``line`` is its decision line."""

    def __init__(self, line: dict[str, Any]) -> None:
        super().__init__(line["reason"])
        self.line = line


def skip(reason: str, message: str) -> dict[str, Any]:
    return {"decision": "skip", "reason": reason, "message": message}


def refuse(reason: str, message: str) -> dict[str, Any]:
    return {"decision": "refuse", "reason": reason, "message": message}


def duplicate(ref: str) -> dict[str, Any]:
    return {
        "decision": "duplicate",
        "reason": "OrderRefExists",
        "message": f"{ref} was already sent",
        "order_ref": ref,
    }


def accepted(message: str, ref: str) -> dict[str, Any]:
    return {"decision": "order", "reason": "Accepted", "message": message, "order_ref": ref}


def order_details(
    intent: OrderIntent,
    ref: str,
    order_id: int,
    price: float,
    proposal: risk.Proposal,
    preview: Any,
    armed: risk.Verdict,
    received: float,
    marks: dict[str, float],
) -> dict[str, Any]:
    """The ``order`` audit line: what was sent, its what-if, and where the time went."""
    return {
        "order_ref": ref,
        "order_id": order_id,
        "rule": intent.rule,
        "action": intent.action,
        "quantity": intent.quantity,
        "limit": price,
        "legs": [
            {
                "expiry": leg.expiry.isoformat(),
                "strike": leg.strike,
                "right": leg.right,
                "action": leg.action,
            }
            for leg in intent.legs
        ],
        "max_loss": proposal.max_loss,
        "what_if": {
            "init_margin_change": getattr(preview, "initMarginChange", ""),
            "commission": getattr(preview, "commission", None),
        },
        "armed": armed.message,
        # where the time went, ms since the signal was received (bench, tuning)
        "latency_ms": {k: round((v - received) * 1000, 2) for k, v in marks.items()},
    }
