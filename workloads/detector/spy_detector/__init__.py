"""spy_detector: the detector workload (DESIGN §5).

Reads an SPY option chain from one market-data source (IBKR live, replay of recorded
snapshots, or the synthetic generator), runs ``spy_analytics.analyze`` on each
snapshot, and publishes anomalies, market state, GEX and flow to the backend.

Entry points: ``python -m spy_detector run`` (the service, started by the operator's
StatefulSet) and ``python -m spy_detector scan FILE`` (offline check of a recorded
chain). Layers: ``service`` wires ``sources`` -> ``analysis`` -> ``publisher``;
``sharding`` and ``backoff`` are pure; ``settings`` is the only reader of the
environment. Snapshots are ``spy_analytics.ChainSnapshot`` throughout.

Nothing is imported here, so ``python -m spy_detector --help`` answers at once.
"""
