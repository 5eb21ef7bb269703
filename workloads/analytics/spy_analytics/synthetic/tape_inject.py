"""`TapeInject`: anomalies injected into `TapeMarket` snapshots. The model-dependent
kinds (IV residual, put-call parity, the exercise bound) are re-defined against the
tape's own American prices and true dividend; the quote-only kinds are
`InjectContext`'s.

Who calls this: `spy_analytics.synthetic.tape` (``next_snapshot(inject=...)``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..chain import SECONDS_PER_YEAR
from ..dividends import pv_dividends
from ..types import AnomalyKind
from .injection import InjectContext, InjectedAnomaly

if TYPE_CHECKING:
    from .tape import TapeMarket


class TapeInject(InjectContext):
    """`InjectContext` with the model-dependent kinds (IV residual, parity, exercise
    bound) defined on the tape's own American prices and true dividend: these methods
    override the base's injectors of the same names; the quote-only kinds are shared."""

    m: TapeMarket

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
        picked = self._pick_with(itm, self._quoted_partner)
        if picked is None:
            return None
        i, j = picked
        escrowed, disc, _pvd = self._true_bounds(i)
        k = float(m.strike[i])
        call, put = (i, j) if m.is_call[i] else (j, i)
        if m.is_call[i]:
            shift = (self.spot - k * disc) + self.brk - (self.bid[call] - self.ask[put])
        else:
            shift = self.brk - ((escrowed - k) - (self.ask[call] - self.bid[put]))
        self._shift(i, shift)
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
        self._ask_below(i, max(float(intrinsic[i]), euro_lower, 0.0))
        return self._label(AnomalyKind.EARLY_EXERCISE, i)
