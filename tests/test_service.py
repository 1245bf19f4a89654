"""The HTTP service on a real SQLite file: keys and scopes on every route, plans stored and
read back byte for byte, errors as JSON (401, 403, 404, 409, 422), nothing half-written."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import create_key
from service.db import PlanRecord, session_factory

DATE = "2026-07-15"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def svc(request, tmp_path_factory, empty_database):
    """The service on each database it supports (PostgreSQL: a throw-away server)."""
    url = empty_database(request.param, tmp_path_factory.mktemp("svc"))
    app = create_app(url)
    sessions = session_factory(app.state.engine)
    with sessions() as s:
        keys = {
            "admin": create_key(s, "admin", label="ops"),
            "evaluator": create_key(s, "evaluator"),
            "park3": create_key(s, "park", ["CZ-MG-03"]),
            "park4": create_key(s, "park", ["CZ-MG-04"]),
        }
    client = TestClient(app, raise_server_exceptions=False)
    return client, keys, sessions


def h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def plans_stored(sessions) -> int:
    with sessions() as s:
        return s.query(PlanRecord).count()


def test_health_needs_no_key_and_everything_else_does(svc):
    client, _, _ = svc
    assert client.get("/v1/health").json()["status"] == "ok"
    for method, path in [("get", "/v1/sites"), ("get", "/v1/sites/CZ-MG-03"),
                         ("put", "/v1/sites/CZ-MG-03"), ("post", "/v1/plans"),
                         ("get", "/v1/plans"), ("get", "/v1/plans/x"),
                         ("get", "/v1/plans/x.csv"), ("get", "/v1/plans/x.png"),
                         ("get", f"/v1/tariffs?date={DATE}"),
                         ("get", f"/v1/sites/CZ-MG-03/subsidy?start={DATE}&end={DATE}")]:
        for headers in ({}, h("vpp_deadbeef_wrong"), h("not-a-key")):
            r = getattr(client, method)(path, headers=headers)
            assert r.status_code == 401, (method, path, r.text)
            assert "API key" in r.json()["detail"]


def test_plan_is_stored_and_read_back_byte_identical(svc):
    client, keys, _ = svc
    r = client.post("/v1/plans", headers=h(keys["park3"]),
                    json={"site_id": "CZ-MG-03", "date": DATE})
    assert r.status_code == 201, r.text
    plan = r.json()
    assert plan["site_id"] == "CZ-MG-03" and plan["solver"]["optimality_gap"] <= 1e-3
    assert r.headers["location"] == f"/v1/plans/{plan['id']}"
    again = client.get(f"/v1/plans/{plan['id']}", headers=h(keys["park3"]))
    assert again.status_code == 200 and again.content == r.content
    csv = client.get(f"/v1/plans/{plan['id']}.csv", headers=h(keys["evaluator"]))
    assert csv.status_code == 200 and len(csv.text.strip().splitlines()) == 97
    png = client.get(f"/v1/plans/{plan['id']}.png", headers=h(keys["admin"]))
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    listed = client.get(f"/v1/plans?site_id=CZ-MG-03&date={DATE}",
                        headers=h(keys["evaluator"])).json()
    assert plan["id"] in [p["id"] for p in listed]


def test_park_keys_never_reach_another_park(svc):
    client, keys, _ = svc
    r = client.post("/v1/plans", headers=h(keys["park4"]),
                    json={"site_id": "CZ-MG-04", "date": DATE})
    assert r.status_code == 201, r.text
    other = r.json()["id"]
    p3 = h(keys["park3"])
    assert client.get(f"/v1/plans/{other}", headers=p3).status_code == 404
    assert client.get(f"/v1/plans/{other}.csv", headers=p3).status_code == 404
    assert client.get(f"/v1/plans/{other}.png", headers=p3).status_code == 404
    assert all(p["site_id"] == "CZ-MG-03" for p in client.get("/v1/plans", headers=p3).json())
    assert client.get("/v1/plans?site_id=CZ-MG-04", headers=p3).json() == []
    assert [s["id"] for s in client.get("/v1/sites", headers=p3).json()] == ["CZ-MG-03"]
    assert client.get("/v1/sites/CZ-MG-04", headers=p3).status_code == 403
    assert client.get("/v1/sites/CZ-MG-04/subsidy?start=2026-07-01&end=2026-07-31",
                      headers=p3).status_code == 403
    assert client.get(f"/v1/tariffs?date={DATE}&site_id=CZ-MG-04",
                      headers=p3).status_code == 403
    r = client.post("/v1/plans", headers=p3, json={"site_id": "CZ-MG-04", "date": DATE})
    assert r.status_code == 403 and "CZ-MG-04" in r.json()["detail"]
    # evaluators read everything but do not plan
    ev = h(keys["evaluator"])
    assert client.get(f"/v1/plans/{other}", headers=ev).status_code == 200
    assert client.post("/v1/plans", headers=ev,
                       json={"site_id": "CZ-MG-04", "date": DATE}).status_code == 403


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"days": 9}, "body.days", "less than or equal to 7"),
    ({"date": "2026-13-01"}, "body.date", "date"),
    ({"mip_rel_gap": 0.5}, "body.mip_rel_gap", "0.05"),
    ({"colour": "red"}, "body.colour", "Extra inputs"),
    ({"pv_kw": [-1.0] * 96}, "body.pv_kw.0", "greater than or equal to 0"),
])
def test_bad_requests_name_field_value_and_range(svc, body, field, words):
    client, keys, sessions = svc
    before = plans_stored(sessions)
    r = client.post("/v1/plans", headers=h(keys["admin"]),
                    json={"site_id": "CZ-MG-03", "date": DATE, **body})
    assert r.status_code == 422, r.text
    err = r.json()
    assert field in [e["field"] for e in err["errors"]] and words in err["detail"]
    assert plans_stored(sessions) == before


def test_infeasible_plan_is_409_with_reasons_and_stores_nothing(svc):
    client, keys, sessions = svc
    before = plans_stored(sessions)
    r = client.post("/v1/plans", headers=h(keys["admin"]),
                    json={"site_id": "CZ-MG-03", "date": DATE, "load_kw": [1e6] * 96})
    assert r.status_code == 409, r.text
    assert r.json()["reasons"] and "import" in " ".join(r.json()["reasons"])
    r = client.post("/v1/plans", headers=h(keys["admin"]),
                    json={"site_id": "CZ-MG-03", "date": DATE, "load_kw": [1.0] * 95})
    assert r.status_code == 422 and "95 values given" in r.text
    assert plans_stored(sessions) == before


def test_unknown_things_are_404(svc):
    client, keys, _ = svc
    a = h(keys["admin"])
    assert client.get("/v1/plans/no-such-plan", headers=a).status_code == 404
    assert client.get("/v1/sites/CZ-MG-99", headers=a).status_code == 404
    r = client.post("/v1/plans", headers=a, json={"site_id": "CZ-MG-99", "date": DATE})
    assert r.status_code == 404 and "CZ-MG-99" in r.json()["detail"]


def test_admin_registers_a_site_validated_like_the_fleet_file(svc):
    client, keys, _ = svc
    a = h(keys["admin"])
    site = client.get("/v1/sites/CZ-MG-03", headers=a).json()
    new = {**site, "id": "CZ-MG-31", "name": "Registered through the API"}
    assert client.put("/v1/sites/CZ-MG-31", headers=h(keys["park3"]),
                      json=new).status_code == 403
    bad = {**new, "storage": {**new["storage"], "soc_min_frac": 0.9, "soc_max_frac": 0.5}}
    r = client.put("/v1/sites/CZ-MG-31", headers=a, json=bad)
    assert r.status_code == 422 and "soc_min_frac=0.9 > soc_max_frac=0.5" in r.text
    r = client.put("/v1/sites/CZ-MG-31", headers=a, json=new)
    assert r.status_code == 200, r.text
    listed = {s["id"]: s for s in client.get("/v1/sites", headers=a).json()}
    assert listed["CZ-MG-31"]["source"] == "api"
    r = client.post("/v1/plans", headers=a, json={"site_id": "CZ-MG-31", "date": DATE})
    assert r.status_code == 201 and r.json()["site_name"] == "Registered through the API"


def test_tariffs_and_subsidy(svc):
    client, keys, _ = svc
    ev = h(keys["evaluator"])
    if not client.get(f"/v1/plans?site_id=CZ-MG-03&date={DATE}", headers=ev).json():
        # run alone (-k): store the plan the earlier tests would have stored
        client.post("/v1/plans", headers=h(keys["park3"]),
                    json={"site_id": "CZ-MG-03", "date": DATE})
    t = client.get(f"/v1/tariffs?date={DATE}&site_id=CZ-MG-03", headers=ev).json()
    assert len(t["import_price_yuan_per_kwh"]) == 96 and "critical_peak" in t["period"]
    sub = client.get(f"/v1/sites/CZ-MG-03/subsidy?start={DATE}&end={DATE}", headers=ev).json()
    plan = json.loads(client.get(
        client.get(f"/v1/plans?site_id=CZ-MG-03&date={DATE}", headers=ev).json()[0]["url"],
        headers=ev).content)
    assert sub["planned_days"] == 1
    assert sub["planned_subsidy_yuan"] == pytest.approx(plan["kpis"]["subsidy_yuan"])
    r = client.get("/v1/sites/CZ-MG-03/subsidy?start=2026-08-01&end=2026-07-01", headers=ev)
    assert r.status_code == 422 and "must not be before" in r.text


def test_fleet_plan_job_with_an_event(small_fleet, wait_job):
    d, fleet = small_fleet
    app = create_app(f"sqlite:///{d / 'jobs.sqlite3'}", fleet=str(fleet))
    with session_factory(app.state.engine)() as s:
        ev, park = create_key(s, "evaluator"), create_key(s, "park", ["CZ-MG-01"])
    client = TestClient(app, raise_server_exceptions=False)
    body = {"date": DATE, "events": [{
        "id": "e1", "type": "peak_shaving", "start": f"{DATE}T20:00", "end": f"{DATE}T21:00",
        "requested_mw": 0.5, "compensation_yuan_per_kwh": 3.0}]}
    assert client.post("/v1/fleet-plans", headers=h(park), json=body).status_code == 403
    bad = {**body, "events": [{**body["events"][0], "start": "2026-07-16T20:00",
                               "end": "2026-07-16T21:00"}]}
    r = client.post("/v1/fleet-plans", headers=h(ev), json=bad)
    assert r.status_code == 422 and "outside the planned horizon" in r.text
    r = client.post("/v1/fleet-plans", headers=h(ev), json=body)
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["url"], h(ev))
    assert job["status"] == "done", job
    result = job["result"]
    assert set(result["plans"]) == {"CZ-MG-01", "CZ-MG-02", "CZ-MG-03"}
    assert result["events"][0]["requested_kw"] == 500.0
    plan = client.get(result["plans"]["CZ-MG-01"], headers=h(park))
    assert plan.status_code == 200 and plan.json()["site_id"] == "CZ-MG-01"
    assert client.get(result["plans"]["CZ-MG-02"], headers=h(park)).status_code == 404
    assert client.get(r.json()["url"], headers=h(park)).status_code == 404  # not its job


def test_simulation_job_progress_result_and_downloads(small_fleet, tmp_path, wait_job):
    """POST /v1/simulations -> 202 job; the job's months equal the Python API's for the
    same options; report and tables download; park keys may not run simulations; bad
    ranges and an unknown site are 422 before any job starts."""
    import io

    import pandas as pd

    from vpp.catalog import Catalog
    from vpp.simulation import SimulationOptions, simulate

    d, fleet = small_fleet
    app = create_app(f"sqlite:///{d / 'sim.sqlite3'}", fleet=str(fleet),
                     simulations_dir=str(tmp_path / "sims"), max_simulation_site_months=2)
    with session_factory(app.state.engine)() as s:
        ev, park = create_key(s, "evaluator"), create_key(s, "park", ["CZ-MG-01"])
    client = TestClient(app, raise_server_exceptions=False)
    # a time budget no re-plan reaches on a loaded machine either: the comparison below
    # needs the same plans, and only a solve stopped by its budget may differ
    body = {"sites": ["CZ-MG-01", "CZ-MG-02"], "start": "2025-07-30", "days": 4, "seed": 3,
            "time_limit_s": 300}
    assert client.post("/v1/simulations", headers=h(park), json=body).status_code == 403
    r = client.post("/v1/simulations", headers=h(ev), json={**body, "months": 61})
    assert r.status_code == 422 and "months" in r.text and "60" in r.text
    r = client.post("/v1/simulations", headers=h(ev), json={**body, "days": None, "months": 2})
    assert r.status_code == 422 and "at most 2 site-months" in r.text  # the server's cap
    r = client.post("/v1/simulations", headers=h(ev), json={**body, "sites": ["CZ-MG-99"]})
    assert r.status_code == 422 and r.json()["problems"][0].startswith(
        "sites[0]='CZ-MG-99': not in the fleet (known sites: CZ-MG-01")
    r = client.post("/v1/simulations", headers=h(ev), json=body)
    assert r.status_code == 202, r.text
    url = r.json()["url"]
    assert url.startswith("/v1/simulations/")
    job = wait_job(client, url, h(ev))
    assert job["status"] == "done", job
    assert job["progress"] == "done" and not job["result"]["failures"]
    months = pd.read_csv(io.StringIO(client.get(f"{url}/months.csv", headers=h(ev)).text))
    ref = simulate(Catalog.load(fleet=str(fleet)), SimulationOptions(
        start=pd.Timestamp("2025-07-30").date(), days=4, seed=3, time_limit_s=300),
        ["CZ-MG-01", "CZ-MG-02"])
    assert months[["site_id", "month"]].values.tolist() == \
        ref.months[["site_id", "month"]].values.tolist()
    assert months["subsidy_yuan"].to_numpy() == pytest.approx(ref.months["subsidy_yuan"])
    assert job["result"]["totals"]["subsidy_yuan"] == pytest.approx(
        ref.months["subsidy_yuan"].sum(), abs=1e-3)
    import shutil

    shutil.rmtree(tmp_path / "sims")  # the files live in the database with the job
    report = client.get(f"{url}/report.md", headers=h(ev))
    assert report.status_code == 200 and "Pilot evaluation" in report.text
    assert client.get(f"{url}/report.html", headers=h(ev)).text.startswith("<!DOCTYPE html>")
    png = client.get(f"{url}/net_cost.png", headers=h(ev))
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(f"{url}/secrets.txt", headers=h(ev)).status_code == 404
    assert client.get(url, headers=h(park)).status_code == 404  # not its job


def test_restart_marks_unfinished_jobs_interrupted(database_url):
    from service.db import JobRecord

    url = database_url
    app = create_app(url)
    with session_factory(app.state.engine)() as s:
        s.add(JobRecord(id="j1", kind="fleet-plan", status="running", params="{}"))
        key = create_key(s, "admin")
        s.commit()
    app2 = create_app(url)  # the service restarts
    job = TestClient(app2).get("/v1/jobs/j1", headers=h(key)).json()
    assert job["status"] == "interrupted" and "submit it again" in job["error"]


def test_concurrent_plan_requests_all_succeed(svc):
    """Requests solved on the server's threads at once (a lock serialises the solver: Pyomo's
    output capture broke under concurrency before it)."""
    from concurrent.futures import ThreadPoolExecutor

    client, keys, _ = svc
    with ThreadPoolExecutor(6) as pool:
        rs = list(pool.map(lambda _: client.post(
            "/v1/plans", headers=h(keys["park3"]), json={"site_id": "CZ-MG-03", "date": DATE}),
            range(6)))
    assert [r.status_code for r in rs] == [201] * 6
    assert len({r.json()["kpis"]["net_cost_yuan"] for r in rs}) == 1  # the same plan


def test_vpp_help_imports_no_web_or_database_library():
    import subprocess
    import sys

    code = ("import sys, service.cli; heavy = {'fastapi', 'uvicorn', 'sqlalchemy', "
            "'service.app', 'jinja2', 'matplotlib', 'babel', 'rich', 'itsdangerous', "
            "'service.dashboard'} & set(sys.modules); assert not heavy, heavy")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_keys_create_refuses_unknown_sites_and_sites_on_other_roles(tmp_path):
    from click.testing import CliRunner

    from service.cli import main

    db = ["--db", f"sqlite:///{tmp_path / 'keys.sqlite3'}"]
    r = CliRunner().invoke(main, ["keys", "create", *db, "--role", "park",
                                  "--sites", "CZ-MG-01,CZ-MG-99"])
    assert r.exit_code == 2 and "unknown site id(s): CZ-MG-99" in r.output
    r = CliRunner().invoke(main, ["keys", "create", *db, "--role", "admin",
                                  "--sites", "CZ-MG-01"])
    assert r.exit_code == 2 and "--sites is for park keys" in r.output
    r = CliRunner().invoke(main, ["keys", "create", *db, "--role", "park",
                                  "--sites", "CZ-MG-01"])
    assert r.exit_code == 0 and r.output.startswith("vpp_")
    with pytest.raises(ValueError, match="site ids are for park keys"):
        from service.db import make_engine, migrate

        engine = make_engine(db[1])
        migrate(engine)
        with session_factory(engine)() as s:
            create_key(s, "evaluator", ["CZ-MG-01"])
