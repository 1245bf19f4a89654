"""Keys and park scoping on every route of the OpenAPI schema, on SQLite and PostgreSQL.

:data:`RULES` gives each operation its scoping rule; the first test fails when a route is
added without one. Each rule is then checked with no key, a wrong key, a park key of
another park, an evaluator and an admin."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import create_key
from service.db import session_factory
from service.operations import add_setpoints
from vpp.operate import Setpoints

DATE = "2026-07-15"
#: (method, path) -> who may do what; "other" is a park key of another park.
RULES = {
    ("GET", "/v1/health"): "public",
    ("GET", "/v1/sites"): "list-own-sites",
    ("GET", "/v1/sites/{site_id}"): "read-site",
    ("PUT", "/v1/sites/{site_id}"): "admin-only",
    ("GET", "/v1/sites/{site_id}/subsidy"): "read-site",
    ("GET", "/v1/tariffs"): "read-site",
    ("POST", "/v1/plans"): "plan-site",
    ("GET", "/v1/plans"): "list-own-plans",
    ("GET", "/v1/plans/{plan_id}"): "read-plan",
    ("GET", "/v1/plans/{plan_id}.csv"): "read-plan",
    ("GET", "/v1/plans/{plan_id}.png"): "read-plan",
    ("POST", "/v1/fleet-plans"): "evaluator-or-admin",
    ("POST", "/v1/simulations"): "evaluator-or-admin",
    ("GET", "/v1/jobs/{job_id}"): "read-job",
    ("GET", "/v1/simulations/{job_id}"): "read-job",
    ("GET", "/v1/simulations/{job_id}/{name}"): "read-job",
    ("POST", "/v1/jobs/{job_id}/cancel"): "owner-or-admin",
    ("POST", "/v1/jobs/{job_id}/resume"): "owner-or-admin",
    ("POST", "/v1/sites/{site_id}/measurements"): "write-site",
    ("GET", "/v1/sites/{site_id}/state"): "read-site",
    ("GET", "/v1/sites/{site_id}/subsidy-ledger"): "read-site",
    ("GET", "/v1/sites/{site_id}/setpoints"): "read-site",
    ("GET", "/v1/sites/{site_id}/plan-vs-actual"): "read-site",
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory, empty_database):
    """An app with park keys for CZ-MG-03 and CZ-MG-04, two evaluators, an admin, a plan
    of CZ-MG-04 and a simulation job of the first evaluator (jobs stay queued)."""
    tmp = tmp_path_factory.mktemp("scoping")
    url = empty_database(request.param, tmp)
    app = create_app(url, job_slots=0, max_queued_jobs=1000,
                     simulations_dir=str(tmp / "sims"))
    with session_factory(app.state.engine)() as s:
        keys = {"park3": create_key(s, "park", ["CZ-MG-03"]),
                "park4": create_key(s, "park", ["CZ-MG-04"]),
                "ev": create_key(s, "evaluator"), "ev2": create_key(s, "evaluator"),
                "admin": create_key(s, "admin")}
    client = TestClient(app, raise_server_exceptions=False)
    plan = client.post("/v1/plans", headers={"X-API-Key": keys["park4"]},
                       json={"site_id": "CZ-MG-04", "date": DATE})
    assert plan.status_code == 201, plan.text
    with session_factory(app.state.engine)() as s:  # a control step's set-points
        add_setpoints(s, Setpoints("CZ-MG-04", f"{DATE}T10:01:00+08:00",
                                   f"{DATE}T10:00:00+08:00", 15, [f"{DATE}T10:00:00+08:00"],
                                   [0.0], [100.0], [50.0], 100.0, 0.0, "optimal", 0.1, False,
                                   {}), "test")
        s.commit()
    return client, keys, plan.json()["id"], app


def job_of(client, keys) -> str:
    r = client.post("/v1/simulations", headers={"X-API-Key": keys["ev"]},
                    json={"start": "2025-07-01", "days": 2, "sites": ["CZ-MG-04"]})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def request_for(method: str, template: str, plan_id: str, job_id: str, site: str = "CZ-MG-04"
                ) -> tuple[str, str, dict | None]:
    path = (template.replace("{site_id}", site).replace("{plan_id}", plan_id)
            .replace("{job_id}", job_id).replace("{name}", "report.md"))
    query = {"/v1/tariffs": f"?date={DATE}&site_id={site}",
             "/v1/sites/{site_id}/subsidy": f"?start={DATE}&end={DATE}",
             "/v1/sites/{site_id}/plan-vs-actual": f"?date={DATE}"}.get(template, "")
    body = {"/v1/plans": {"site_id": site, "date": DATE},
            "/v1/fleet-plans": {"date": DATE},
            "/v1/simulations": {"start": "2025-07-01", "days": 2, "sites": [site]},
            "/v1/sites/{site_id}/measurements": {"rows": [
                {"timestamp": f"{DATE}T10:00:00+08:00", "grid_import_kw": 1000.0}]},
            }.get(template)
    if method == "PUT":
        body = "site"
    return method, path + query, body if method != "GET" else None


def call(client, keys, who, method, path, body):
    if body == "site":
        body = client.get("/v1/sites/CZ-MG-04", headers={"X-API-Key": keys["admin"]}).json()
    headers = {} if who is None else {"X-API-Key": keys.get(who, who)}
    return client.request(method, path, json=body, headers=headers)


def operations(app) -> set[tuple[str, str]]:
    return {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}


def test_every_route_has_a_scoping_rule(world):
    _, _, _, app = world
    ops = operations(app)
    assert ops - set(RULES) == set(), "routes without a scoping rule"
    assert set(RULES) - ops == set(), "rules for routes that no longer exist"


@pytest.mark.parametrize(("method", "template"), sorted(RULES))
def test_keys_are_required_and_checked(world, method, template):
    client, keys, plan_id, _ = world
    m, path, body = request_for(method, template, plan_id, job_of(client, keys))
    for who in (None, "vpp_deadbeef_wrong", "not-a-key"):
        r = call(client, keys, who, m, path, body)
        if RULES[(method, template)] == "public":
            assert r.status_code == 200
        else:
            assert r.status_code == 401, (who, r.text)
            assert "API key" in r.json()["detail"]


@pytest.mark.parametrize(("method", "template"), sorted(RULES))
def test_scoping_rule_holds(world, method, template):
    client, keys, plan_id, _ = world
    rule = RULES[(method, template)]
    m, path, body = request_for(method, template, plan_id, job_of(client, keys))

    def status(who):
        return call(client, keys, who, m, path, body).status_code

    if rule == "public":
        assert status(None) == 200
    elif rule == "list-own-sites":
        r = call(client, keys, "park3", m, path, body)
        assert [s["id"] for s in r.json()] == ["CZ-MG-03"]
        assert len(call(client, keys, "ev", m, path, body).json()) > 1
    elif rule == "list-own-plans":
        assert call(client, keys, "park3", m, path, body).json() == []
        assert plan_id in [p["id"] for p in call(client, keys, "ev", m, path, body).json()]
    elif rule == "read-site":
        assert status("park3") == 403
        assert status("park4") == status("ev") == status("admin") == 200
    elif rule == "write-site":
        assert status("park3") == 403 and status("ev") == 403
        assert status("park4") == status("admin") == 200
    elif rule == "plan-site":
        assert status("park3") == 403 and status("ev") == 403
        assert status("park4") == status("admin") == 201
    elif rule == "read-plan":
        assert status("park3") == 404  # not even its existence
        assert status("park4") == status("ev") == status("admin") == 200
    elif rule == "admin-only":
        assert status("park4") == status("ev") == 403
        assert status("admin") == 200
    elif rule == "evaluator-or-admin":
        assert status("park4") == 403
        assert status("ev") == status("admin") == 202
    elif rule == "read-job":
        assert status("park4") == 404
        assert status("ev") in (200, 404 if template.endswith("{name}") else 200)
        assert status("ev2") == status("ev") and status("admin") == status("ev")
    elif rule == "owner-or-admin":
        assert status("park4") == 404 and status("ev2") == 403
        expected = 202 if template.endswith("cancel") else 409  # a queued job cannot resume
        assert status("ev") == expected
        m2, path2, body2 = request_for(method, template, plan_id, job_of(client, keys))
        assert call(client, keys, "admin", m2, path2, body2).status_code == expected
    else:
        raise AssertionError(f"rule {rule} has no check")
