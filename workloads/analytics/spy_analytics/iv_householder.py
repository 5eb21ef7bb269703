"""The Householder iteration of the implied-volatility solver (`spy_analytics.iv`).

Who calls this: `iv._solve_normalised`: one `householder_step` from the table guess
for every option, `refine` (bracketed, at most `_MAX_EXTRA_STEPS` steps) for the few
whose step was too large. The objective and its derivatives are in `iv`'s module
docstring (step 3): ``f(s) = ln b_otm(s) - ln beta`` (low half of the price range) or
``ln(b_max - b_otm(s)) - ln(b_max - beta)`` (high half), through ``erfcx``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.special import erfcx

FloatArray = NDArray[np.float64]

_INV_SQRT2 = float(1.0 / np.sqrt(2.0))
_SQRT_2_OVER_PI = float(np.sqrt(2.0 / np.pi))
_LN2 = float(np.log(2.0))
_MAX_EXTRA_STEPS = 50
_REL_TOL = 1e-12


def _objective(
    s: FloatArray, a: FloatArray, sgn: FloatArray, target: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Objective ``f``, its first log-derivative factor ``f1`` (see module doc), and
    ``p = a/s``, ``t = s/2`` and the vega exponent ``(p^2 + t^2)/2`` for the step."""
    p = np.divide(a, s)
    t = np.multiply(s, 0.5)
    arg = np.add(p, t)
    arg *= _INV_SQRT2
    big = erfcx(arg, out=arg)
    small = np.subtract(p, t)
    small *= sgn
    small *= _INV_SQRT2
    erfcx(small, out=small)
    big *= sgn
    g = np.subtract(small, big, out=small)  # D = small - big (low) ; G = small + big (high)
    exponent = np.multiply(p, p)
    exponent += t * t
    exponent *= 0.5
    f = np.log(g)
    f -= exponent
    f -= target
    f -= _LN2
    f1 = np.divide(_SQRT_2_OVER_PI, g, out=g)
    f1 *= sgn
    return f, f1, p, t, exponent


def householder_step(
    s: FloatArray, a: FloatArray, sgn: FloatArray, target: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Third-order Householder step in ``s`` and the vega exponent at ``s``.

    With ``u = f''/f' + f1 = a^2/s^3 - s/4`` (``= p^2/s - t/2``) and
    ``du = -3 a^2/s^4 - 1/4``: ``eta = f''/f' = u - f1``,
    ``gamma = f'''/f' = u^2 + du - 3 f1 u + 2 f1^2``, ``nu = -f/f'`` and
    ``step = nu (1 + eta nu / 2) / (1 + nu (eta + gamma nu / 6))``."""
    return _step_from(_objective(s, a, sgn, target), s)


def _step_from(
    objective: tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray], s: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """`householder_step` from the `_objective` at ``s`` (its arrays are reused as
    scratch)."""
    f, f1, p, t, exponent = objective
    pp_s = np.multiply(p, p)
    pp_s /= s  # a^2/s^3
    u = np.multiply(t, -0.5)
    u += pp_s
    du = np.divide(pp_s, s, out=pp_s)
    du *= -3.0
    du -= 0.25
    eta = np.subtract(u, f1, out=t)
    # gamma = u (u - 3 f1) + du + 2 f1^2
    gamma = np.multiply(f1, -3.0, out=p)
    gamma += u
    gamma *= u
    gamma += du
    f1sq = np.multiply(f1, f1, out=du)
    f1sq *= 2.0
    gamma += f1sq
    nu = np.divide(f, f1, out=f)
    np.negative(nu, out=nu)
    # denominator 1 + nu (eta + gamma nu / 6)
    den = np.multiply(gamma, nu, out=gamma)
    den *= 1.0 / 6.0
    den += eta
    den *= nu
    den += 1.0
    # numerator nu (1 + eta nu / 2)
    num = np.multiply(eta, nu, out=eta)
    num *= 0.5
    num += 1.0
    num *= nu
    num /= den
    return num, exponent


def refine(
    s: FloatArray, a: FloatArray, sgn: FloatArray, target: FloatArray
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Safeguarded Householder on the hard cases: keep a bracket, bisect (in ln s) when
    a step leaves it. The objective is increasing in s for the low branch and
    decreasing for the high branch, so ``sgn * f`` is increasing in both."""
    lo = np.zeros_like(s)
    hi = np.full_like(s, np.inf)
    done = np.zeros(s.shape, dtype=np.bool_)
    for _ in range(_MAX_EXTRA_STEPS):
        objective = _objective(s, a, sgn, target)
        inc = sgn * objective[0]
        lo = np.where(inc < 0.0, np.maximum(lo, s), lo)
        hi = np.where(inc > 0.0, np.minimum(hi, s), hi)
        step = _step_from(objective, s)[0]  # the objective at s, evaluated once
        s_new = s + step
        bad = ~np.isfinite(s_new) | (s_new <= lo) | (s_new >= hi)
        fallback = np.where(
            np.isinf(hi), 2.0 * np.maximum(s, lo), np.where(lo > 0.0, np.sqrt(lo * hi), 0.5 * hi)
        )
        # a step this small converged even if rounding puts s + step on the bracket's
        # end (s itself is that end when f(s) rounds to the wrong sign): keep s then
        conv = np.abs(step) <= _REL_TOL * s
        conv |= inc == 0.0
        s_next = np.where(done, s, np.where(bad, np.where(conv, s, fallback), s_new))
        done |= conv
        s = s_next
        if done.all():
            break
    return s, done & np.isfinite(s) & (s > 0.0)
