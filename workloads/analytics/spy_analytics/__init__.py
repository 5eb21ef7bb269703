"""spy_analytics: pure numpy/scipy analytics for SPY option chains.

No I/O (except the small, documented `snapshot_io` file helpers), no Kubernetes, no
web framework, so everything here is testable and benchmarkable alone.

Public API (stable; the detector service builds on it):

* `ChainSnapshot` – one snapshot of a chain, columnar numpy arrays
  (`ChainSnapshot.from_records`, `ChainSnapshot.from_arrays`).
* `analyze(snapshot, previous=None, baseline=None, config=DEFAULT_CONFIG)
  -> AnalysisResult` – the whole pipeline; ``result.to_wire()`` gives the
  docs/wire-format.md lists, ``result.baseline`` feeds the next call.
* `AnalyzerConfig` (frozen, documented defaults; ``with_overrides({"vol_oi.min_volume":
  1000})``).
* `implied_volatility(price, spot, strike, t, rate, div_yield, is_call)` and
  `implied_volatility_with_reason(...) -> (iv, IVReason codes)`.
* `bsm_price`, `bsm_greeks` – vectorised Black-Scholes-Merton.
* `read_snapshots`, `read_snapshot`, `write_snapshot` – JSONL snapshot files
  (schema in docs/analytics.md).
* `spy_analytics.synthetic` – seeded synthetic SPY market with labelled anomalies.
"""

from .baseline import BaselineState
from .bsm import Greeks, bsm_greeks, bsm_price
from .chain import ChainSnapshot
from .config import DEFAULT_CONFIG, AnalyzerConfig
from .iv import IVReason, implied_volatility, implied_volatility_with_reason
from .pipeline import AnalysisResult, analyze
from .snapshot_io import read_snapshot, read_snapshots, write_snapshot
from .types import (
    Anomaly,
    AnomalyKind,
    Contract,
    DataQuality,
    GammaExposure,
    MarketState,
    PremiumFlow,
    Severity,
    SmileCurve,
)

__all__ = [
    "DEFAULT_CONFIG",
    "AnalysisResult",
    "AnalyzerConfig",
    "Anomaly",
    "AnomalyKind",
    "BaselineState",
    "ChainSnapshot",
    "Contract",
    "DataQuality",
    "GammaExposure",
    "Greeks",
    "IVReason",
    "MarketState",
    "PremiumFlow",
    "Severity",
    "SmileCurve",
    "analyze",
    "bsm_greeks",
    "bsm_price",
    "implied_volatility",
    "implied_volatility_with_reason",
    "read_snapshot",
    "read_snapshots",
    "write_snapshot",
]
