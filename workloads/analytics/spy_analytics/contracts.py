"""`ContractIndex`: everything that depends only on which contracts a chain lists.

Who calls this: `spy_analytics.frame` (expiry groups, times to expiry, sort orders),
`spy_analytics.pipeline` (contract keys for the baselines and volume increments) and
`spy_analytics.quality` (duplicate screen). A live chain lists the same contracts
snapshot after snapshot, so the index is cached: the last `_CACHE_SIZE` contract sets,
each verified by array equality (three passes over the contract columns) before it is
reused. A new contract set costs the sorts once; quotes never enter the index.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .chain import ChainSnapshot, contract_keys
from .exchange_clock import expiry_close_epoch

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

_CACHE_SIZE = 8
_cache: list[ContractIndex] = []
_lock = threading.Lock()


@dataclass(frozen=True, eq=False)
class ContractIndex:
    """Per-row and per-expiry-group arrays of one contract set (row order of the
    snapshot). Sort orders cover every row; restricted to a subset of rows (a stable
    filter) they equal a stable sort of that subset."""

    expiry: NDArray[np.datetime64]
    strike: FloatArray
    is_call: NDArray[np.bool_]
    #: `chain.contract_keys` of every row, and their stable sort order
    keys: NDArray[np.int64]
    key_order: IntArray
    #: expiry group of each row; the groups' dates, as YYYY-MM-DD, and 16:00 New York
    #: close (epoch seconds)
    group: IntArray
    group_expiry: list[str]
    group_close: FloatArray
    #: YYYY-MM-DD of each row's expiry
    expiry_str: NDArray[np.str_]
    #: rows sorted by (expiry, right, strike), (expiry, strike, right), (right, strike,
    #: expiry)
    by_strike: IntArray
    by_pair: IntArray
    by_maturity: IntArray
    #: what was last derived from this contract set, per use (`search_keys`,
    #: `adjacency.adjacency`), reused while asked about the same arrays
    memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @functools.cached_property
    def first_row(self) -> IntArray:
        """For each row, the first row (in key order) that holds its key: what looking
        a row's key up in a snapshot of this same contract set finds."""
        sorted_keys = self.keys[self.key_order]
        j = np.minimum(np.searchsorted(sorted_keys, self.keys), max(sorted_keys.size - 1, 0))
        out: IntArray = self.key_order[j]
        return out

    @functools.cached_property
    def strike_groups(self) -> tuple[FloatArray, IntArray]:
        """The distinct strikes (ascending) and each row's place among them."""
        uniq, rank = np.unique(self.strike, return_inverse=True)
        return uniq, rank.reshape(-1)

    @functools.cached_property
    def pair_groups(self) -> tuple[NDArray[np.int64], IntArray]:
        """The distinct keys ``group * 10**9 + round(strike * 1000)`` (one per expiry
        and strike: a call and its put share it) and each row's place among them."""
        with np.errstate(invalid="ignore"):  # NaN strikes: never usable
            millis = np.rint(self.strike * 1000).astype(np.int64)
        uniq, rank = np.unique(self.group.astype(np.int64) * 10**9 + millis, return_inverse=True)
        return uniq, rank.reshape(-1)

    def matches(self, snap: ChainSnapshot) -> bool:
        return (
            self.strike.shape == snap.strike.shape
            and np.array_equal(self.strike, snap.strike, equal_nan=True)
            and np.array_equal(self.is_call, snap.is_call)
            and np.array_equal(self.expiry, snap.expiry)
        )


def contract_index(snap: ChainSnapshot) -> ContractIndex:
    """The (cached) index of ``snap``'s contract set."""
    with _lock:
        for i, entry in enumerate(_cache):
            if entry.matches(snap):
                _cache.insert(0, _cache.pop(i))
                return entry
    entry = build_index(snap)
    with _lock:
        _cache.insert(0, entry)
        del _cache[_CACHE_SIZE:]
    return entry


def build_index(snap: ChainSnapshot) -> ContractIndex:
    expiry = snap.expiry.copy()
    strike = snap.strike.copy()
    call = snap.is_call.copy()
    n = strike.shape[0]
    days = expiry.astype("datetime64[D]")
    uniq, group = np.unique(days, return_inverse=True)
    group = group.astype(np.intp).reshape(n)
    names = [str(d) for d in uniq]
    keys = contract_keys(expiry, strike, call)
    g = group.astype(np.int64)
    with np.errstate(invalid="ignore"):
        # < 2**32 for any listed strike; unusable rows (NaN strikes) sort anywhere
        k = np.rint(np.nan_to_num(strike) * 1000.0).astype(np.int64)
    c = call.astype(np.int64)
    return ContractIndex(
        expiry=expiry,
        strike=strike,
        is_call=call,
        keys=keys,
        key_order=np.argsort(keys, kind="stable"),
        group=group,
        group_expiry=names,
        group_close=expiry_close_epoch(uniq),
        expiry_str=np.array(names, dtype=str)[group] if n else np.array([], dtype=str),
        by_strike=np.argsort((g * 2 + c) * 2**33 + k, kind="stable"),
        by_pair=np.argsort((g * 2**33 + k) * 2 + c, kind="stable"),
        by_maturity=np.argsort((c * 2**33 + k) * 2**12 + g, kind="stable"),
    )


def restrict(order: IntArray, rows: NDArray[np.bool_]) -> IntArray:
    """The entries of ``order`` whose row is in the mask ``rows``, in order."""
    out: IntArray = order[rows[order]]
    return out


def search_keys(
    haystack: NDArray[np.int64], needles: NDArray[np.int64], index: ContractIndex, use: str
) -> tuple[IntArray, BoolArray]:
    """``pos = min(searchsorted(haystack, needles), len - 1)`` (``haystack`` sorted, not
    empty) and whether ``haystack[pos] == needles``. The answer is kept on ``index``
    under ``use`` and reused while both arrays hold the same keys, checked by equality
    (two passes instead of a binary search per key)."""
    last = index.memo.get(use)
    if last is not None and np.array_equal(last[0], haystack) and np.array_equal(last[1], needles):
        return last[2], last[3]
    pos = np.minimum(np.searchsorted(haystack, needles), haystack.shape[0] - 1)
    found = haystack[pos] == needles
    pos.setflags(write=False)  # shared with later calls: read-only
    found.setflags(write=False)
    index.memo[use] = (haystack, needles, pos, found)
    return pos, found
