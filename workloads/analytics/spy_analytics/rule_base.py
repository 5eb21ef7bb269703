"""What every anomaly rule shares: the `Finding` record, severity bands, the text of a
contract and the neighbour median along the smile.

Who calls this: `spy_analytics.rules` (per-contract rules) and
`spy_analytics.rules_bounds` (price bounds and static arbitrage).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from .config import (
    SeverityBands,
)
from .frame import Frame
from .types import AnomalyKind, Severity

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

_SEVERITIES = (Severity.LOW, Severity.MEDIUM, Severity.HIGH)


class Finding(NamedTuple):
    """One rule hit on one contract (row index into the snapshot)."""

    row: int
    kind: AnomalyKind
    severity: Severity
    score: float
    reason: str
    iv: float | None = None
    fitted_iv: float | None = None
    k: float | None = None


def severity_of(score: float, bands: SeverityBands) -> Severity | None:
    """LOW/MEDIUM/HIGH by the bands, None below ``bands.low``."""
    if not score >= bands.low:
        return None
    if score >= bands.high:
        return Severity.HIGH
    return Severity.MEDIUM if score >= bands.medium else Severity.LOW


def _describe(f: Frame, i: int) -> str:
    right = "C" if f.snap.is_call[i] else "P"
    return f"{f.expiry_str[i]} {f.snap.strike[i]:g}{right}"


def _opt(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _finding(
    f: Frame,
    i: int,
    kind: AnomalyKind,
    score: float,
    bands: SeverityBands,
    reason: str,
    with_iv: bool = True,
) -> Finding | None:
    """The Finding for contract ``i`` if ``score`` reaches a severity band, else None.
    With ``with_iv`` it carries the contract's IV, fitted IV and log-moneyness."""
    sev = severity_of(score, bands)
    if sev is None:
        return None
    if not with_iv:
        return Finding(i, kind, sev, score, reason)
    return Finding(
        i, kind, sev, score, reason,
        _opt(float(f.iv[i])), _opt(float(f.fit_iv[i])), _opt(float(f.k[i])),
    )  # fmt: skip


# --- volatility ------------------------------------------------------------------


def _neighbour_median(f: Frame, values: FloatArray, rows: IntArray, m: int) -> FloatArray:
    """Median of ``values`` over the ``m`` usable strikes on each side of each row
    (same expiry and right; NaN when there is none), for the given rows only: the
    cost is in ``rows`` (the frame holds each row's place in ``by_strike``)."""
    order, key = f.by_strike, f.strike_side
    p = f.strike_pos[rows]
    last = max(order.size - 1, 0)
    own = key[np.clip(p, 0, last)] if order.size else p
    stack = np.full((rows.size, 2 * m), np.nan)
    col = 0
    for off in range(1, m + 1):
        for sign in (-1, 1):
            src = p + sign * off
            src_c = np.clip(src, 0, last)
            if order.size:
                same = (p >= 0) & (src >= 0) & (src < order.size) & (key[src_c] == own)
                np.copyto(stack[:, col], values[order[src_c]], where=same)
            col += 1
    stack.sort(axis=1)
    count = np.sum(np.isfinite(stack), axis=1)
    lo = np.take_along_axis(stack, np.maximum((count - 1) // 2, 0)[:, None], axis=1)[:, 0]
    hi = np.take_along_axis(stack, np.maximum(count // 2, 0)[:, None], axis=1)[:, 0]
    out: FloatArray = np.where(count > 0, 0.5 * (lo + hi), np.nan)
    return out
