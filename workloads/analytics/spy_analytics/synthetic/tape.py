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
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from ..bsm import bsm_price, d1_sd
from ..chain import SECONDS_PER_YEAR, ChainSnapshot, contract_keys, expiry_close_epoch
from ..dividends import DividendSchedule, pv_dividends
from ..nyse_calendar import is_trading_day
from ..types import AnomalyKind
from .injection import MAGNITUDES, InjectContext, InjectedAnomaly
from .pricing import quote_on_tick
from .tree import call_one_dividend, early_exercise_premium_tree

FloatArray = NDArray[np.float64]

REGIMES = ("normal", "ex_dividend", "spot_lag", "open")
_STARTS = {
    "normal": datetime(2026, 11, 24, 15, 30, tzinfo=UTC),
    "ex_dividend": datetime(2026, 12, 11, 15, 30, tzinfo=UTC),  # ex-date 2026-12-18
    "spot_lag": datetime(2026, 11, 24, 15, 30, tzinfo=UTC),
    "open": datetime(2026, 11, 24, 14, 30, 5, tzinfo=UTC),  # 09:30:05 New York (EST)
}
_PATH_STEP_S = 0.1
_HISTORY_S = 10.0


@dataclass(frozen=True)
class TapeConfig:
    regime: str = "normal"
    start: datetime | None = None  # None: the regime's start
    spot: float = 600.0
    rate: float = 0.043
    dividend: float = 1.90
    published_dividend: float = 1.85
    dte_max: int = 60
    strike_range: float = 0.10
    interval_s: float = 5.0
    spot_vol: float = 0.14
    atm_vol_short: float = 0.12
    atm_vol_long: float = 0.18
    atm_decay: float = 0.25
    ssvi_rho: float = -0.7
    ssvi_eta: float = 1.0
    ssvi_gamma: float = 0.5
    quote_age_mean_s: float = 0.4
    quote_age_max_s: float = 3.0
    lag_move: float = 0.15
    open_spread_mult: float = 3.0
    bad_quote_rate: float = 0.002
    spot_history: bool = True
    magnitude_scale: float = 1.0
    tree_steps: int = 80
    symbol: str = "SPY"
    #: continuous yield: none (the dividend is discrete); `InjectContext` reads it
    div_yield: float = 0.0

    def __post_init__(self) -> None:
        if self.regime not in REGIMES:
            raise ValueError(f"regime must be one of {REGIMES}, got {self.regime!r}")


@dataclass(frozen=True, eq=False)
class TapeSnapshot:
    snapshot: ChainSnapshot
    labels: tuple[InjectedAnomaly, ...] = field(default_factory=tuple)


class TapeMarket:
    """A seeded American SPY chain; each `next_snapshot` advances ``interval_s``."""

    def __init__(self, seed: int = 0, config: TapeConfig | None = None) -> None:
        self.seed = seed
        self.cfg = cfg = config or TapeConfig()
        self.start = cfg.start or _STARTS[cfg.regime]
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
        c = self.cfg
        atm = c.atm_vol_long - (c.atm_vol_long - c.atm_vol_short) * np.exp(-t / c.atm_decay)
        atm = np.maximum(atm + self.vol_shift, 0.03)
        theta = atm * atm * t
        phi = c.ssvi_eta / (theta**c.ssvi_gamma * (1.0 + theta) ** (1.0 - c.ssvi_gamma))
        pk = phi * k
        rho = c.ssvi_rho
        w = 0.5 * theta * (1.0 + rho * pk + np.sqrt((pk + rho) ** 2 + 1.0 - rho * rho))
        out: FloatArray = np.sqrt(w / t)
        return out

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
        n = len(self)
        value = np.zeros(n)
        vol = np.full(n, 0.2)
        fwd = np.full(n, self.spot)
        delta = np.zeros(n)
        gamma = np.zeros(n)
        value[live], vol[live], fwd[live], delta[live], gamma[live] = self.fair(
            self.spot, now, live
        )
        # asynchronous quotes: each priced off the spot at its own time
        if cfg.regime == "spot_lag":
            age = np.where(rng.random(n) < 0.8, rng.uniform(1.0, 3.0, n), rng.uniform(0, 1.0, n))
        elif cfg.regime == "open":
            age = np.minimum(rng.exponential(1.0, n), 5.0)
        else:
            age = np.minimum(rng.exponential(cfg.quote_age_mean_s, n), cfg.quote_age_max_s)
        idx = np.clip(np.searchsorted(offsets, -age, side="right") - 1, 0, offsets.size - 1)
        move = path[idx] - self.spot
        quoted = value + delta * move + 0.5 * gamma * move * move
        intrinsic_q = np.where(self.is_call, path[idx] - self.strike, self.strike - path[idx])
        quoted = np.maximum(quoted, intrinsic_q)
        mult = 1.0
        if cfg.regime == "open":
            minutes = cfg.interval_s * (self.step - 1) / 60.0
            mult = 1.0 + (cfg.open_spread_mult - 1.0) * math.exp(-minutes / 5.0)
        ticks = np.maximum(
            1.0, np.round(0.3 * quoted * self.spread_factor * (1.0 + 0.5 * np.maximum(t, 0)) * mult)
        )
        spread = 0.01 * ticks
        self.base_spread = spread
        half = 0.5 * spread
        noise = np.clip(rng.normal(0.0, 0.1, n), -0.25, 0.25) * half
        bid, ask = quote_on_tick(quoted + noise, half)
        bid = np.where(quoted < 0.005, 0.0, bid)
        last = np.where(rng.random(n) < 0.5, ask, bid)
        quote_ts = now - age

        labels: list[InjectedAnomaly] = []
        volume = self.volume.copy()
        t_live = np.where(t > 0.0, t, 1e-9)
        ctx: TapeInject | None = None
        if inject:
            ctx = TapeInject(
                self, rng, t_live, self.spot, value, bid, ask, half, vol, fwd, volume, increment
            )
            for kind, count in inject.items():
                for _ in range(count):
                    label = ctx.inject(AnomalyKind(kind))
                    if label is not None:
                        labels.append(label)
            bid, ask, volume = ctx.bid, ctx.ask, ctx.volume
            last = np.where(ctx.touched, 0.5 * (bid + ask), last)
            quote_ts = np.where(ctx.touched, now - 0.05, quote_ts)
            self.volume = volume.copy()
        bad = np.flatnonzero(rng.random(n) < cfg.bad_quote_rate)
        if ctx is not None:
            bad = bad[~ctx.protected[bad]]
        kinds = rng.integers(0, 4, bad.shape[0])
        bid, ask = bid.copy(), ask.copy()
        bid[bad[kinds == 0]] = ask[bad[kinds == 0]] + 0.05  # crossed
        bid[bad[kinds == 1]] = ask[bad[kinds == 1]]  # locked
        quote_ts[bad[kinds == 2]] -= 3600.0  # stale
        ask[bad[kinds == 3]] = np.nan  # one side missing
        history = (
            now + offsets[-int(_HISTORY_S / _PATH_STEP_S) - 1 :],
            path[-int(_HISTORY_S / _PATH_STEP_S) - 1 :],
        )
        snap = ChainSnapshot.from_arrays(
            ts=ts,
            symbol=cfg.symbol,
            spot=self.spot,
            rate=cfg.rate,
            div_yield=0.0,
            expiry=self.expiry[live],
            strike=self.strike[live],
            is_call=self.is_call[live],
            bid=bid[live],
            ask=ask[live],
            last=last[live],
            volume=volume[live],
            open_interest=self.oi[live],
            quote_ts=quote_ts[live],
            dividends=self.published,
            spot_history=history if cfg.spot_history else None,
        )
        return TapeSnapshot(snap, tuple(labels))


