"""`Frame`: every per-contract array the rules need, computed once per snapshot.

Who calls this: `spy_analytics.pipeline` builds it; `spy_analytics.rules` and
`spy_analytics.structure` read it. Building it runs the data-quality screen, each
expiry's forward (dividends, then put-call parity; docs/analytics.md "Dividends and the
forward"), the spot each quote was priced off, implied volatility of out-of-the-money
mids, the smile fits, fitted-IV model prices with the early-exercise premium, greeks,
and the IV of in-the-money mids less that premium.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from .adjacency import Adjacency, adjacency
from .chain import SECONDS_PER_YEAR, ChainSnapshot
from .config import AnalyzerConfig, BoundsConfig
from .contracts import ContractIndex, contract_index
from .dividends import pv_dividends
from .forward import implied_forward
from .model import model_at_fit
from .quality import screen
from .quote_iv import QuoteIVInputs, quote_ivs
from .smile import SmileFit, fit_smiles, scaled_moneyness

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]

#: Seconds in a trading year (252 sessions of 6.5 hours): spot moves happen in them.
_TRADING_YEAR_S = 252 * 6.5 * 3600.0


@dataclass(frozen=True, eq=False)
class Frame:
    """Per-contract arrays (length n) and per-expiry-group arrays (length groups)."""

    snap: ChainSnapshot
    usable: BoolArray
    skipped: dict[str, int]
    t: FloatArray
    #: forward of each contract's expiry as of the spot its quote was priced off
    fwd: FloatArray
    #: forward of each contract's expiry as of the snapshot's spot
    fwd_now: FloatArray
    k: FloatArray  # ln(K/F)
    z: FloatArray  # k / (0.2 sqrt t)
    group: IntArray  # expiry group of each contract
    group_expiry: list[str]  # YYYY-MM-DD per group
    group_t: FloatArray
    mid: FloatArray
    half: FloatArray  # half spread
    otm: BoolArray  # usable and out of the money (call K >= F, put K < F)
    iv: FloatArray  # mid IV (ITM: of the mid less the early-exercise premium), else NaN
    iv_sigma: FloatArray  # IV uncertainty used as the residual scale
    fit_iv: FloatArray  # fitted smile IV at every contract (NaN if no fit)
    model: FloatArray  # American model price at fit_iv (European + premium, >= intrinsic)
    gamma: FloatArray  # BSM gamma at fit_iv (0 where unavailable)
    smile: SmileFit
    expiry_str: NDArray[np.str_]
    #: effective continuous carry q = r - ln(F/S)/T of each contract's expiry
    carry: FloatArray
    #: spot the quote was priced off (the snapshot's spot history at the quote time)
    spot_q: FloatArray
    #: USD the quote's spot may be off by (no history: a move over the quote's age)
    spot_unc: FloatArray
    #: estimated early-exercise premium at fit_iv (0 where not estimated)
    eep: FloatArray
    #: |dV/dS| at fit_iv (1 where unknown), scales spot uncertainty into price
    abs_delta: FloatArray
    #: price change that brings each quote from its own spot to the snapshot's:
    #: delta (S - spot_q), 0 where unknown (static-arbitrage rules compare quotes)
    sync: FloatArray
    #: bid and ask moved by ``sync`` to the snapshot's spot (quotes a second apart on a
    #: moving SPY compared as of one spot)
    bid_sync: FloatArray
    ask_sync: FloatArray
    #: what a quote's spot is not known to within, in USD: abs_delta x spot_unc
    sync_unc: FloatArray
    #: usable rows next to each other: sort orders, put-call pairs, verticals,
    #: butterflies, calendars (`spy_analytics.adjacency`)
    adjacent: Adjacency
    #: the snapshot's contract set (expiry groups, keys, sort orders, strike groups)
    index: ContractIndex


def build_frame(
    snap: ChainSnapshot,
    cfg: AnalyzerConfig,
    prev_spot: float | None = None,
    index: ContractIndex | None = None,
) -> Frame:
    """All per-contract arrays of ``snap``; ``prev_spot`` (the previous snapshot's
    spot) bounds how far the spot moved under quotes when the snapshot has no spot
    history (`_spot_uncertainty`); ``index``: the snapshot's `ContractIndex` when the
    caller has it."""
    # ~65 lines: half of them is the Frame's keyword list; the steps are helpers
    n = len(snap)
    index = index if index is not None else contract_index(snap)
    group = index.group
    group_t = (index.group_close - snap.ts_epoch) / SECONDS_PER_YEAR
    t = group_t[group]
    usable, skipped = screen(snap, t, cfg.quality, index)
    strike, call = snap.strike, snap.is_call
    adjacent = adjacency(index, usable)
    with np.errstate(all="ignore"):
        mid = 0.5 * (snap.bid + snap.ask)
        half = 0.5 * (snap.ask - snap.bid)
        spot_q = snap.spot_at(snap.quote_ts)
        spot_unc = _spot_uncertainty(snap, cfg.bounds, prev_spot)
        fw = _forwards(snap, cfg, group_t, group, adjacent, mid, spot_q)
        k = np.log(strike / fw.fwd)
        z = scaled_moneyness(k, np.where(t > 0.0, t, np.nan))
    otm = usable & np.where(call, strike >= fw.fwd, strike < fw.fwd)

    iv = np.full(n, np.nan)
    sigma = np.full(n, np.nan)
    zeros = np.zeros(n)
    ivs = QuoteIVInputs(mid, half, spot_unc, fw.fwd, strike, t, snap.rate, call, cfg)
    quote_ivs(ivs, otm, zeros, zeros, iv, sigma)
    smile = fit_smiles(group, group_t.shape[0], z, iv, sigma)
    m = model_at_fit(snap, np.flatnonzero(usable), group, z, t, fw, spot_q, smile)
    if cfg.iv_residual.test_itm:
        itm = usable & ~otm & np.isfinite(m.fit_iv)
        quote_ivs(ivs, itm, m.eep, m.abs_delta, iv, sigma, vega_vol=m.fit_iv)
    return Frame(
        snap=snap,
        usable=usable,
        skipped=skipped,
        t=t,
        fwd=fw.fwd,
        fwd_now=fw.fwd_now,
        k=k,
        z=z,
        group=group,
        group_expiry=index.group_expiry,
        group_t=group_t,
        mid=mid,
        half=half,
        otm=otm,
        iv=iv,
        iv_sigma=sigma,
        smile=smile,
        expiry_str=index.expiry_str,
        carry=fw.carry,
        spot_q=spot_q,
        spot_unc=spot_unc,
        **m._asdict(),  # fit_iv, model, gamma, eep, abs_delta, sync
        bid_sync=snap.bid + m.sync,
        ask_sync=snap.ask + m.sync,
        sync_unc=m.abs_delta * spot_unc,
        adjacent=adjacent,
        index=index,
    )


class _Forwards(NamedTuple):
    #: forward of each contract's expiry as of the spot its quote was priced off
    fwd: FloatArray
    #: forward of each contract's expiry as of the snapshot's spot
    fwd_now: FloatArray
    #: effective continuous carry q = r - ln(F/S)/T
    carry: FloatArray
    #: epoch seconds of each contract's expiry (16:00 New York)
    expiry_epoch: FloatArray


def _forwards(
    snap: ChainSnapshot,
    cfg: AnalyzerConfig,
    group_t: FloatArray,
    group: IntArray,
    adjacent: Adjacency,
    mid: FloatArray,
    spot_q: FloatArray,
) -> _Forwards:
    """Each expiry's model forward ``(S - PV(D)) e^{(r - q) T}`` (computed once per
    expiry), replaced by the parity-implied one when configured, and shifted to the
    spot each quote was priced off."""
    spot, r = snap.spot, snap.rate
    t_safe_g = np.where(group_t > 0.0, group_t, np.nan)
    epoch_g = snap.ts_epoch + group_t * SECONDS_PER_YEAR
    pvd_g = pv_dividends(snap.dividends, snap.ts_epoch, epoch_g, r)
    grow_g = np.exp((r - snap.div_yield) * t_safe_g)
    t_safe, expiry_epoch, grow = t_safe_g[group], epoch_g[group], grow_g[group]
    fwd_ref = ((spot - pvd_g) * grow_g)[group]
    # a quote priced off another spot sees a forward moved one-for-one (grown)
    shift = (spot_q - spot) * grow
    if cfg.forward.implied_from_parity:
        pairs = (adjacent.pair_put, adjacent.pair_call)
        fwd_ref = implied_forward(
            snap, mid, t_safe, fwd_ref, shift, group, pairs, cfg.forward, spot_q, expiry_epoch
        )
    carry = r - np.log(fwd_ref / spot) / t_safe
    return _Forwards(fwd_ref + shift, fwd_ref, carry, expiry_epoch)


def _spot_uncertainty(
    snap: ChainSnapshot, cfg: BoundsConfig, prev_spot: float | None = None
) -> FloatArray:
    """How far (USD) the spot a quote was priced off may be from `spot_at` its time.

    With a spot history that covers the quote's time: 0 (the spot is known). Without
    one, ``sigmas`` standard deviations of the spot move over the quote's age at
    ``spot_vol`` (trading-time years of 252 x 6.5 h), and at least the move since the
    previous snapshot (a fast market is not a 3-sigma event for long); a quote of
    unknown age: 0 (the snapshot promises nothing more)."""
    with np.errstate(invalid="ignore"):
        age = np.maximum(snap.ts_epoch - snap.quote_ts, 0.0)
        covered = (
            (snap.quote_ts >= snap.spot_ts[0]) if snap.spot_ts.size else np.zeros(len(snap), bool)
        )
        move = cfg.spot_move_sigmas * cfg.spot_vol * snap.spot * np.sqrt(age / _TRADING_YEAR_S)
        if prev_spot is not None and np.isfinite(prev_spot):
            move = np.maximum(move, abs(snap.spot - prev_spot))
    out: FloatArray = np.where(covered | ~np.isfinite(age), 0.0, move)
    return out


def cdf(x: FloatArray) -> FloatArray:
    out: FloatArray = ndtr(x)
    return out
