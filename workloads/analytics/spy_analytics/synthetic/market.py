"""`SyntheticMarket`: a seeded SPY chain evolving snapshot by snapshot.

Who calls this: tests, benchmarks and the detector's synthetic source through
`spy_analytics.synthetic`. See the package docstring for the model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from ..american import early_exercise_premium
from ..bsm import bsm_price
from ..chain import SECONDS_PER_YEAR, ChainSnapshot, contract_keys
from ..exchange_clock import expiry_close_epoch
from ..types import AnomalyKind
from .injection import InjectContext, InjectedAnomaly
from .listing import listed_expiries, strike_grid
from .pricing import cummax_in_maturity, quote_on_tick, spoil_quotes, ssvi_iv

FloatArray = NDArray[np.float64]


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
    #: Quote ages are uniform in [0, this) seconds: inside the parity/early-exercise
    #: freshness window (`BoundsConfig.max_quote_age_s`, 5 s) like a live SPY chain.
    max_quote_age_s: float = 4.0
    symbol: str = "SPY"
    #: Multiplies every injected magnitude (1.0 = the documented `MAGNITUDES`); used by
    #: bench/detection_quality.py to measure recall below the documented size.
    magnitude_scale: float = 1.0


@dataclass(frozen=True, eq=False)
class SyntheticSnapshot:
    snapshot: ChainSnapshot
    labels: tuple[InjectedAnomaly, ...] = field(default_factory=tuple)


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
        close = expiry_close_epoch(self.expiry)
        out: FloatArray = (close - ts.timestamp()) / SECONDS_PER_YEAR
        return out

    def ssvi_iv(self, k: FloatArray, t: FloatArray) -> FloatArray:
        """SSVI implied vol at log-moneyness ``k = ln(K/F)`` and maturity ``t``."""
        return ssvi_iv(self.cfg, self.vol_shift, k, t)

    def next_snapshot(self, inject: Mapping[AnomalyKind, int] | None = None) -> SyntheticSnapshot:
        """Advance one step and return the snapshot (with ``inject[kind]`` anomalies)."""
        cfg = self.cfg
        rng = np.random.default_rng([self.seed, 1, self.step])
        ts = cfg.start + timedelta(seconds=cfg.interval_s * self.step)
        increment = self._advance(rng)
        t = self._t(ts)
        live = t > 0.0
        t_live = np.where(live, t, 1e-9)
        spot = self.spot
        fwd, vol, model = self._model(t_live)
        spread = np.maximum(
            0.01, (0.01 + 0.004 * model * (1.0 + 0.5 * t_live)) * self.spread_factor
        )
        self.base_spread = spread
        half = 0.5 * spread
        noise = np.clip(rng.normal(0.0, 0.1, model.shape[0]), -0.25, 0.25) * half
        bid, ask = quote_on_tick(model + noise, half)
        last = np.where(
            rng.random(model.shape[0]) < 0.5, ask, bid
        )  # last trade at the ask or the bid
        quote_ts: FloatArray = np.asarray(
            ts.timestamp() - rng.uniform(0.0, cfg.max_quote_age_s, model.shape[0])
        )

        labels: list[InjectedAnomaly] = []
        volume = self.volume.copy()
        protected = None
        if inject:
            ctx = InjectContext(
                self, rng, t_live, spot, model, bid, ask, half, vol, fwd, volume, increment
            )
            labels = ctx.inject_all(inject)
            bid, ask, volume = ctx.bid, ctx.ask, ctx.volume
            last = np.where(ctx.touched, 0.5 * (bid + ask), last)
            self.volume = volume.copy()
            protected = ctx.protected
        bid, ask, quote_ts = spoil_quotes(rng, cfg.bad_quote_rate, bid, ask, quote_ts, protected)
        quotes = {"bid": bid, "ask": ask, "last": last, "volume": volume, "quote_ts": quote_ts}
        snap = self._snapshot(ts, live, quotes)
        self.last_labels = tuple(labels)
        return SyntheticSnapshot(snap, tuple(labels))

    def _advance(self, rng: np.random.Generator) -> FloatArray:
        """One step of spot (GBM), the leverage effect on vol, and traded volume; the
        step's volume increment."""
        cfg = self.cfg
        if self.step > 0:
            dt = cfg.interval_s / SECONDS_PER_YEAR
            ret = cfg.spot_vol * math.sqrt(dt) * float(rng.standard_normal())
            self.spot *= math.exp(ret - 0.5 * cfg.spot_vol**2 * dt)
            self.vol_shift += cfg.vol_beta * ret
        increment: FloatArray = rng.poisson(self.lam).astype(np.float64)
        self.volume = self.volume + increment
        self.step += 1
        return increment

    def _model(self, t_live: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(forward, SSVI vol, American model price) of every contract at the spot."""
        spot, r, q = self.spot, self.cfg.rate, self.cfg.div_yield
        fwd = spot * np.exp((r - q) * t_live)
        k = np.log(self.strike / fwd)
        vol = self.ssvi_iv(k, t_live)
        euro = bsm_price(spot, self.strike, t_live, r, q, vol, self.is_call)
        # American puts carry an early-exercise premium (the fast closed form here;
        # `synthetic.tape` prices on a tree for the detection-quality yardstick)
        nan = np.full(fwd.shape, np.nan)
        eep = early_exercise_premium(fwd, self.strike, t_live, r, vol, self.is_call, nan, nan)
        intrinsic = np.maximum(np.where(self.is_call, spot - self.strike, self.strike - spot), 0)
        american = np.maximum(euro + np.nan_to_num(eep), intrinsic)
        model = cummax_in_maturity(american, self.strike, self.is_call)
        return fwd, vol, model

    def _snapshot(
        self, ts: datetime, live: NDArray[np.bool_], quotes: dict[str, FloatArray]
    ) -> ChainSnapshot:
        cfg, spot = self.cfg, round(self.spot, 4)
        return ChainSnapshot.from_arrays(
            ts=ts,
            symbol=cfg.symbol,
            spot=spot,
            rate=cfg.rate,
            div_yield=cfg.div_yield,
            expiry=self.expiry[live],
            strike=self.strike[live],
            is_call=self.is_call[live],
            bid=quotes["bid"][live],
            ask=quotes["ask"][live],
            last=quotes["last"][live],
            volume=quotes["volume"][live],
            open_interest=self.oi[live],
            quote_ts=quotes["quote_ts"][live],
            # every quote here is priced off the snapshot's spot: a flat history over
            # the quotes' ages says so (the live source records the real ticks)
            spot_history=(
                [ts.timestamp() - cfg.max_quote_age_s - 3600.0, ts.timestamp()],
                [spot, spot],
            ),
        )