class TapeInject(InjectContext):
    """`InjectContext` with the model-dependent kinds defined on the tape's own
    American prices and true dividend (the others are quote-only and shared)."""

    m: TapeMarket

    def inject(self, kind: AnomalyKind) -> InjectedAnomaly | None:
        if kind is AnomalyKind.IV_RESIDUAL:
            return self._iv_residual()
        if kind is AnomalyKind.PARITY:
            return self._parity()
        if kind is AnomalyKind.EARLY_EXERCISE:
            return self._exercise_bound()
        return super().inject(kind)

    def _true_bounds(self, i: int) -> tuple[float, float, float]:
        """(S - PV(D), e^{-rT}, PV(D)) of contract i's expiry with the true dividend."""
        m, t = self.m, float(self.t[i])
        now = m.start.timestamp() + m.cfg.interval_s * (m.step - 1)
        pvd = float(
            pv_dividends(m.true_dividends, now, np.array([now + t * SECONDS_PER_YEAR]), m.cfg.rate)[
                0
            ]
        )
        return self.spot - pvd, math.exp(-m.cfg.rate * t), pvd

    def _iv_residual(self) -> InjectedAnomaly | None:
        m = self.m
        z = np.log(m.strike / self.fwd) / (self.vol * np.sqrt(self.t))
        i = self._pick(
            (np.abs(z) <= 1.5)
            & (self.iv_halfwidth <= 0.003)
            & (self.model >= 0.5)
            & (self.dte >= 1)
        )
        if i is None:
            return None
        down = self.rng.random() < 0.5 and self.vol[i] >= 0.18
        bump = (-0.08 if down else 0.08) * self.sc
        now = m.start.timestamp() + m.cfg.interval_s * (m.step - 1)
        price = m.fair(self.spot, now, np.array([i]), vol_bump=bump)[0]
        self._requote(i, float(price[0]))
        return self._label(AnomalyKind.IV_RESIDUAL, i)

    def _parity(self) -> InjectedAnomaly | None:
        m = self.m
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
        escrowed, disc, _pvd = self._true_bounds(i)
        k = float(m.strike[i])
        call, put = (i, j) if m.is_call[i] else (j, i)
        if m.is_call[i]:
            shift = (self.spot - k * disc) + self.brk - (self.bid[call] - self.ask[put])
        else:
            shift = self.brk - ((escrowed - k) - (self.ask[call] - self.bid[put]))
        self.bid[i] = round(self.bid[i] + shift + 0.005, 2)
        self.ask[i] = round(self.ask[i] + shift + 0.005, 2)
        self.touched[i] = True
        self.protected[j] = True
        return self._label(AnomalyKind.PARITY, i)

    def _exercise_bound(self) -> InjectedAnomaly | None:
        m = self.m
        intrinsic = np.where(m.is_call, self.spot - m.strike, m.strike - self.spot)
        i = self._pick((intrinsic >= 2.0) & (self.dte >= 2))
        if i is None:
            return None
        escrowed, disc, _pvd = self._true_bounds(i)
        k = float(m.strike[i])
        euro_lower = (escrowed - k * disc) if m.is_call[i] else (k * disc - escrowed)
        lower = max(float(intrinsic[i]), euro_lower, 0.0)
        spread = self.ask[i] - self.bid[i]
        self.ask[i] = round(lower - self.brk, 2)
        self.bid[i] = round(self.ask[i] - spread, 2)
        self.touched[i] = True
        return self._label(AnomalyKind.EARLY_EXERCISE, i)


__all__ = ["MAGNITUDES", "REGIMES", "TapeConfig", "TapeInject", "TapeMarket", "TapeSnapshot"]
