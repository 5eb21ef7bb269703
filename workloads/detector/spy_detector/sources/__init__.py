"""Market-data sources: each yields ``ChainSnapshot``s from ``snapshots()``.

``service.Detector`` consumes one source chosen by ``SPY_SOURCE``: ``ibkr`` (live TWS
API through ib_async), ``replay`` (recorded snapshot files) or ``synthetic``.
"""

from spy_detector.sources.base import MarketSource

__all__ = ["MarketSource"]
