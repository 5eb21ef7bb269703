"""Injected anomalies: documented magnitudes, ground-truth labels and the injectors.

Who calls this: `spy_analytics.synthetic.market` (``next_snapshot(inject=...)``);
bench/detection_quality.py reads `MAGNITUDES`. Each injector picks an eligible contract
away from earlier injections, re-quotes it so the anomaly has exactly the documented
size, and returns its `InjectedAnomaly` label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..bsm import bsm_price, d1_sd
from ..types import AnomalyKind
from .pricing import quote_on_tick

if TYPE_CHECKING:
    from .market import SyntheticMarket
    from .tape import TapeMarket

FloatArray = NDArray[np.float64]

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
            for _ in range(50):
                i = self._pick((self.dte >= 2) & (self.model >= 0.5))
                if i is None:
                    return None
                # raise the higher-strike call above the lower, or the lower-strike put
                # above the higher: a contract at the end of its strip has no partner
                other = self._neighbour(i, -1 if m.is_call[i] else +1)
                if other is not None:
                    break
                self.protected[i] = True
            else:
                return None
            shift = self.ask[other] + self.brk - self.bid[i]
            self.bid[i] = round(self.bid[i] + shift + 0.005, 2)
            self.ask[i] = round(self.ask[i] + shift + 0.005, 2)
            self.touched[i] = True
            return self._label(kind, i)
        if kind is AnomalyKind.BUTTERFLY:
            for _ in range(50):
                # within 180 days: further out $0.40 is ~0.2 vol points, inside the smile
                # fit's noise, and the break is blamed on a wing as often as the body
                i = self._pick((self.dte >= 2) & (self.dte <= 180) & (self.model >= 0.5))
                if i is None:
                    return None
                a, c = self._neighbour(i, -1), self._neighbour(i, +1)
                if a is not None and c is not None:
                    break
                self.protected[i] = True
            else:
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
