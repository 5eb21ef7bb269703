"""The option chain the fake IB Gateway (``spy_dev.fake_tws``) lists and quotes.

Pure data: con ids, quotes and the chain ``python -m spy_dev.fake_tws`` serves to the
demo (``demo_chain``). Read by ``fake_tws_market`` and ``fake_tws_orders``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

UNDERLYING_CONID = 756733


@dataclass
class FakeChain:
    """The option chain the fake gateway lists and quotes."""

    symbol: str = "SPY"
    spot: float = 600.0
    today: date = field(default_factory=lambda: datetime.now(UTC).date())
    expiry_days: tuple[int, ...] = (2, 9, 16, 23, 30, 44)
    strikes: tuple[float, ...] = tuple(float(k) for k in range(580, 621, 5))
    # (expiry index, strike) pairs that are listed by secdef but do not exist
    missing: frozenset[tuple[int, float]] = frozenset({(0, 620.0)})
    # out-of-the-money contracts whose ask is below this have an empty bid side
    # (IB sends price -1 / size 0), like far wings of the real chain
    empty_bid_below: float = 0.0
    # > 0: time value falls off as exp(-|K - S| / decay), so verticals have a price
    # (the bot's tests); 0 keeps the flat time value the detector's tests expect
    time_value_decay: float = 0.0

    @property
    def expiries(self) -> list[str]:
        return [(self.today + timedelta(days=d)).strftime("%Y%m%d") for d in self.expiry_days]

    def con_id(self, expiry: str, strike: float, right: str) -> int | None:
        exps = self.expiries
        if expiry not in exps or strike not in self.strikes:
            return None
        ei = exps.index(expiry)
        if (ei, strike) in self.missing:
            return None
        return 10_000_000 + ei * 100_000 + int(strike * 10) * 10 + (1 if right == "C" else 2)

    def describe(self, con_id: int) -> tuple[str, float, str] | None:
        """(expiry, strike, right) of an option con id, the inverse of ``con_id``."""
        ei, rest = divmod(con_id - 10_000_000, 100_000)
        right = {1: "C", 2: "P"}.get(rest % 10, "")
        exps = self.expiries
        if not right or not 0 <= ei < len(exps):
            return None
        strike = rest // 10 / 10
        return (exps[ei], strike, right) if self.con_id(exps[ei], strike, right) == con_id else None

    def quote(self, expiry: str, strike: float, right: str, bump: int = 0) -> tuple[float, float]:
        intrinsic = max(0.0, (self.spot - strike) if right == "C" else (strike - self.spot))
        days = (datetime.strptime(expiry, "%Y%m%d").date() - self.today).days
        time_value = 0.4 * (days**0.5)
        if self.time_value_decay > 0:
            time_value *= math.exp(-abs(strike - self.spot) / self.time_value_decay)
        mid = intrinsic + time_value + 0.01 * bump
        return round(max(0.05, mid - 0.05), 2), round(mid + 0.05, 2)


def demo_chain() -> FakeChain:
    """Every expiry for 70 days, $1 strikes 450..750, verticals with a price."""
    return FakeChain(
        expiry_days=tuple(range(70)),
        strikes=tuple(float(k) for k in range(450, 751)),
        missing=frozenset(),
        time_value_decay=10.0,
    )
