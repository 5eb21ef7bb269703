"""schemathesis against the served OpenAPI spec: for generated valid and invalid input,
no 5xx, documented status codes and content types, and responses matching their
schemas. Bounded example counts keep it to seconds."""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from spy_backend.app import create_app

from .conftest import TOKEN, Backend

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


# The spec is the app's own (building the app touches no storage); requests go to a
# backend running on real Azurite.
schema = schemathesis.openapi.from_dict(create_app(run_purge=False).openapi())


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("SPY_BACKEND_FUZZ_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_spec(case: Any, backend: Backend) -> None:
    case.call_and_validate(
        base_url=backend.url, headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS
    )
