"""Deterministic synthetic SPY option market with labelled, injected anomalies.

Who calls this: tests, ``bench/pipeline.py`` and ``bench/detection_quality.py``, and the
detector's synthetic source (``SyntheticMarket(seed).next_snapshot()`` in a loop).
Same seed and same sequence of calls -> identical snapshots (numpy PCG64 streams).

The market (defaults in `SyntheticConfig`):

* listing like SPY's: a daily expiry every weekday for 45 days, Friday weeklies to 120
  days, monthlies (third Friday) and quarter-end expiries to 365 days; $1 strikes near
  the money (wider band for short expiries), $5 and then $10 further out; about 20,000
  contracts at the defaults;
* smiles from SSVI (Gatheral & Jacquier, "Arbitrage-free SVI volatility surfaces",
  2014) - raw-SVI-shaped per expiry, free of butterfly and calendar arbitrage - with an
  upward-sloping ATM term structure; European BSM prices floored at the American
  intrinsic value and made non-decreasing in maturity per strike (American options);
* quotes on a $0.01 tick around the model price with a spread model
  ``0.01 + 0.004 * price * (1 + 0.5 T)`` (x a small random factor), mid noise within a
  quarter of the half-spread; far wings get a zero bid (counted as data quality);
* open interest concentrated near the money and in short expiries; session volume
  arrives as Poisson increments per snapshot (volume/OI stays under 1 on clean data);
* intraday evolution: spot follows a GBM (14% vol) per ``interval_s``; ATM vol moves
  against spot (leverage); a small share of quotes is crossed, locked, stale or NaN;
* injected anomalies (`InjectedAnomaly` labels), one documented magnitude per kind
  (`MAGNITUDES`, docs/analytics.md), on contracts far apart from each other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from .bsm import bsm_price
from .chain import EXPIRY_CUTOFF_SECONDS, SECONDS_PER_YEAR, ChainSnapshot, contract_keys
from .types import AnomalyKind

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

#: The documented magnitude of every injected anomaly kind.
MAGNITUDES: dict[AnomalyKind, str] = {
    AnomalyKind.IV_RESIDUAL: "mid IV moved by +/-8 vol points on an OTM contract whose "
    "bid/ask IV half-width is <= 0.3 vol points; quote re-centred, spread kept",
    AnomalyKind.VOL_OI: "session volume set to 6x open interest (OI >= 200, mid >= $0.50, "
    "DTE >= 2)",
    AnomalyKind.VOLUME_Z: "one snapshot's traded volume = lambda + 20 sqrt(lambda + 1) + 200 "
    "(lambda = expected volume per snapshot; contract worth >= $0.20)",
    AnomalyKind.PARITY: "in-the-money leg re-quoted so the American put-call bound is broken "
    "by $0.40 at bid/ask (DTE <= 10)",
    AnomalyKind.EARLY_EXERCISE: "ask set $0.40 below the exercise value (intrinsic >= $2)",
    AnomalyKind.CALL_SPREAD: "one leg of an adjacent-strike vertical re-quoted so the "
    "spread is non-monotone by $0.40 at bid/ask",
    AnomalyKind.BUTTERFLY: "body of a consecutive-strike butterfly re-quoted so "
    "bid(K2) exceeds w1 ask(K1) + w3 ask(K3) by $0.40",
    AnomalyKind.CALENDAR: "later expiry re-quoted so ask(T2) is $0.40 below bid(T1), "
    "same strike and right",
    AnomalyKind.SPREAD_BLOWOUT: "bid-ask spread widened to max(10x its normal spread, "
    "normal + $0.50) around the same mid",
}
BREAK_USD = 0.40


@dataclass(frozen=True)
class SyntheticConfig:
    spot: float = 600.0
    rate: float = 0.043
    div_yield: float = 0.013
    start: datetime = datetime(2026, 11, 25, 14, 35, tzinfo=UTC)
    interval_s: float = 60.0
    spot_vol: float = 0.14
    #: SSVI: ATM vol term structure  vol(T) = long - (long - short) e^{-T / decay}
    atm_vol_short: float = 0.12
    atm_vol_long: float = 0.18
    atm_decay: float = 0.25
    ssvi_rho: float = -0.7
    ssvi_eta: float = 1.0
    ssvi_gamma: float = 0.5
    #: ATM vol change per unit log-return of spot (leverage effect)
    vol_beta: float = -2.0
    bad_quote_rate: float = 0.002
    symbol: str = "SPY"
    #: Multiplies every injected magnitude (1.0 = the documented `MAGNITUDES`); used by
    #: bench/detection_quality.py to measure recall below the documented size.
    magnitude_scale: float = 1.0


@dataclass(frozen=True)
class InjectedAnomaly:
    """Ground truth: the contract that was made anomalous, by what kind and how much."""

    kind: AnomalyKind
    expiry: str
    strike: float
    right: str
    magnitude: str

    def to_json(self) -> dict[str, object]:
        return {
            "type": "label",
            "kind": self.kind.value,
            "expiry": self.expiry,
            "strike": self.strike,
            "right": self.right,
            "magnitude": self.magnitude,
        }


@dataclass(frozen=True, eq=False)
class SyntheticSnapshot:
    snapshot: ChainSnapshot
    labels: tuple[InjectedAnomaly, ...] = field(default_factory=tuple)


def listed_expiries(today: date, max_dte: int = 365) -> list[date]:
    """SPY-like expiry calendar: dailies to 45 DTE, Friday weeklies to 120, third-Friday
    monthlies and quarter-end business days to ``max_dte``."""
    out: set[date] = set()
    for d in range(max_dte + 1):
        day = today + timedelta(days=d)
        if day.weekday() >= 5:
            continue
        if (
            d <= 45
            or (d <= 120 and day.weekday() == 4)
            or (day.weekday() == 4 and 15 <= day.day <= 21)
        ):
            out.add(day)
    for year in (today.year, today.year + 1):
        for month in (3, 6, 9, 12):
            last = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
            while last.weekday() >= 5:
                last -= timedelta(days=1)
            if 0 <= (last - today).days <= max_dte:
                out.add(last)
    return sorted(out)


def strike_grid(spot: float, dte: int) -> FloatArray:
    """Strikes like the SPY listing: $1 near the money, $5 then $10 further out."""
    bands: tuple[tuple[float, float], ...]
    if dte <= 14:
        bands = ((0.12, 1.0), (0.35, 5.0))
    elif dte <= 60:
        bands = ((0.08, 1.0), (0.35, 5.0), (0.50, 10.0))
    elif dte <= 180:
        bands = ((0.05, 1.0), (0.40, 5.0), (0.60, 10.0))
    else:
        bands = ((0.03, 1.0), (0.45, 5.0), (0.70, 10.0))
    strikes: set[float] = set()
    for width, step in bands:
        lo = math.ceil(spot * (1 - width) / step) * step
        hi = math.floor(spot * (1 + width) / step) * step
        strikes.update(np.arange(lo, hi + step / 2, step).tolist())
    return np.array(sorted(strikes), dtype=np.float64)


class SyntheticMarket:
    """A seeded market; each `next_snapshot` advances one ``interval_s`` step."""

    def __init__(self, seed: int = 0, config: SyntheticConfig | None = None) -> None:
        self.seed = seed
        self.cfg = config or SyntheticConfig()
        self.step = 0
        cfg = self.cfg
        rng = np.random.default_rng([seed, 0])
        expiries = listed_expiries(cfg.start.date())
        exp_l: list[np.datetime64] = []
        strikes_l: list[FloatArray] = []
        for e in expiries:
            ks = strike_grid(cfg.spot, (e - cfg.start.date()).days)
            strikes_l.append(np.concatenate([ks, ks]))
            exp_l.extend([np.datetime64(e.isoformat(), "D")] * (2 * ks.shape[0]))
        self.expiry = np.array(exp_l, dtype="datetime64[D]")
        self.strike = np.concatenate(strikes_l)
        n = self.strike.shape[0]
        self.is_call = np.zeros(n, dtype=np.bool_)
        # first half of each expiry block are puts, second half calls
        pos = 0
        for ks2 in strikes_l:
            half = ks2.shape[0] // 2
            self.is_call[pos + half : pos + 2 * half] = True
            pos += 2 * half
        t0 = self._t(cfg.start)
        m = np.log(self.strike / cfg.spot) / (0.2 * np.sqrt(np.maximum(t0, 1 / 365)))
        size = np.exp(-0.5 * (m / 1.5) ** 2) * (1.0 + 2.0 * np.exp(-t0 / 0.1))
        self.oi = np.maximum(np.round(20000.0 * size * rng.lognormal(0.0, 0.6, n)), 5.0)
        turnover = np.where(t0 * 365 < 1.0, 2.0, rng.uniform(0.05, 0.5, n))
        steps_per_day = 390.0 * 60.0 / cfg.interval_s
        self.lam = self.oi * turnover / steps_per_day
        self.spread_factor = rng.uniform(0.9, 1.3, n)
        self.volume = np.zeros(n)
        self.spot = cfg.spot
        self.vol_shift = 0.0
        self.keys = contract_keys(self.expiry, self.strike, self.is_call)
        self.last_labels: tuple[InjectedAnomaly, ...] = ()

    def __len__(self) -> int:
        return int(self.strike.shape[0])

    def _t(self, ts: datetime) -> FloatArray:
        exp_s = self.expiry.astype(np.int64).astype(np.float64) * 86400.0
        out: FloatArray = (exp_s + EXPIRY_CUTOFF_SECONDS - ts.timestamp()) / SECONDS_PER_YEAR
        return out

    def ssvi_iv(self, k: FloatArray, t: FloatArray) -> FloatArray:
        """SSVI implied vol at log-moneyness ``k = ln(K/F)`` and maturity ``t``."""
        c = self.cfg
        atm = c.atm_vol_long - (c.atm_vol_long - c.atm_vol_short) * np.exp(-t / c.atm_decay)
        atm = np.maximum(atm + self.vol_shift, 0.03)
        theta = atm * atm * t
        phi = c.ssvi_eta / (theta**c.ssvi_gamma * (1.0 + theta) ** (1.0 - c.ssvi_gamma))
        rho = c.ssvi_rho
        pk = phi * k
        w = 0.5 * theta * (1.0 + rho * pk + np.sqrt((pk + rho) ** 2 + 1.0 - rho * rho))
        out: FloatArray = np.sqrt(w / t)
        return out

    def next_snapshot(self, inject: Mapping[AnomalyKind, int] | None = None) -> SyntheticSnapshot:
        """Advance one step and return the snapshot (with ``inject[kind]`` anomalies)."""
        cfg = self.cfg
        rng = np.random.default_rng([self.seed, 1, self.step])
        ts = cfg.start + timedelta(seconds=cfg.interval_s * self.step)
        if self.step > 0:
            dt = cfg.interval_s / SECONDS_PER_YEAR
            ret = cfg.spot_vol * math.sqrt(dt) * float(rng.standard_normal())
            self.spot *= math.exp(ret - 0.5 * cfg.spot_vol**2 * dt)
            self.vol_shift += cfg.vol_beta * ret
        increment = rng.poisson(self.lam).astype(np.float64)
        self.volume = self.volume + increment
        self.step += 1

        t = self._t(ts)
        live = t > 0.0
        t_live = np.where(live, t, 1e-9)
        spot, r, q = self.spot, cfg.rate, cfg.div_yield
        fwd = spot * np.exp((r - q) * t_live)
        k = np.log(self.strike / fwd)
        vol = self.ssvi_iv(k, t_live)
        euro = bsm_price(spot, self.strike, t_live, r, q, vol, self.is_call)
        intrinsic = np.maximum(np.where(self.is_call, spot - self.strike, self.strike - spot), 0)
        model = _cummax_in_maturity(np.maximum(euro, intrinsic), self.strike, self.is_call)
        spread = np.maximum(
            0.01, (0.01 + 0.004 * model * (1.0 + 0.5 * t_live)) * self.spread_factor
        )
        self.base_spread = spread
        half = 0.5 * spread
        noise = np.clip(rng.normal(0.0, 0.1, model.shape[0]), -0.25, 0.25) * half
        bid, ask = _quote(model + noise, half)
        last = np.where(
            rng.random(model.shape[0]) < 0.5, ask, bid
        )  # last trade at the ask or the bid
        quote_ts: FloatArray = np.asarray(ts.timestamp() - rng.uniform(0.0, 30.0, model.shape[0]))

        labels: list[InjectedAnomaly] = []
        volume = self.volume.copy()
        if inject:
            ctx = _InjectContext(
                self, rng, t_live, spot, model, bid, ask, half, vol, fwd, volume, increment
            )
            for kind, count in inject.items():
                for _ in range(count):
                    label = ctx.inject(AnomalyKind(kind))
                    if label is not None:
                        labels.append(label)
            bid, ask, volume = ctx.bid, ctx.ask, ctx.volume
            last = np.where(ctx.touched, 0.5 * (bid + ask), last)
            self.volume = volume.copy()
        # data-quality noise (never labelled, never an anomaly)
        bad = np.flatnonzero(rng.random(model.shape[0]) < cfg.bad_quote_rate)
        if inject:
            bad = bad[~ctx.protected[bad]]
        kinds = rng.integers(0, 4, bad.shape[0])
        bid = bid.copy()
        ask = ask.copy()
        bid[bad[kinds == 0]] = ask[bad[kinds == 0]] + 0.05  # crossed
        bid[bad[kinds == 1]] = ask[bad[kinds == 1]]  # locked
        quote_ts[bad[kinds == 2]] -= 3600.0  # stale
        ask[bad[kinds == 3]] = np.nan  # missing side
        snap = ChainSnapshot.from_arrays(
            ts=ts,
            symbol=cfg.symbol,
            spot=round(spot, 4),
            rate=r,
            div_yield=q,
            expiry=self.expiry[live],
            strike=self.strike[live],
            is_call=self.is_call[live],
            bid=bid[live],
            ask=ask[live],
            last=last[live],
            volume=volume[live],
            open_interest=self.oi[live],
            quote_ts=quote_ts[live],
        )
        self.last_labels = tuple(labels)
        return SyntheticSnapshot(snap, tuple(labels))


def _quote(mid: FloatArray, half: FloatArray) -> tuple[FloatArray, FloatArray]:
    bid = np.floor((mid - half) * 100.0 + 1e-9) / 100.0
    ask = np.ceil((mid + half) * 100.0 - 1e-9) / 100.0
    bid = np.maximum(bid, 0.0)
    ask = np.maximum(ask, bid + 0.01)
    return bid, ask


def _cummax_in_maturity(price: FloatArray, strike: FloatArray, is_call: BoolLike) -> FloatArray:
    """American options: a later expiry is worth at least an earlier one (same K, right).
    Contracts are laid out expiry by expiry, so a stable sort by (right, strike) keeps
    maturity order within each (right, strike) run."""
    order = np.lexsort((strike, is_call))
    p = price[order]
    key = strike[order] * 2 + is_call[order]
    starts = np.r_[True, key[1:] != key[:-1]]
    run = np.cumsum(starts) - 1
    # cumulative max within runs: offset each run so a global cummax cannot leak across
    offset = run * 1e7
    cm = np.maximum.accumulate(p + offset) - offset
    out = np.empty_like(price)
    out[order] = cm
    return out


BoolLike = NDArray[np.bool_]


class _InjectContext:
    """Mutable working copy of one snapshot's quotes while anomalies are injected."""

    def __init__(
        self,
        market: SyntheticMarket,
        rng: np.random.Generator,
        t: FloatArray,
        spot: float,
        model: FloatArray,
        bid: FloatArray,
        ask: FloatArray,
        half: FloatArray,
        vol: FloatArray,
        fwd: FloatArray,
        volume: FloatArray,
        increment: FloatArray,
    ) -> None:
        self.m = market
        self.rng = rng
        self.t = t
        self.spot = spot
        self.model = model
        self.bid = bid.copy()
        self.ask = ask.copy()
        self.half = half
        self.vol = vol
        self.fwd = fwd
        self.volume = volume
        self.increment = increment
        n = model.shape[0]
        self.protected = np.zeros(n, dtype=np.bool_)
        self.touched = np.zeros(n, dtype=np.bool_)
        self.dte = t * 365.0
        self.sc = market.cfg.magnitude_scale
        self.brk = BREAK_USD * self.sc
        # position of each contract among its expiry's strikes of the same right
        self.exp_days = market.expiry.astype(np.int64)
        order = np.lexsort((market.strike, market.is_call, self.exp_days))
        self.order = order
        self.rank = np.empty(n, dtype=np.intp)
        self.rank[order] = np.arange(n)
        # quote IV half-width (for iv_residual eligibility)
        sd = vol * np.sqrt(t)
        d1 = (np.log(spot / market.strike) + (market.cfg.rate - market.cfg.div_yield) * t) / sd
        d1 = d1 + 0.5 * sd
        vega = spot * np.exp(-market.cfg.div_yield * t - 0.5 * d1 * d1) * np.sqrt(t / (2 * np.pi))
        self.iv_halfwidth = half / np.maximum(vega, 1e-12)
        self.otm = np.where(market.is_call, market.strike >= fwd, market.strike < fwd)
        self.live = (t > 1.0 / 365.0) & (bid > 0.0)

    # -- helpers --------------------------------------------------------------------
    def _neighbour(self, i: int, offset: int) -> int | None:
        j = int(self.rank[i]) + offset
        if not 0 <= j < self.order.shape[0]:
            return None
        c = int(self.order[j])
        m = self.m
        same = (self.exp_days[c] == self.exp_days[i]) and (m.is_call[c] == m.is_call[i])
        return c if same else None

    def _protect(self, i: int) -> None:
        """Keep other injections (and data-quality noise) away from i's neighbourhood."""
        m = self.m
        near = (np.abs(m.strike - m.strike[i]) <= 15.0) & (
            np.abs(self.exp_days - self.exp_days[i]) <= 10
        )
        self.protected |= near

    def _pick(self, ok: NDArray[np.bool_]) -> int | None:
        cand = np.flatnonzero(ok & self.live & ~self.protected)
        if cand.size == 0:
            return None
        return int(cand[self.rng.integers(0, cand.size)])

    def _requote(self, i: int, mid: float, half: float | None = None) -> None:
        h = float(self.half[i]) if half is None else half
        b, a = _quote(np.array([mid]), np.array([h]))
        self.bid[i], self.ask[i] = float(b[0]), float(a[0])
        self.touched[i] = True

    def _label(self, kind: AnomalyKind, i: int) -> InjectedAnomaly:
        m = self.m
        self._protect(i)
        return InjectedAnomaly(
            kind=kind,
            expiry=str(m.expiry[i]),
            strike=float(m.strike[i]),
            right="C" if m.is_call[i] else "P",
            magnitude=MAGNITUDES[kind],
        )

    # -- one injector per kind -----------------------------------------------------
    def inject(self, kind: AnomalyKind) -> InjectedAnomaly | None:
        m, cfg = self.m, self.m.cfg
        s, r, q = self.spot, cfg.rate, cfg.div_yield
        if kind is AnomalyKind.IV_RESIDUAL:
            z = np.log(m.strike / self.fwd) / (self.vol * np.sqrt(self.t))
            i = self._pick(
                self.otm & (np.abs(z) <= 1.5) & (self.iv_halfwidth <= 0.003) & (self.model >= 0.5)
            )
            if i is None:
                return None
            down = self.rng.random() < 0.5 and self.vol[i] >= 0.18
            shift = (-0.08 if down else 0.08) * self.sc
            new_vol = max(float(self.vol[i]) + shift, 0.02)
            price = float(bsm_price(s, m.strike[i], self.t[i], r, q, new_vol, m.is_call[i]))
            self._requote(i, price)
            return self._label(kind, i)
        if kind is AnomalyKind.VOL_OI:
            i = self._pick((m.oi >= 200) & (self.model >= 0.5) & (self.dte >= 2))
            if i is None:
                return None
            self.volume[i] = 6.0 * self.sc * m.oi[i]
            return self._label(kind, i)
        if kind is AnomalyKind.VOLUME_Z:
            i = self._pick((self.dte >= 1) & (self.model >= 0.2))
            if i is None:
                return None
            lam = float(m.lam[i])
            burst = (20.0 * math.sqrt(lam + 1.0) + 200.0) * self.sc
            self.volume[i] += lam + burst - self.increment[i]
            return self._label(kind, i)
        if kind is AnomalyKind.SPREAD_BLOWOUT:
            base = m.base_spread
            wide = np.maximum((1.0 + 9.0 * self.sc) * base, base + 0.5 * self.sc)
            i = self._pick(self.model >= 0.5 * wide + 0.3)
            if i is None:
                return None
            mid = 0.5 * (self.bid[i] + self.ask[i])
            self._requote(i, mid, 0.5 * float(wide[i]))
            return self._label(kind, i)
        if kind is AnomalyKind.EARLY_EXERCISE:
            intrinsic = np.where(m.is_call, s - m.strike, m.strike - s)
            i = self._pick((intrinsic >= 2.0) & (self.dte >= 2))
            if i is None:
                return None
            t = self.t[i]
            if m.is_call[i]:
                fl = s * math.exp(-q * t) - m.strike[i] * math.exp(-r * t)
            else:
                fl = m.strike[i] * math.exp(-r * t) - s * math.exp(-q * t)
            lower = max(float(intrinsic[i]), fl, 0.0)
            spread = self.ask[i] - self.bid[i]
            self.ask[i] = round(lower - self.brk, 2)
            self.bid[i] = round(self.ask[i] - spread, 2)
            self.touched[i] = True
            return self._label(kind, i)
        if kind is AnomalyKind.PARITY:
            itm = ~self.otm & (self.dte <= 10) & (self.model >= 1.0)
            for _ in range(50):
                i = self._pick(itm)
                if i is None:
                    return None
                j = self._partner(i)
                if j is not None and self.bid[j] > 0:
                    break
                self.protected[i] = True
            else:
                return None
            t, k = self.t[i], m.strike[i]
            call, put = (i, j) if m.is_call[i] else (j, i)
            if m.is_call[i]:
                upper = s - k * math.exp(-r * t)
                shift = upper + self.brk - (self.bid[call] - self.ask[put])
            else:
                lower = s * math.exp(-q * t) - k
                shift = self.brk - (lower - (self.ask[call] - self.bid[put]))
            self.bid[i] = round(self.bid[i] + shift + 0.005, 2)
            self.ask[i] = round(self.ask[i] + shift + 0.005, 2)
            self.touched[i] = True
            self.protected[j] = True
            return self._label(kind, i)
        if kind is AnomalyKind.CALL_SPREAD:
            i = self._pick((self.dte >= 2) & (self.model >= 0.5))
            if i is None:
                return None
            if m.is_call[i]:
                lo = self._neighbour(i, -1)  # raise the higher strike above the lower
                if lo is None:
                    return None
                shift = self.ask[lo] + self.brk - self.bid[i]
            else:
                hi = self._neighbour(i, +1)  # raise the lower-strike put above the higher
                if hi is None:
                    return None
                shift = self.ask[hi] + self.brk - self.bid[i]
            self.bid[i] = round(self.bid[i] + shift + 0.005, 2)
            self.ask[i] = round(self.ask[i] + shift + 0.005, 2)
            self.touched[i] = True
            return self._label(kind, i)
        if kind is AnomalyKind.BUTTERFLY:
            i = self._pick((self.dte >= 2) & (self.model >= 0.5))
            if i is None:
                return None
            a, c = self._neighbour(i, -1), self._neighbour(i, +1)
            if a is None or c is None:
                return None
            k1, k2, k3 = m.strike[a], m.strike[i], m.strike[c]
            w1, w3 = (k3 - k2) / (k3 - k1), (k2 - k1) / (k3 - k1)
            shift = w1 * self.ask[a] + w3 * self.ask[c] + self.brk - self.bid[i]
            self.bid[i] = round(self.bid[i] + shift + 0.005, 2)
            self.ask[i] = round(self.ask[i] + shift + 0.005, 2)
            self.touched[i] = True
            return self._label(kind, i)
        if kind is AnomalyKind.CALENDAR:
            for _ in range(50):
                i = self._pick((self.dte >= 2) & (self.model >= 1.0))
                if i is None:
                    return None
                near = self._earlier(i)
                if near is not None and self.bid[near] >= 1.0:
                    break
                self.protected[i] = True
            else:
                return None
            spread = self.ask[i] - self.bid[i]
            self.ask[i] = round(self.bid[near] - self.brk, 2)
            self.bid[i] = round(max(self.ask[i] - spread, 0.01), 2)
            self.touched[i] = True
            return self._label(kind, i)
        return None

    def _partner(self, i: int) -> int | None:
        m = self.m
        hit = np.flatnonzero(
            (m.expiry == m.expiry[i]) & (m.strike == m.strike[i]) & (m.is_call != m.is_call[i])
        )
        return int(hit[0]) if hit.size else None

    def _earlier(self, i: int) -> int | None:
        m = self.m
        cand = np.flatnonzero(
            (m.strike == m.strike[i])
            & (m.is_call == m.is_call[i])
            & (m.expiry < m.expiry[i])
            & (self.t > 1.0 / 365.0)
        )
        if cand.size == 0:
            return None
        return int(cand[np.argmax(m.expiry[cand])])
