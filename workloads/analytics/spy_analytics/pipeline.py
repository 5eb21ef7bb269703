"""`analyze`: the whole analytics pipeline on one chain snapshot.

Who calls this: the detector service (every snapshot of every source), the ``scan``
CLI, tests and benchmarks. Pure: no I/O, never raises on bad market data (bad quotes
are counted in `AnalysisResult.data_quality`).

Steps: data-quality screen -> IV of out-of-the-money mids -> smile fits -> fitted-IV
model prices and gamma (`frame.build_frame`) -> every enabled rule (`rules`) ->
GEX and flow (`structure`) -> baselines updated for the next call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import rules
from .baseline import BaselineState, Priors, priors, updated
from .chain import ChainSnapshot
from .config import DEFAULT_CONFIG, AnalyzerConfig
from .contracts import ContractIndex, contract_index
from .curves import smile_curves
from .frame import Frame, build_frame
from .shards import owned_findings
from .structure import gamma_exposure, premium_flow
from .types import (
    Anomaly,
    Contract,
    DataQuality,
    GammaExposure,
    MarketState,
    PremiumFlow,
    anomaly_id,
)

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class AnalysisResult:
    """Everything one snapshot produced; `to_wire` gives the ingest body lists."""

    ts: datetime
    symbol: str
    spot: float
    anomalies: tuple[Anomaly, ...]
    market: MarketState
    gex: GammaExposure
    flow: PremiumFlow
    data_quality: DataQuality
    #: Baselines updated with this snapshot: pass to the next `analyze` call.
    baseline: BaselineState = field(default_factory=BaselineState.empty)

    def to_wire(self) -> dict[str, list[dict[str, Any]]]:
        """``{"anomalies": [...], "market": [...], "gex": [...], "flow": [...]}`` as in
        docs/wire-format.md (plain JSON types)."""
        if not (math.isfinite(self.spot) and self.spot > 0.0):
            # nothing was analysed (bad spot): no market/GEX/flow record to publish
            return {"anomalies": [], "market": [], "gex": [], "flow": []}
        return {
            "anomalies": [a.to_wire() for a in self.anomalies],
            "market": [self.market.to_wire()],
            "gex": [self.gex.to_wire()],
            "flow": [self.flow.to_wire()],
        }


def analyze(
    snapshot: ChainSnapshot,
    previous: ChainSnapshot | None = None,
    baseline: BaselineState | None = None,
    config: AnalyzerConfig = DEFAULT_CONFIG,
) -> AnalysisResult:
    """Run IV, greeks, smile fits, every anomaly rule, GEX and flow on ``snapshot``.

    ``previous`` (the prior snapshot of the same chain) gives volume increments for
    flow and volume_z for contracts ``baseline`` has not seen; ``baseline`` is the state
    returned by the previous call (``None`` starts empty). Never raises on bad market
    data: unusable quotes are skipped and counted by reason in ``data_quality``.
    """
    # garbage quotes are screened out by mask; floating-point warnings raised while
    # computing on them (before the mask applies) are expected, not news
    with np.errstate(all="ignore"):
        return _analyze(snapshot, previous, baseline, config)


def _analyze(
    snapshot: ChainSnapshot,
    previous: ChainSnapshot | None,
    baseline: BaselineState | None,
    config: AnalyzerConfig,
) -> AnalysisResult:
    state = baseline if baseline is not None else BaselineState.empty()
    index = contract_index(snapshot)
    f = build_frame(snapshot, config, previous.spot if previous is not None else None, index)
    pos, known = state.lookup(index.keys, index)
    increment = _increments(snapshot, index, state, pos, known, previous)
    if previous is not None and (
        (snapshot.ts - previous.ts).total_seconds() > config.structure.max_increment_gap_s
    ):
        increment = np.full(len(snapshot), np.nan)  # a gap: not one interval's volume
    prior = priors(state, pos, known, len(snapshot))
    findings = _findings(f, config, increment, prior)
    if snapshot.context_expiries:  # a shard: other shards report on context expiries
        findings, f_own = owned_findings(f, findings)
    else:
        f_own = f
    anomalies = _to_anomalies(f, findings)
    gex = _gamma_exposure(snapshot, f_own, config)
    flow = _premium_flow(snapshot, f_own, increment, config)
    new_state = updated(f, index, state, increment, prior, config)
    ts = snapshot.ts
    quality = DataQuality(dict(f.skipped))
    return AnalysisResult(
        ts=ts,
        symbol=snapshot.symbol,
        spot=snapshot.spot,
        anomalies=anomalies,
        market=MarketState(
            ts=ts,
            symbol=snapshot.symbol,
            spot=snapshot.spot,
            bad_quotes=quality.total,
            expiries=smile_curves(f),
        ),
        gex=gex,
        flow=flow,
        data_quality=quality,
        baseline=new_state,
    )


def _gamma_exposure(snapshot: ChainSnapshot, f: Frame, config: AnalyzerConfig) -> GammaExposure:
    strikes, gex, net, flip, curve = gamma_exposure(f, config.structure)
    return GammaExposure(
        ts=snapshot.ts,
        symbol=snapshot.symbol,
        spot=snapshot.spot,
        strikes=tuple(strikes),
        gex=tuple(gex),
        net_gex=net,
        flip=flip,
        flip_curve=tuple(curve.tolist()),
    )


def _premium_flow(
    snapshot: ChainSnapshot, f: Frame, increment: FloatArray, config: AnalyzerConfig
) -> PremiumFlow:
    call_prem, put_prem, call_signed, put_signed, pcr, call_vol, put_vol = premium_flow(
        f, increment, config.structure
    )
    return PremiumFlow(
        ts=snapshot.ts,
        symbol=snapshot.symbol,
        call_premium=call_prem,
        put_premium=put_prem,
        net_premium=call_signed - put_signed,
        put_call_volume_ratio=pcr,
        call_signed=call_signed,
        put_signed=put_signed,
        call_volume=call_vol,
        put_volume=put_vol,
    )


def _findings(
    f: Frame, config: AnalyzerConfig, increment: FloatArray, prior: Priors
) -> list[rules.Finding]:
    """Every rule's findings on the frame (disabled rules return none)."""
    findings: list[rules.Finding] = []
    findings += rules.iv_residual(f, config.iv_residual)
    findings += rules.vol_oi(f, config.vol_oi)
    findings += rules.volume_z(
        f, config.volume_z, increment, prior.inc_mean, prior.inc_var, prior.inc_n
    )
    findings += rules.parity(f, config.bounds)
    findings += rules.early_exercise(f, config.bounds)
    findings += rules.call_spread(f, config.static_arb)
    findings += rules.butterfly(f, config.static_arb)
    findings += rules.calendar(f, config.static_arb)
    findings += rules.spread_blowout(f, config.spread_blowout, prior.spread_mean, prior.spread_n)
    return findings


