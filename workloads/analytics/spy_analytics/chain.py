"""`ChainSnapshot`: one instant of an option chain, held column-wise in numpy arrays.

Who calls this: the detector's sources (IBKR, replay, synthetic) build snapshots,
`spy_analytics.analyze` consumes them, `spy_analytics.snapshot_io` reads and writes
them. Building from loose records (`ChainSnapshot.from_records`) never raises on a bad
row: rows that cannot be placed on the chain (missing expiry/strike/right, an
unparseable value) are dropped and counted in `rejected` by reason; rows with bad
*prices* are kept (as NaN) so the pipeline counts them as data-quality events.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .dividends import DividendSchedule
from .exchange_clock import expiry_close_epoch

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

SECONDS_PER_YEAR = 365.0 * 86400.0
#: Strike resolution of contract keys (1/1000 USD).
_STRIKE_SCALE = 1000


@dataclass(frozen=True, eq=False)
class ChainSnapshot:
    """One snapshot of an option chain, one array entry per contract.

    Fields (all arrays have the same length ``n``):

    * ``ts`` – snapshot time, timezone-aware UTC.
    * ``symbol``, ``spot`` (underlying price), ``rate`` (continuously compounded
      risk-free rate), ``div_yield`` (continuous dividend yield), annualised decimals.
    * ``expiry`` – ``datetime64[D]``; ``strike`` – USD; ``is_call`` – bool.
    * ``bid``, ``ask``, ``last`` – USD per share, NaN when absent.
    * ``volume`` – cumulative session volume (contracts); ``open_interest`` – contracts.
    * ``quote_ts`` – epoch seconds of the contract's last quote update (NaN: unknown,
      never treated as stale).
    * ``rejected`` – rows dropped while building, by reason (counted as data quality).
    * ``dividends`` – discrete cash dividends of the underlying (`DividendSchedule`;
      empty: none known, only ``div_yield`` applies).
    * ``spot_ts``, ``spot_px`` – recent history of the underlying's price (epoch
      seconds ascending, USD; empty when the source keeps none), so rules can compare
      each quote with the spot at the quote's own time (`spot_at`).
    """

    ts: datetime
    symbol: str
    spot: float
    rate: float
    div_yield: float
    expiry: NDArray[np.datetime64]
    strike: FloatArray
    is_call: BoolArray
    bid: FloatArray
    ask: FloatArray
    last: FloatArray
    volume: FloatArray
    open_interest: FloatArray
    quote_ts: FloatArray
    rejected: Mapping[str, int] = field(default_factory=dict)
    dividends: DividendSchedule = field(default_factory=DividendSchedule)
    spot_ts: FloatArray = field(default_factory=lambda: np.empty(0))
    spot_px: FloatArray = field(default_factory=lambda: np.empty(0))
    #: expiries (YYYY-MM-DD) present only as read-only context: a detector shard holds
    #: the expiry after each of its own so the calendar rule checks every adjacent pair
    #: across shards; nothing else is reported on them (`spy_analytics.shards`)
    context_expiries: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return int(self.strike.shape[0])

    @property
    def ts_epoch(self) -> float:
        """Snapshot time as epoch seconds."""
        return _aware(self.ts).timestamp()

    def time_to_expiry(self) -> FloatArray:
        """Year fraction (ACT/365, to 16:00 America/New_York on the expiry date) of
        every contract."""
        years: FloatArray = (expiry_close_epoch(self.expiry) - self.ts_epoch) / SECONDS_PER_YEAR
        return years

    def spot_at(self, when: FloatArray) -> FloatArray:
        """The underlying's price as of each epoch time in ``when``: the last history
        point at or before it; the snapshot's ``spot`` when there is no history, the
        time is unknown (NaN) or later than the last point."""
        when = np.asarray(when, dtype=np.float64)
        if self.spot_ts.size == 0:
            return np.full(when.shape, self.spot)
        j = np.searchsorted(self.spot_ts, np.nan_to_num(when, nan=np.inf), side="right") - 1
        px = self.spot_px[np.clip(j, 0, self.spot_px.size - 1)]
        late = ~np.isfinite(when) | (when >= self.ts_epoch)
        out: FloatArray = np.where(late, self.spot, px)
        return out

    def contract_keys(self) -> NDArray[np.int64]:
        """Integer key per contract: ``days(expiry)*1e10 + strike_millis*2 + is_call``."""
        return contract_keys(self.expiry, self.strike, self.is_call)

    @classmethod
    def from_arrays(
        cls,
        *,
        ts: datetime,
        symbol: str,
        spot: float,
        rate: float,
        div_yield: float,
        expiry: Any,
        strike: Any,
        is_call: Any,
        bid: Any,
        ask: Any,
        last: Any = None,
        volume: Any = None,
        open_interest: Any = None,
        quote_ts: Any = None,
        rejected: Mapping[str, int] | None = None,
        dividends: DividendSchedule | None = None,
        spot_history: tuple[Any, Any] | None = None,
    ) -> ChainSnapshot:
        """Build from array-likes; optional columns default to NaN (last, quote_ts) or 0.
        ``spot_history`` is ``(epoch seconds, prices)`` of the underlying, any order."""
        strike_a = np.asarray(strike, dtype=np.float64)
        n = strike_a.shape[0]

        def col(values: Any, default: float) -> FloatArray:
            if values is None:
                return np.full(n, default)
            return np.asarray(values, dtype=np.float64).reshape(n)

        spot_ts, spot_px = _history(spot_history)
        return cls(
            ts=_aware(ts),
            symbol=symbol,
            spot=float(spot),
            rate=float(rate),
            div_yield=float(div_yield),
            expiry=np.asarray(expiry, dtype="datetime64[D]").reshape(n),
            strike=strike_a,
            is_call=np.asarray(is_call, dtype=np.bool_).reshape(n),
            bid=col(bid, math.nan),
            ask=col(ask, math.nan),
            last=col(last, math.nan),
            volume=col(volume, 0.0),
            open_interest=col(open_interest, 0.0),
            quote_ts=col(quote_ts, math.nan),
            rejected=dict(rejected or {}),
            dividends=dividends or DividendSchedule(),
            spot_ts=spot_ts,
            spot_px=spot_px,
        )

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        ts: datetime,
        symbol: str,
        spot: float,
        rate: float = 0.0,
        div_yield: float = 0.0,
        dividends: DividendSchedule | None = None,
        spot_history: tuple[Any, Any] | None = None,
    ) -> ChainSnapshot:
        """Build from per-contract mappings in the snapshot-file quote schema.

        Keys: ``expiry`` (``YYYY-MM-DD``), ``strike``, ``right`` (``C``/``P``), ``bid``,
        ``ask``, ``last``, ``volume``, ``open_interest``, ``quote_ts`` (epoch seconds or
        RFC 3339). Missing or unparseable identity fields drop the row into
        ``rejected["missing_field"]``; missing prices become NaN (counted later).
        """
        exp: list[str] = []
        k: list[float] = []
        calls: list[bool] = []
        cols: dict[str, list[float]] = {
            name: [] for name in ("bid", "ask", "last", "volume", "open_interest", "quote_ts")
        }
        rejected: dict[str, int] = {}
        for rec in records:
            try:
                e = str(rec["expiry"])
                np.datetime64(e, "D")
                s = float(rec["strike"])
                right = str(rec["right"]).upper()
                if right not in ("C", "P") or not math.isfinite(s):
                    raise ValueError(right)
            except (KeyError, ValueError, TypeError):
                rejected["missing_field"] = rejected.get("missing_field", 0) + 1
                continue
            exp.append(e)
            k.append(s)
            calls.append(right == "C")
            for name, values in cols.items():
                values.append(_to_float(rec.get(name), name))
        return cls.from_arrays(
            ts=ts,
            symbol=symbol,
            spot=spot,
            rate=rate,
            div_yield=div_yield,
            expiry=np.array(exp, dtype="datetime64[D]"),
            strike=np.array(k, dtype=np.float64),
            is_call=np.array(calls, dtype=np.bool_),
            rejected=rejected,
            dividends=dividends,
            spot_history=spot_history,
            **{name: np.array(v, dtype=np.float64) for name, v in cols.items()},
        )

    def to_records(self) -> list[dict[str, Any]]:
        """Per-contract dicts in the snapshot-file quote schema (inverse of from_records)."""
        exp = self.expiry.astype(str)
        out: list[dict[str, Any]] = []
        for i in range(len(self)):
            out.append(
                {
                    "expiry": str(exp[i]),
                    "strike": float(self.strike[i]),
                    "right": "C" if self.is_call[i] else "P",
                    "bid": _json_float(self.bid[i]),
                    "ask": _json_float(self.ask[i]),
                    "last": _json_float(self.last[i]),
                    "volume": _json_float(self.volume[i]),
                    "open_interest": _json_float(self.open_interest[i]),
                    "quote_ts": _json_float(self.quote_ts[i]),
                }
            )
        return out

    def take(self, index: NDArray[np.intp] | BoolArray) -> ChainSnapshot:
        """A snapshot holding only the selected contracts (same header)."""
        return ChainSnapshot(
            ts=self.ts,
            symbol=self.symbol,
            spot=self.spot,
            rate=self.rate,
            div_yield=self.div_yield,
            expiry=self.expiry[index],
            strike=self.strike[index],
            is_call=self.is_call[index],
            bid=self.bid[index],
            ask=self.ask[index],
            last=self.last[index],
            volume=self.volume[index],
            open_interest=self.open_interest[index],
            quote_ts=self.quote_ts[index],
            rejected=dict(self.rejected),
            dividends=self.dividends,
            spot_ts=self.spot_ts,
            spot_px=self.spot_px,
            context_expiries=self.context_expiries,
        )

    def with_dividends(self, dividends: DividendSchedule) -> ChainSnapshot:
        """The same snapshot with another dividend schedule (the detector's settings
        fill in a schedule the source did not provide)."""
        return dataclasses.replace(self, dividends=dividends)


def contract_keys(
    expiry: NDArray[np.datetime64], strike: FloatArray, is_call: BoolArray
) -> NDArray[np.int64]:
    """Integer identity of contracts, used to align snapshots and baselines.

    ``days_since_epoch(expiry) * 10**10 + round(strike * 1000) * 2 + is_call``;
    strikes must be finite and below 5,000,000 USD (always true for listed options).
    """
    days = expiry.astype("datetime64[D]").astype(np.int64)
    milli = np.rint(np.nan_to_num(strike, nan=0.0, posinf=0.0, neginf=0.0) * _STRIKE_SCALE)
    return days * 10**10 + milli.astype(np.int64) * 2 + is_call.astype(np.int64)


def _history(spot_history: tuple[Any, Any] | None) -> tuple[FloatArray, FloatArray]:
    """(epoch seconds ascending, prices) of the finite, positive history points."""
    if spot_history is None:
        return np.empty(0), np.empty(0)
    ts = np.asarray(spot_history[0], dtype=np.float64).ravel()
    px = np.asarray(spot_history[1], dtype=np.float64).ravel()
    if ts.shape != px.shape:
        raise ValueError("spot_history: times and prices differ in length")
    keep = np.isfinite(ts) & np.isfinite(px) & (px > 0.0)
    order = np.argsort(ts[keep], kind="stable")
    return ts[keep][order], px[keep][order]


def _aware(ts: datetime) -> datetime:
    return ts.astimezone(UTC) if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _to_float(value: Any, name: str) -> float:
    if value is None:
        return math.nan
    if name == "quote_ts" and isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _json_float(value: float) -> float | None:
    v = float(value)
    return v if math.isfinite(v) else None
