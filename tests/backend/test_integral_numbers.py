"""JSON Schema's `integer` admits 153.0 (schemathesis generates it): the audit record's
`seq` and a shard part's `index`/`count` take it as 153, and still refuse 153.5, "153"
and true with the field named (found by tests/backend/test_openapi_fuzz.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from spy_backend.models.audit import AuditRecord
from spy_backend.models.shards import ShardId

RECORD = (
    '{"seq": %s, "bot": "ns/bot", "ts": "2030-01-22T04:37:02Z", "event": "startup", "run": "r1"}'
)


def test_integral_floats_are_integers() -> None:
    assert AuditRecord.model_validate_json(RECORD % "153.0").seq == 153
    shard = ShardId.model_validate_json('{"index": 1.0, "count": 3.0}')
    assert (shard.index, shard.count) == (1, 3)


@pytest.mark.parametrize("bad", ["153.5", '"153"', "true"])
def test_other_numbers_are_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(ValidationError) as err:
        AuditRecord.model_validate_json(RECORD % bad)
    assert err.value.errors()[0]["loc"] == ("seq",)
