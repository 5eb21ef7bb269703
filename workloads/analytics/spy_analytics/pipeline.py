"""`analyze`: the whole analytics pipeline on one chain snapshot.

Who calls this: the detector service (every snapshot of every source), the ``scan``
CLI, tests and benchmarks. Pure: no I/O, never raises on bad market data (bad quotes
are counted in `AnalysisResult.data_quality`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .baseline import BaselineState
from .chain import ChainSnapshot
from .config import DEFAULT_CONFIG, AnalyzerConfig
from .types import Anomaly, DataQuality, GammaExposure, MarketState, PremiumFlow


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
    flow and volume_z when ``baseline`` has none; ``baseline`` is the state returned by
    the previous call (``None`` starts empty). Never raises on bad market data.
    """
    raise NotImplementedError
