"""Property-based: schemathesis drives every operation of the served OpenAPI document with generated
requests (valid and not) against the app on the real demo model; no answer may be a 5xx, and every
status code and JSON body must be one the document declares."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance

from daemon.config.http import HttpConfig
from daemon.http import create_app
from tests.daemon.http_parts import DemoView, load_demo, synthetic_jpeg

# Bodies for image/*: real JPEGs, cut-off ones, and arbitrary bytes.
_JPEGS = [synthetic_jpeg(i, size=96) for i in range(3)]
schemathesis.openapi.media_type(
    "image/*",
    st.one_of(
        st.sampled_from(_JPEGS), st.sampled_from(_JPEGS).map(lambda b: b[: len(b) // 3]), st.binary(max_size=512)
    ),
)


@pytest.fixture(scope="module")
def api_schema(demo_store: Path) -> schemathesis.schemas.BaseSchema:
    app: FastAPI = create_app(DemoView(load_demo(demo_store)), HttpConfig(enabled=True, max_pixels=200_000))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_operation_keeps_its_contract(api_schema: schemathesis.schemas.BaseSchema) -> None:
    """Generated requests never get a 500, and each answer's status and body match the document."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 10

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: schemathesis.Case) -> None:
            # A binary body the document calls valid need not be an image: acceptance of "valid"
            # data is not ours to promise; every other check (no 5xx, declared codes and bodies) is.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        run()
