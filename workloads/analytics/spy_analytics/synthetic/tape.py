"""`TapeMarket`: an American-style SPY chain at SPY scale, the detector's yardstick.

Who calls this: ``bench/detection_quality.py`` (recall/precision per kind and the
stress regimes), tests (``scan`` of an ex-dividend-week chain). Unlike
`SyntheticMarket` (the fast demo feed, European prices floored at intrinsic) it shares
none of the rules' assumptions:

* American prices from a binomial tree with the true discrete dividend
  (`synthetic.tree`), not the detector's closed-form premium;
* a true dividend (``dividend``, $1.90) that differs from the one the snapshot header
  publishes (``published_dividend``, $1.85, what the detector's default projection
  says), ex-date the third Friday of the quarter, inside the chain;
* listing on the NYSE calendar: a daily expiry every trading day to ``dte_max`` (none
  on Thanksgiving, Christmas, New Year's Day), $1 strikes within ``strike_range``;
* SPY-scale quotes: $0.01 tick, spread ``max(1, round(0.3 price f))`` ticks
  (``f`` ~ U(0.8, 1.4) (1 + T/2)), open interest 15-22k at the money, Poisson volume;
* asynchronous quotes: each contract's quote is priced off the spot at its own quote
  time (ages exponential, mean ``quote_age_mean_s``, capped) on a 100 ms spot path,
  which the snapshot publishes as its spot history (``spot_history``);
* regimes: ``normal``; ``ex_dividend`` (one week before the ex-date); ``spot_lag``
  (the spot moved ``lag_move`` in the last second and most quotes are 1-3 s old);
  ``open`` (09:30:05 New York, spreads ``open_spread_mult`` x wider, decaying over
  five minutes, ages up to 5 s, no volume history).

Injected anomalies reuse `InjectContext` for the kinds defined on quotes alone
(volume, spreads, verticals, butterflies, calendars) and re-define the three that
depend on the model - IV residual (repriced on the tree at +/-8 vol points, in or out
of the money), put-call parity and the exercise bound (both against the true bounds
with the true dividend).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from ..bsm import bsm_price, d1_sd
from ..chain import SECONDS_PER_YEAR, ChainSnapshot, contract_keys
from ..dividends import DividendSchedule
from ..exchange_clock import expiry_close_epoch
from ..nyse_calendar import is_trading_day
from ..types import AnomalyKind
from .injection import MAGNITUDES, InjectedAnomaly
from .pricing import quote_on_tick, spoil_quotes, ssvi_iv
from .tape_config import REGIMES, STARTS, TapeConfig
from .tape_inject import TapeInject
from .tree import call_one_dividend, early_exercise_premium_tree

FloatArray = NDArray[np.float64]

_PATH_STEP_S = 0.1
_HISTORY_S = 10.0


@dataclass(frozen=True, eq=False)
class TapeSnapshot:
    snapshot: ChainSnapshot
    labels: tuple[InjectedAnomaly, ...] = field(default_factory=tuple)


class TapeMarket:
    """A seeded American SPY chain; each `next_snapshot` advances ``interval_s``."""

    def __init__(self, seed: int = 0, config: TapeConfig | None = None) -> None:
        self.seed = seed
        self.cfg = cfg = config or TapeConfig()
        self.start = cfg.start or STARTS[cfg.regime]
        self.step = 0
        rng = np.random.default_rng([seed, 11])
        today = self.start.date()
        exp_l: list[str] = []
        strikes: list[float] = []
        calls: list[bool] = []
        grid = np.arange(
            math.ceil(cfg.spot * (1 - cfg.strike_range)),
            math.floor(cfg.spot * (1 + cfg.strike_range)) + 1.0,
        )
        for d in range(cfg.dte_max + 1):
            day = today + timedelta(days=d)
            if not is_trading_day(day):
                continue
            for c in (False, True):
                exp_l += [day.isoformat()] * grid.size
                strikes += grid.tolist()
                calls += [c] * grid.size
        self.expiry = np.array(exp_l, dtype="datetime64[D]")
        self.strike = np.array(strikes)
        self.is_call = np.array(calls)
        n = self.strike.shape[0]
        t0 = self._t(self.start.timestamp())
        m = np.log(self.strike / cfg.spot) / (0.15 * np.sqrt(np.maximum(t0, 1 / 365)))
        self.oi = np.maximum(
            np.round(18500.0 * np.exp(-0.5 * (m / 1.3) ** 2) * rng.lognormal(0.0, 0.12, n)), 10.0
        )
        turnover = np.where(t0 * 365 < 1.0, 2.0, rng.uniform(0.05, 0.5, n))
        self.lam = self.oi * turnover / (6.5 * 3600.0 / cfg.interval_s)
        self.spread_factor = rng.uniform(0.8, 1.4, n)
        self.volume = np.zeros(n)
        self.spot = cfg.spot
        self.vol_shift = 0.0
        self.keys = contract_keys(self.expiry, self.strike, self.is_call)
        self.true_dividends = DividendSchedule.spy_projected(today, cfg.dividend, 1.0)
        self.published = DividendSchedule.spy_projected(today, cfg.published_dividend, 1.0)
        self.base_spread = np.full(n, 0.01)

    def __len__(self) -> int:
        return int(self.strike.shape[0])

    def _t(self, now: float) -> FloatArray:
        out: FloatArray = (expiry_close_epoch(self.expiry) - now) / SECONDS_PER_YEAR
        return out

    def _ssvi(self, k: FloatArray, t: FloatArray) -> FloatArray:
        return ssvi_iv(self.cfg, self.vol_shift, k, t)

    def fair(
        self, spot: float, now: float, rows: NDArray[np.intp], vol_bump: float = 0.0
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """(American value, vol, forward, delta, gamma) of ``rows`` at ``spot``.

        One lognormal escrowed process ``S* = S - D e^{-r t_d}`` for every expiry (the
        one dividend of the horizon); an option expiring before the ex-date is an
        option on ``S* + D e^{-r(t_d - T)}``, i.e. on ``S*`` with strike
        ``K - D e^{-r(t_d - T)}``; the smile is SSVI in ``ln(K_eff / F*)``.
        """
        cfg = self.cfg
        r = cfg.rate
        t = self._t(now)[rows]
        k, call = self.strike[rows], self.is_call[rows]
        ex, amt = self.true_dividends.ex_epochs()
        ahead = np.flatnonzero(ex > now)
        t_div = (ex[ahead[0]] - now) / SECONDS_PER_YEAR if ahead.size else math.inf
        amount = float(amt[ahead[0]]) if ahead.size else 0.0
        s_star = spot - amount * math.exp(-r * t_div) if ahead.size else spot
        after = t_div > t  # the dividend is still in the stock at expiry
        pv_after = np.where(after, amount * np.exp(-r * (t_div - t)), 0.0)
        k_eff = k - pv_after
        f_star = s_star * np.exp(r * t)
        vol = self._ssvi(np.log(k_eff / f_star), t) + vol_bump
        euro = bsm_price(f_star, k_eff, t, r, r, vol, call)
        eep = np.zeros(rows.shape[0])
        div_t = np.full(rows.shape[0], t_div if ahead.size else np.nan)
        div_amt = np.full(rows.shape[0], amount)
        jc = np.flatnonzero(call & ~after)
        if jc.size:
            # exercised only just before the ex-date: exact value, floored at that
            # exercise claim priced on the surface itself (each option has its own
            # vol, so only this floor keeps C(T2) >= C(T1) across the ex-date)
            td = np.full(jc.size, t_div)
            am = call_one_dividend(
                np.full(jc.size, s_star), k[jc], t[jc], r, vol[jc], td, div_amt[jc]
            )
            k_claim = k[jc] - amount
            f_td = s_star * math.exp(r * t_div)
            claim_vol = self._ssvi(np.log(np.maximum(k_claim, 1e-9) / f_td), td) + vol_bump
            claim = bsm_price(f_td, k_claim, td, r, r, claim_vol, True)
            eep[jc] = np.maximum(np.maximum(am, claim) - euro[jc], 0.0)
        j = np.flatnonzero(~call)
        if j.size:
            eep[j] = early_exercise_premium_tree(
                np.full(j.size, s_star), k[j], t[j], r, vol[j], call[j], div_t[j], div_amt[j],
                cfg.tree_steps,
            )  # fmt: skip
        intrinsic = np.maximum(np.where(call, spot - k, k - spot), 0.0)
        value = np.maximum(euro + eep, intrinsic)
        d1, sd = d1_sd(f_star, k_eff, t, r, r, vol)
        pdf = np.exp(-0.5 * d1 * d1) / math.sqrt(2.0 * math.pi)
        delta = ndtr(d1) - np.where(call, 0.0, 1.0)
        gamma = pdf / (s_star * sd)
        return value, vol, f_star + pv_after, delta, gamma

    def _spot_path(self, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
        """100 ms spot path over the last interval (epoch offsets from ts, prices)."""
        cfg = self.cfg
        steps = max(round(max(cfg.interval_s, _HISTORY_S) / _PATH_STEP_S), 1)
        dt = _PATH_STEP_S / (252 * 6.5 * 3600.0)  # spot moves in trading time
        rets = cfg.spot_vol * math.sqrt(dt) * rng.standard_normal(steps)
        offsets = -_PATH_STEP_S * np.arange(steps, -1, -1, dtype=np.float64)
        path = self.spot * np.exp(np.concatenate([[0.0], np.cumsum(rets)]))
        if cfg.regime == "spot_lag":
            # a $lag_move move in the last second that most quotes have not caught up with
            sign = 1.0 if rng.random() < 0.5 else -1.0
            ramp = np.clip((offsets + 1.0) / 0.5, 0.0, 1.0)
            path = path + sign * cfg.lag_move * ramp
        return offsets, np.round(path, 2)

    def next_snapshot(self, inject: Mapping[AnomalyKind, int] | None = None) -> TapeSnapshot:
        """Advance one step and return the snapshot (with ``inject[kind]`` anomalies)."""
        cfg = self.cfg
        rng = np.random.default_rng([self.seed, 12, self.step])
        ts = self.start + timedelta(seconds=cfg.interval_s * self.step)
        now = ts.timestamp()
        offsets, path = self._spot_path(rng)
        if self.step > 0:
            self.vol_shift += -2.0 * math.log(path[-1] / self.spot)
        self.spot = float(path[-1])
        increment = rng.poisson(self.lam).astype(np.float64)
        self.volume = self.volume + increment
        self.step += 1
        t = self._t(now)
        live = np.flatnonzero(t > 0.0)
        value, vol, fwd, delta, gamma = self._fair_all(now, live)
        age = self._quote_ages(rng)
        # asynchronous quotes: each priced off the spot at its own time
        idx = np.clip(np.searchsorted(offsets, -age, side="right") - 1, 0, offsets.size - 1)
        move = path[idx] - self.spot
        quoted = value + delta * move + 0.5 * gamma * move * move
        intrinsic_q = np.where(self.is_call, path[idx] - self.strike, self.strike - path[idx])
        quoted = np.maximum(quoted, intrinsic_q)
        half = 0.5 * self._spread(quoted, t)
        noise = np.clip(rng.normal(0.0, 0.1, len(self)), -0.25, 0.25) * half
        bid, ask = quote_on_tick(quoted + noise, half)
        bid = np.where(quoted < 0.005, 0.0, bid)
        last = np.where(rng.random(len(self)) < 0.5, ask, bid)
        quote_ts = now - age

        labels: list[InjectedAnomaly] = []
        volume = self.volume.copy()
        t_live = np.where(t > 0.0, t, 1e-9)
        ctx: TapeInject | None = None
        if inject:
            ctx = TapeInject(
                self, rng, t_live, self.spot, value, bid, ask, half, vol, fwd, volume, increment
            )
            labels = ctx.inject_all(inject)
            bid, ask, volume = ctx.bid, ctx.ask, ctx.volume
            last = np.where(ctx.touched, 0.5 * (bid + ask), last)
            quote_ts = np.where(ctx.touched, now - 0.05, quote_ts)
            self.volume = volume.copy()
        protected = ctx.protected if ctx is not None else None
        bid, ask, quote_ts = spoil_quotes(rng, cfg.bad_quote_rate, bid, ask, quote_ts, protected)
        quotes = {"bid": bid, "ask": ask, "last": last, "volume": volume, "quote_ts": quote_ts}
        snap = self._snapshot(ts, live, quotes, offsets, path)
        return TapeSnapshot(snap, tuple(labels))

    def _fair_all(
        self, now: float, live: NDArray[np.intp]
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """`fair` of the live contracts, neutral values for the expired ones."""
        n = len(self)
        value = np.zeros(n)
        vol = np.full(n, 0.2)
        fwd = np.full(n, self.spot)
        delta = np.zeros(n)
        gamma = np.zeros(n)
        value[live], vol[live], fwd[live], delta[live], gamma[live] = self.fair(
            self.spot, now, live
        )
        return value, vol, fwd, delta, gamma

    def _quote_ages(self, rng: np.random.Generator) -> FloatArray:
        """Seconds since each contract was last quoted, by regime."""
        cfg, n = self.cfg, len(self)
        if cfg.regime == "spot_lag":
            age = np.where(rng.random(n) < 0.8, rng.uniform(1.0, 3.0, n), rng.uniform(0, 1.0, n))
        elif cfg.regime == "open":
            age = np.minimum(rng.exponential(1.0, n), 5.0)
        else:
            age = np.minimum(rng.exponential(cfg.quote_age_mean_s, n), cfg.quote_age_max_s)
        out: FloatArray = age
        return out

    def _spread(self, quoted: FloatArray, t: FloatArray) -> FloatArray:
        """Whole-tick spreads, wider with price and maturity (and after the open)."""
        cfg = self.cfg
        mult = 1.0
        if cfg.regime == "open":
            minutes = cfg.interval_s * (self.step - 1) / 60.0
            mult = 1.0 + (cfg.open_spread_mult - 1.0) * math.exp(-minutes / 5.0)
        ticks = np.maximum(
            1.0, np.round(0.3 * quoted * self.spread_factor * (1.0 + 0.5 * np.maximum(t, 0)) * mult)
        )
        spread: FloatArray = 0.01 * ticks
        self.base_spread = spread
        return spread

    def _snapshot(
        self,
        ts: datetime,
        live: NDArray[np.intp],
        quotes: dict[str, FloatArray],
        offsets: FloatArray,
        path: FloatArray,
    ) -> ChainSnapshot:
        cfg, now = self.cfg, ts.timestamp()
        keep = int(_HISTORY_S / _PATH_STEP_S) + 1
        history = (now + offsets[-keep:], path[-keep:])
        return ChainSnapshot.from_arrays(
            ts=ts,
            symbol=cfg.symbol,
            spot=self.spot,
            rate=cfg.rate,
            div_yield=0.0,
            expiry=self.expiry[live],
            strike=self.strike[live],
            is_call=self.is_call[live],
            bid=quotes["bid"][live],
            ask=quotes["ask"][live],
            last=quotes["last"][live],
            volume=quotes["volume"][live],
            open_interest=self.oi[live],
            quote_ts=quotes["quote_ts"][live],
            dividends=self.published,
            spot_history=history if cfg.spot_history else None,
        )


__all__ = ["MAGNITUDES", "REGIMES", "TapeConfig", "TapeInject", "TapeMarket", "TapeSnapshot"]
