"""Property-based API testing with schemathesis against the service's own OpenAPI schema, on
SQLite and PostgreSQL: every operation, every check schemathesis has, at least 5,000
generated cases in all (:data:`EXAMPLES` per operation and database): no 5xx, every status
documented, responses (bodies, headers, content types) conform, missing or wrong keys
refused, unsupported methods answered 405 with the right ``Allow``.

One check is left out on purpose: ``positive_data_acceptance``. Rules the OpenAPI schema
cannot express (a tariff version in force on the date, SOC min <= max, a known archetype,
a plan's load profile that its grid can carry) reject some schema-valid requests with a
422 or a 409 by design. Jobs are queued and never run here (no job slot), so the fuzzer
may submit as many as it likes without loading the machine.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from service.app import create_app  # noqa: E402
from service.auth import create_key  # noqa: E402
from service.db import session_factory  # noqa: E402

EXAMPLES = 150
CASES: dict[str, int] = {}
STATUS: dict[int, int] = {}


def fuzzed_schema(database: str, url: str, tmp):
    """The schema of a fresh app on ``url``, every request with an admin key."""
    app = create_app(url, job_slots=0, max_queued_jobs=1_000_000,
                     simulations_dir=str(tmp / "sims"))
    with session_factory(app.state.engine)() as s:
        key = create_key(s, "admin", label="fuzz")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)

    @schema.auth()
    class AdminKey:
        """Every generated request carries a valid admin key, except where schemathesis
        checks that a missing or wrong key is refused."""

        def get(self, case, context):
            return key

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), "X-API-Key": data}

    return schema


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_every_operation(database, tmp_path, empty_database):
    """Each operation of the schema in turn, with hypothesis; every failure reported."""
    url = empty_database(database, tmp_path)
    schema = fuzzed_schema(database, url, tmp_path)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=st.one_of(*(operation.as_strategy(mode, auth_storage=schema.auth)
                                for mode in (GenerationMode.POSITIVE,
                                             GenerationMode.NEGATIVE))))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            response = case.call_and_validate(
                excluded_checks=[schemathesis.checks.positive_data_acceptance])
            CASES[case.operation.label] = CASES.get(case.operation.label, 0) + 1
            STATUS[response.status_code] = STATUS.get(response.status_code, 0) + 1

        try:
            run()
        except Exception as exc:  # keep going: every operation's failure in one report
            failures.append(f"{operation.label}: {exc}"[:3000])
    assert not failures, "\n\n".join(failures)


def test_at_least_5000_cases_in_all():
    """Runs after the fuzzing above (file order); alone it has nothing to count."""
    if not CASES:
        pytest.skip("run with the fuzz test")
    print(f"schemathesis: {sum(CASES.values())} cases over {len(CASES)} operations "
          f"and both databases, answers by status {sorted(STATUS.items())}: {CASES}")
    assert sum(CASES.values()) >= 5000, CASES
