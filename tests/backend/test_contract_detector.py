"""Contract: what the detector's analytics post validates against the backend's models,
and both sides compute the same anomaly ids (docs/wire-format.md)."""

from __future__ import annotations

import json

from spy_backend.models import IngestBatch, anomaly_id
from spy_detector.analysis import ChainAnalyzer
from spy_detector.sources.synthetic import SyntheticSource

from .conftest import Backend


async def test_synthetic_detector_output_is_accepted_with_the_same_ids(backend: Backend) -> None:
    source = SyntheticSource(interval=0, count=2)
    analyzer = ChainAnalyzer()
    bodies = []
    async for snapshot in source.snapshots():
        bodies.append(json.loads(json.dumps(analyzer(snapshot).to_wire())))
        if len(bodies) == 2:
            break
    await source.close()
    for body in bodies:
        batch = IngestBatch.model_validate(body)
        assert batch.anomalies, "the synthetic feed injects anomalies"
        assert all(anomaly_id(a) == a.id for a in batch.anomalies)
        response = backend.ingest(body)
        assert response.status_code == 200, response.text
        assert response.json()["duplicate"] == 0
    again = backend.ingest(bodies[0]).json()
    assert again["stored"] == 0
