"""Schemathesis against the app's own OpenAPI: every operation, no 5xx, responses match the schema."""

from __future__ import annotations

import pytest
import schemathesis
from conftest import _clone, _make_keys
from hypothesis import HealthCheck, given, settings
from live import live_server
from schemathesis import checks


@pytest.fixture(scope="module")
def fuzz_target(template_city):
    """A live server on a private copy of the small demo city, and an admin key for writes."""
    gen = _clone(template_city)
    url = next(gen)
    keys = _make_keys(url)
    with live_server(url) as base:
        yield base, keys
    gen.close()


# The bar: no 5xx, and no response that breaks the schema. ("Schema-valid data accepted"
# is left out: bbox order and coordinate ranges are checked beyond what OpenAPI can express.)
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


def test_every_operation_conforms(fuzz_target):
    """Each operation, fuzzed by schemathesis: no 5xx, and every response matches its schema."""
    base, keys = fuzz_target
    api = schemathesis.openapi.from_url(f"{base}/openapi.json")
    api.config.max_stream_events = 1  # /events never ends: stop after its first event
    headers = {"Authorization": f"Bearer {keys['admin']}"}  # writes get past 401 to validation
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        check()
