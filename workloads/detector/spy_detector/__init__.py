"""spy_detector: the detector workload (DESIGN §5).

Reads an SPY option chain from one market-data source (IBKR live, replay of recorded
snapshots, or the synthetic generator), runs the pure analytics of ``spy_analytics``
on each snapshot, and publishes anomalies, market state, GEX and flow to the backend.

Entry points: ``python -m spy_detector run`` (the service, started by the operator's
StatefulSet) and ``python -m spy_detector scan FILE`` (offline check of a recorded
chain). Layers: ``service`` wires ``sources`` -> ``analysis`` -> ``publisher``;
``sharding``, ``pacing`` and ``models`` are pure.
"""

from spy_detector.models import ChainSnapshot, OptionQuote
from spy_detector.sharding import ShardSpec, select_expiries

__all__ = ["ChainSnapshot", "OptionQuote", "ShardSpec", "select_expiries"]
