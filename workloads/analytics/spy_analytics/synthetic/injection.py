"""The injectors: one per anomaly kind (labels and magnitudes are in `.labels`).

Who calls this: `spy_analytics.synthetic.market` and `.tape` (``next_snapshot(inject=...)``);
bench/detection_quality.py reads `MAGNITUDES`. Each injector picks an eligible contract
away from earlier injections, re-quotes it so the anomaly has exactly the documented
size, and returns its `InjectedAnomaly` label.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from numpy.typing import NDArray

from ..bsm import bsm_price, d1_sd
from ..types import AnomalyKind
from .labels import BREAK_USD, MAGNITUDES, InjectedAnomaly
from .pricing import quote_on_tick

if TYPE_CHECKING:
    from .market import SyntheticMarket
    from .tape import TapeMarket

FloatArray = NDArray[np.float64]
_P = TypeVar("_P")


class InjectContext:
    """Mutable working copy of one snapshot's quotes while anomalies are injected."""

    def __init__(
        self,
        market: SyntheticMarket | TapeMarket,
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
        d1, _sd = d1_sd(spot, market.strike, t, market.cfg.rate, market.cfg.div_yield, vol)
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
        b, a = quote_on_tick(np.array([mid]), np.array([h]))
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

    def _pick_with(
        self, ok: NDArray[np.bool_], partner: Callable[[int], _P | None]
    ) -> tuple[int, _P] | None:
        """Up to 50 draws of an eligible contract that has a partner; a contract drawn
        without one is protected so it is not drawn again."""
        for _ in range(50):
            i = self._pick(ok)
            if i is None:
                return None
            found = partner(i)
            if found is not None:
                return i, found
            self.protected[i] = True
        return None

    def _shift(self, i: int, shift: float) -> None:
        """Move both sides of contract i's quote by `shift` (rounded to the cent)."""
        self.bid[i] = round(self.bid[i] + shift + 0.005, 2)
        self.ask[i] = round(self.ask[i] + shift + 0.005, 2)
        self.touched[i] = True

    def _ask_below(self, i: int, bound: float) -> None:
        """Set contract i's ask the break size below `bound`, keeping its spread."""
        spread = self.ask[i] - self.bid[i]
        self.ask[i] = round(bound - self.brk, 2)
        self.bid[i] = round(self.ask[i] - spread, 2)
        self.touched[i] = True

    # -- one injector per kind -----------------------------------------------------
    def inject(self, kind: AnomalyKind) -> InjectedAnomaly | None:
        injector = {
            AnomalyKind.IV_RESIDUAL: self._iv_residual,
            AnomalyKind.VOL_OI: self._vol_oi,
            AnomalyKind.VOLUME_Z: self._volume_z,
            AnomalyKind.SPREAD_BLOWOUT: self._spread_blowout,
            AnomalyKind.EARLY_EXERCISE: self._exercise_bound,
            AnomalyKind.PARITY: self._parity,
            AnomalyKind.CALL_SPREAD: self._call_spread,
            AnomalyKind.BUTTERFLY: self._butterfly,
            AnomalyKind.CALENDAR: self._calendar,
        }.get(kind)
        return injector() if injector is not None else None

    def inject_all(self, inject: Mapping[AnomalyKind, int]) -> list[InjectedAnomaly]:
        """``inject[kind]`` anomalies of each kind, in order; the labels of those placed."""
        labels: list[InjectedAnomaly] = []
        for kind, count in inject.items():
            for _ in range(count):
                label = self.inject(AnomalyKind(kind))
                if label is not None:
                    labels.append(label)
        return labels

    def _iv_residual(self) -> InjectedAnomaly | None:
        m, cfg = self.m, self.m.cfg
        z = np.log(m.strike / self.fwd) / (self.vol * np.sqrt(self.t))
        i = self._pick(
            self.otm & (np.abs(z) <= 1.5) & (self.iv_halfwidth <= 0.003) & (self.model >= 0.5)
        )
        if i is None:
            return None
        down = self.rng.random() < 0.5 and self.vol[i] >= 0.18
        shift = (-0.08 if down else 0.08) * self.sc
        new_vol = max(float(self.vol[i]) + shift, 0.02)
        price = float(
            bsm_price(
                self.spot, m.strike[i], self.t[i], cfg.rate, cfg.div_yield, new_vol, m.is_call[i]
            )
        )
        self._requote(i, price)
        return self._label(AnomalyKind.IV_RESIDUAL, i)

    def _vol_oi(self) -> InjectedAnomaly | None:
        m = self.m
        i = self._pick((m.oi >= 200) & (self.model >= 0.5) & (self.dte >= 2))
        if i is None:
            return None
        self.volume[i] = 6.0 * self.sc * m.oi[i]
        return self._label(AnomalyKind.VOL_OI, i)

    def _volume_z(self) -> InjectedAnomaly | None:
        i = self._pick((self.dte >= 1) & (self.model >= 0.2))
        if i is None:
            return None
        lam = float(self.m.lam[i])
        burst = (20.0 * math.sqrt(lam + 1.0) + 200.0) * self.sc
        self.volume[i] += lam + burst - self.increment[i]
        return self._label(AnomalyKind.VOLUME_Z, i)

    def _spread_blowout(self) -> InjectedAnomaly | None:
        base = self.m.base_spread
        wide = np.maximum((1.0 + 9.0 * self.sc) * base, base + 0.5 * self.sc)
        i = self._pick(self.model >= 0.5 * wide + 0.3)
        if i is None:
            return None
        mid = 0.5 * (self.bid[i] + self.ask[i])
        self._requote(i, mid, 0.5 * float(wide[i]))
        return self._label(AnomalyKind.SPREAD_BLOWOUT, i)

    def _exercise_bound(self) -> InjectedAnomaly | None:
        m, s, r, q = self.m, self.spot, self.m.cfg.rate, self.m.cfg.div_yield
        intrinsic = np.where(m.is_call, s - m.strike, m.strike - s)
        i = self._pick((intrinsic >= 2.0) & (self.dte >= 2))
        if i is None:
            return None
        t = self.t[i]
        if m.is_call[i]:
            fl = s * math.exp(-q * t) - m.strike[i] * math.exp(-r * t)
        else:
            fl = m.strike[i] * math.exp(-r * t) - s * math.exp(-q * t)
        self._ask_below(i, max(float(intrinsic[i]), fl, 0.0))
        return self._label(AnomalyKind.EARLY_EXERCISE, i)

    def _parity(self) -> InjectedAnomaly | None:
        m, s, r, q = self.m, self.spot, self.m.cfg.rate, self.m.cfg.div_yield
        itm = ~self.otm & (self.dte <= 10) & (self.model >= 1.0)
        picked = self._pick_with(itm, self._quoted_partner)
        if picked is None:
            return None
        i, j = picked
        t, k = self.t[i], m.strike[i]
        call, put = (i, j) if m.is_call[i] else (j, i)
        if m.is_call[i]:
            upper = s - k * math.exp(-r * t)
            shift = upper + self.brk - (self.bid[call] - self.ask[put])
        else:
            lower = s * math.exp(-q * t) - k
            shift = self.brk - (lower - (self.ask[call] - self.bid[put]))
        self._shift(i, shift)
        self.protected[j] = True
        return self._label(AnomalyKind.PARITY, i)

    def _call_spread(self) -> InjectedAnomaly | None:
        m = self.m
        # raise the higher-strike call above the lower, or the lower-strike put above the
        # higher: a contract at the end of its strip has no partner
        picked = self._pick_with(
            (self.dte >= 2) & (self.model >= 0.5),
            lambda i: self._neighbour(i, -1 if m.is_call[i] else +1),
        )
        if picked is None:
            return None
        i, other = picked
        self._shift(i, self.ask[other] + self.brk - self.bid[i])
        return self._label(AnomalyKind.CALL_SPREAD, i)

    def _butterfly(self) -> InjectedAnomaly | None:
        m = self.m
        # within 180 days: further out $0.40 is ~0.2 vol points, inside the smile fit's
        # noise, and the break is blamed on a wing as often as the body
        picked = self._pick_with(
            (self.dte >= 2) & (self.dte <= 180) & (self.model >= 0.5), self._wings
        )
        if picked is None:
            return None
        i, (a, c) = picked
        k1, k2, k3 = m.strike[a], m.strike[i], m.strike[c]
        w1, w3 = (k3 - k2) / (k3 - k1), (k2 - k1) / (k3 - k1)
        self._shift(i, w1 * self.ask[a] + w3 * self.ask[c] + self.brk - self.bid[i])
        return self._label(AnomalyKind.BUTTERFLY, i)

    def _calendar(self) -> InjectedAnomaly | None:
        picked = self._pick_with((self.dte >= 2) & (self.model >= 1.0), self._earlier_quoted)
        if picked is None:
            return None
        i, near = picked
        spread = self.ask[i] - self.bid[i]
        self.ask[i] = round(self.bid[near] - self.brk, 2)
        self.bid[i] = round(max(self.ask[i] - spread, 0.01), 2)
        self.touched[i] = True
        return self._label(AnomalyKind.CALENDAR, i)

    # -- partners ------------------------------------------------------------------
    def _quoted_partner(self, i: int) -> int | None:
        """The other right at i's expiry and strike, if it has a bid."""
        j = self._partner(i)
        return j if j is not None and self.bid[j] > 0 else None

    def _wings(self, i: int) -> tuple[int, int] | None:
        a, c = self._neighbour(i, -1), self._neighbour(i, +1)
        return (a, c) if a is not None and c is not None else None

    def _earlier_quoted(self, i: int) -> int | None:
        near = self._earlier(i)
        return near if near is not None and self.bid[near] >= 1.0 else None

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


__all__ = ["BREAK_USD", "MAGNITUDES", "InjectContext", "InjectedAnomaly"]