def _increments(
    snap: ChainSnapshot,
    index: ContractIndex,
    state: BaselineState,
    pos: NDArray[np.intp],
    known: NDArray[np.bool_],
    previous: ChainSnapshot | None,
) -> FloatArray:
    """Volume traded since the previous snapshot (NaN when unknown or the session reset)."""
    inc = np.full(len(snap), np.nan)
    if len(state):
        inc = np.where(known, snap.volume - state.last_volume[pos], np.nan)
    if previous is not None and len(previous):
        inc = np.where(np.isfinite(inc), inc, _since_previous(snap, index, previous))
    with np.errstate(invalid="ignore"):
        return np.where(inc >= 0.0, inc, np.nan)


def _since_previous(
    snap: ChainSnapshot, index: ContractIndex, previous: ChainSnapshot
) -> FloatArray:
    """Volume since ``previous`` per contract, matched by key (NaN: not in it)."""
    pindex = contract_index(previous)
    if pindex is index:  # the same contract set: every key is there
        same: FloatArray = snap.volume - previous.volume[index.first_row]
        return same
    order = pindex.key_order
    sk = pindex.keys[order]
    j = np.minimum(np.searchsorted(sk, index.keys), sk.shape[0] - 1)
    found = sk[j] == index.keys
    out: FloatArray = np.where(found, snap.volume - previous.volume[order[j]], np.nan)
    return out


def _to_anomalies(f: Frame, findings: list[rules.Finding]) -> tuple[Anomaly, ...]:
    best: dict[tuple[str, int], rules.Finding] = {}
    for item in findings:
        key = (item.kind.value, item.row)
        if key not in best or item.score > best[key].score:
            best[key] = item
    s = f.snap
    out = []
    for item in sorted(best.values(), key=lambda x: (x.kind.value, x.row)):
        i = item.row
        contract = Contract(
            expiry=str(f.expiry_str[i]),
            strike=float(s.strike[i]),
            right="C" if s.is_call[i] else "P",
        )
        out.append(
            Anomaly(
                id=anomaly_id(
                    item.kind.value,
                    s.symbol,
                    contract.expiry,
                    contract.strike,
                    contract.right,
                    s.ts,
                ),
                ts=s.ts,
                symbol=s.symbol,
                kind=item.kind,
                severity=item.severity,
                score=round(item.score, 4),
                reason=item.reason,
                contract=contract,
                iv=item.iv,
                fitted_iv=item.fitted_iv,
                k=item.k,
            )
        )
    return tuple(out)
