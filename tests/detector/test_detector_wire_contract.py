"""What the detector publishes satisfies the backend's executable contract.

The backend's Pydantic ``IngestBatch`` is the executable form of docs/wire-format.md;
these tests validate the detector's real output (analytics on a synthetic chain with
every anomaly kind injected) against it in-process, item by item, so a mismatch names
the field. A rejected item would be dropped by the publisher (counted), never block
the rest of its batch.
"""

from __future__ import annotations

from typing import Any

import pytest
from spy_analytics.synthetic import SyntheticMarket
from spy_detector.analysis import ChainAnalyzer
from spy_detector.sharding import ShardSpec, shard_snapshot
from spy_detector.sources.synthetic import EVERY_KIND

ingest = pytest.importorskip("spy_backend.models.ingest")
pydantic = pytest.importorskip("pydantic")


def _published(shard: ShardSpec, snapshots: int = 3) -> dict[str, list[dict[str, Any]]]:
    market = SyntheticMarket(seed=5)
    analyzer = ChainAnalyzer()
    out: dict[str, list[dict[str, Any]]] = {}
    for _ in range(snapshots):
        snap = shard_snapshot(market.next_snapshot(EVERY_KIND).snapshot, shard)
        for kind, objs in analyzer(snap).to_wire().items():
            out.setdefault(kind, []).extend(objs)
    return out


def _rejections(kind: str, objs: list[dict[str, Any]]) -> list[str]:
    errors = []
    for obj in objs:
        try:
            ingest.IngestBatch.model_validate({kind: [obj]})
        except pydantic.ValidationError as exc:
            errors.append(str(exc).splitlines()[1])
    return errors


@pytest.mark.parametrize("shard", [ShardSpec(0, 1), ShardSpec(1, 3)], ids=["whole", "shard"])
@pytest.mark.parametrize("kind", ["anomalies", "market", "gex", "flow"])
def test_items_validate(kind: str, shard: ShardSpec) -> None:
    published = _published(shard)
    assert published[kind], f"the synthetic chain produces {kind}"
    assert _rejections(kind, published[kind]) == []
