"""Property-based API testing with schemathesis against the service's own OpenAPI schema:
no request, however odd, gets a 5xx, and every response conforms to the schema. Bounded so
that it stays a test, not a campaign (plan solves are the slow part)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from service.app import create_app  # noqa: E402
from service.auth import create_key  # noqa: E402
from service.db import session_factory  # noqa: E402

_TMP = tempfile.TemporaryDirectory(prefix="vpp-fuzz-")
# simulation jobs capped at one site-month: the fuzzer may start them, not hog the machine
APP = create_app(f"sqlite:///{Path(_TMP.name) / 'vpp.sqlite3'}",
                 simulations_dir=str(Path(_TMP.name) / "sims"), max_simulation_site_months=1)
with session_factory(APP.state.engine)() as _s:
    KEY = create_key(_s, "admin", label="fuzz")
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.auth()
class AdminKey:
    """Every generated request carries a valid admin key, except where schemathesis checks
    that a missing or wrong key is refused."""

    def get(self, case, context):
        return KEY

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "X-API-Key": data}


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_schema_conformance(case):
    response = case.call()
    assert response.status_code < 500, response.text
    # Rules the OpenAPI schema cannot express (SOC min <= max, a tariff in force on the
    # date, a known archetype) reject some schema-valid requests with a 422 on purpose.
    case.validate_response(response, excluded_checks=[
        schemathesis.checks.positive_data_acceptance])
