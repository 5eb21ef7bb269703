"""Which usable rows sit next to each other on the chain: the orders the rules walk
and the put-call pairs, verticals, butterflies and calendars they compare.

Who calls this: `spy_analytics.frame` (once per snapshot); `rules_bounds` (parity and
the static-arbitrage rules) and `forward.implied_forward` (put-call pairs) read the
result from the frame. It depends only on the contract set (`ContractIndex`) and on
which quotes are usable, so the last answer is kept on the index and reused while the
same rows are usable (checked by equality, one pass over a bool mask): a live chain's
usable set rarely changes between snapshots.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from .contracts import ContractIndex, restrict

IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]


class Adjacency(NamedTuple):
    """Row numbers (read-only arrays) of the usable rows of one snapshot."""

    #: the usable mask these were built for
    usable: BoolArray
    #: usable rows sorted by (expiry, right, strike), (expiry, strike, right) and
    #: (right, strike, expiry), as `ContractIndex`'s orders restricted to them
    by_strike: IntArray
    by_pair: IntArray
    by_maturity: IntArray
    #: position of each row in ``by_strike`` (-1: not usable)
    strike_pos: IntArray
    #: expiry group * 2 + is_call of each ``by_strike`` entry (same side of a chain)
    strike_side: IntArray
    #: put-call pairs: put and call of one expiry and strike, adjacent in ``by_pair``
    pair_put: IntArray
    pair_call: IntArray
    #: verticals: strikes adjacent in ``by_strike``, same expiry and right
    vertical_lo: IntArray
    vertical_hi: IntArray
    #: butterflies: three strikes adjacent in ``by_strike``, same expiry and right
    fly_lo: IntArray
    fly_mid: IntArray
    fly_hi: IntArray
    #: calendars: expiries adjacent in ``by_maturity``, same strike and right
    calendar_near: IntArray
    calendar_far: IntArray
    #: what the rules derive from these rows alone, filled on first use (where each
    #: usable row's strike neighbours are: `rule_base._usable_neighbour_median`)
    derived: dict[str, Any]


def adjacency(index: ContractIndex, usable: BoolArray) -> Adjacency:
    """The `Adjacency` of ``usable`` rows of ``index``'s contract set (cached: the
    last answer per index, while ``usable`` is the same)."""
    last = index.memo.get("adjacency")
    if isinstance(last, Adjacency) and np.array_equal(last.usable, usable):
        return last
    built = _build(index, usable.copy())
    for arr in built[:-1]:
        arr.setflags(write=False)  # shared with later snapshots
    index.memo["adjacency"] = built
    return built


def _build(index: ContractIndex, usable: BoolArray) -> Adjacency:
    group, strike, call = index.group, index.strike, index.is_call
    by_strike, by_pair, by_maturity = (
        restrict(order, usable) for order in (index.by_strike, index.by_pair, index.by_maturity)
    )
    strike_pos = np.full(usable.shape[0], -1, dtype=np.intp)
    strike_pos[by_strike] = np.arange(by_strike.size)
    # each property gathered once along an order, neighbours compared by slicing
    side = (group[by_strike] * 2 + call[by_strike]).astype(np.intp)  # expiry and right
    vertical = side[:-1] == side[1:]
    fly = (side[:-2] == side[2:]) & (side[:-2] == side[1:-1])
    g, k, c = group[by_pair], strike[by_pair], call[by_pair]
    pair = (g[:-1] == g[1:]) & (k[:-1] == k[1:]) & ~c[:-1] & c[1:]
    k, c = strike[by_maturity], call[by_maturity]
    calendar = (k[:-1] == k[1:]) & (c[:-1] == c[1:])
    return Adjacency(
        usable=usable,
        by_strike=by_strike,
        by_pair=by_pair,
        by_maturity=by_maturity,
        strike_pos=strike_pos,
        strike_side=side,
        pair_put=by_pair[:-1][pair],
        pair_call=by_pair[1:][pair],
        vertical_lo=by_strike[:-1][vertical],
        vertical_hi=by_strike[1:][vertical],
        fly_lo=by_strike[:-2][fly],
        fly_mid=by_strike[1:-1][fly],
        fly_hi=by_strike[2:][fly],
        calendar_near=by_maturity[:-1][calendar],
        calendar_far=by_maturity[1:][calendar],
        derived={},
    )
