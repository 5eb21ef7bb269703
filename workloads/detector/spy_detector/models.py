"""Plain data the detector passes between its sources, the analytics and the publisher.

Every source yields ``ChainSnapshot``s; ``analysis`` converts them to the analytics
package's input and converts its output to the wire format (docs/wire-format.md).
Frozen dataclasses, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class OptionQuote:
    """The latest quote of one option contract as the source saw it.

    Prices are per share in USD; ``None`` means the source had no value (an empty
    side, no trade yet). ``quote_ts`` is when the quote last changed (epoch seconds),
    so the analytics can flag stale quotes.
    """

    expiry: str  # YYYY-MM-DD
    strike: float
    right: str  # "C" | "P"
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    bid_size: float | None = None
    ask_size: float | None = None
    volume: float | None = None
    open_interest: float | None = None
    iv: float | None = None  # the source's own model IV, if it sends one
    quote_ts: float | None = None


@dataclass(frozen=True, slots=True)
class ChainSnapshot:
    """One view of the chain (or of this shard's part of it) at ``ts``."""

    ts: datetime
    symbol: str
    spot: float
    quotes: tuple[OptionQuote, ...]
    source: str = "unknown"
    rate: float | None = None
    div_yield: float | None = None
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def expiries(self) -> list[str]:
        return sorted({q.expiry for q in self.quotes})
