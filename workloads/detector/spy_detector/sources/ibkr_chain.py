"""Pure helpers of the IBKR source: the DTE and strike window, rotation batches, and a
ticker's quote as a snapshot-file record (spy_analytics' quote schema).

Who calls this: `spy_detector.sources.ibkr.IBKRSource` (which re-exports the public
names). No I/O; ib_async's types are only annotations here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ib_async import Contract, Ticker


def ib_expiry_to_iso(expiry: str) -> str:
    """IB's ``YYYYMMDD`` -> ``YYYY-MM-DD``."""
    return f"{expiry[0:4]}-{expiry[4:6]}-{expiry[6:8]}"


def expiries_in_window(
    expiries: Sequence[str], today: date, dte_min: int, dte_max: int
) -> list[str]:
    """IB expiries (``YYYYMMDD``) whose days-to-expiry lie in [dte_min, dte_max]."""
    out = []
    for e in expiries:
        dte = (date(int(e[0:4]), int(e[4:6]), int(e[6:8])) - today).days
        if dte_min <= dte <= dte_max:
            out.append(e)
    return sorted(out)


def strikes_in_window(strikes: Sequence[float], spot: float, strike_range: float) -> list[float]:
    lo, hi = spot * (1.0 - strike_range), spot * (1.0 + strike_range)
    return sorted({k for k in strikes if lo <= k <= hi})


def rotation_batches(items: Sequence[Any], lines: int) -> list[list[Any]]:
    """Split the window into consecutive batches that each fit in ``lines``."""
    return [list(items[i : i + lines]) for i in range(0, len(items), lines)]


def num(x: float | None) -> float | None:
    if x is None or not math.isfinite(x) or x < 0:
        return None
    return float(x)


def quote_record(contract: Contract, ticker: Ticker) -> dict[str, Any]:
    """One contract's latest quote in the snapshot-file quote schema (spy_analytics)."""
    oi = ticker.callOpenInterest if contract.right == "C" else ticker.putOpenInterest
    return {
        "expiry": ib_expiry_to_iso(contract.lastTradeDateOrContractMonth),
        "strike": float(contract.strike),
        "right": contract.right,
        "bid": num(ticker.bid),
        "ask": num(ticker.ask),
        "last": num(ticker.last),
        "volume": num(ticker.volume),
        "open_interest": num(oi),
        "quote_ts": ticker.timestamp or None,
    }


def quoted(ticker: Ticker) -> bool:
    # The ask is enough: far out-of-the-money options often have no bid at all (IB
    # sends an empty side), and waiting for one would stall every rotation batch.
    return num(ticker.ask) is not None


def contract_key(c: Contract) -> tuple[str, float, str]:
    return (c.lastTradeDateOrContractMonth, float(c.strike), c.right)
