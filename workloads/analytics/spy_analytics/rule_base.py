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

from .adjacency import Adjacency
from .config import (
    SeverityBands,
)
from .frame import Frame
from .types import AnomalyKind, Severity

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

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
    return _median_over(values, _neighbours(f.adjacent, rows, m), rows.size)


def _usable_neighbour_median(f: Frame, values: FloatArray, m: int) -> tuple[IntArray, FloatArray]:
    """`_neighbour_median` of every usable row: (the rows, their medians). Where each
    usable row's neighbours are depends only on the frame's `Adjacency`, so it is
    kept there per ``m`` (reused while the same rows are usable)."""
    adj = f.adjacent
    rows = np.flatnonzero(f.usable)
    if not np.array_equal(f.usable, adj.usable):  # a frame with a narrowed mask
        return rows, _neighbour_median(f, values, rows, m)
    name = f"neighbours/{m}"
    if name not in adj.derived:
        adj.derived[name] = _neighbours(adj, rows, m)
    return rows, _median_over(values, adj.derived[name], rows.size)


def _neighbours(adj: Adjacency, rows: IntArray, m: int) -> list[tuple[IntArray, BoolArray]]:
    """Per neighbour (1 .. m strikes below and above): each row's neighbour row
    (clipped into range) and whether it is one (usable, same expiry and right)."""
    order, key = adj.by_strike, adj.strike_side
    p = adj.strike_pos[rows]
    if order.size == 0:
        return []
    usable = p >= 0
    own = np.take(key, p, mode="clip")
    out = []
    for off in range(1, m + 1):
        for sign in (-1, 1):
            src = p + sign * off
            # 0 <= src < size in one comparison: a negative intp is huge as uintp
            same = usable & (src.view(np.uintp) < order.size)
            same &= np.take(key, src, mode="clip") == own
            out.append((np.take(order, src, mode="clip"), same))
    return out


def _median_over(
    values: FloatArray, neighbours: list[tuple[IntArray, BoolArray]], n: int
) -> FloatArray:
    cols = [np.where(same, values[src], np.nan) for src, same in neighbours]
    return _row_median(cols, n)


def _row_median(cols: list[FloatArray], n: int) -> FloatArray:
    """Per row, the median of the finite values among ``cols`` (NaN: none), exactly
    as sorting each row (NaN last) and averaging its middle finite entries would give.

    The row sort is an odd-even transposition network of elementwise min/max on the
    columns (a handful of vectorised passes, in place, instead of one small sort per
    row), with NaN taken as +inf so it sorts last; only entries below the finite count
    are read, and they equal the sorted row's."""
    if not cols:
        return np.full(n, np.nan)
    width = len(cols)
    count = np.zeros(n, dtype=np.int16)  # finite entries per row
    ranked = []
    for col in cols:
        count += np.isfinite(col).view(np.int8)
        ranked.append(np.fmin(col, np.inf))  # NaN -> +inf, every other value kept
    scratch = np.empty(n)
    for step in range(width):
        for i in range(step % 2, width - 1, 2):
            np.minimum(ranked[i], ranked[i + 1], out=scratch)
            np.maximum(ranked[i], ranked[i + 1], out=ranked[i + 1])
            ranked[i], scratch = scratch, ranked[i]
    # the middle entries: (count - 1) // 2 and count // 2 (0 for an empty row)
    lo_at = np.maximum((count - 1) // 2, 0)
    hi_at = count // 2
    lo, hi = ranked[0].copy(), ranked[0].copy()
    for k in range(1, width // 2 + 1):
        np.copyto(lo, ranked[k], where=lo_at == k)
        np.copyto(hi, ranked[k], where=hi_at == k)
    out: FloatArray = np.where(count > 0, 0.5 * (lo + hi), np.nan)
    return out
