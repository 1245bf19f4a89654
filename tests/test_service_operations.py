"""Live operation through the service, on SQLite and PostgreSQL: measurements upserted
(idempotent, fields merged, a rejected batch stores nothing), the state by hand, plans that
start from it, control steps with leases across processes, set-points and plan-vs-actual,
and the scheduler."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.app import create_app
from service.auth import create_key
from service.db import MeasurementRecord, SetpointRecord, session_factory
from service.operations import claim_step, finish_step
from service.scheduler import OperateScheduler, run_step
from vpp.operate import Operator
from vpp.options import OperateOptions

CST = dt.timezone(dt.timedelta(hours=8))
AT = "2026-07-15T13:00:00%2B08:00"
FOUR = [("10:00", 1000.0, 100.0), ("10:15", 3000.0, 100.0), ("10:30", 2000.0, 100.0),
        ("12:00", 1500.0, 200.0)]


def rows4() -> list[dict]:
    return [{"timestamp": f"2026-07-15T{t}:00+08:00", "grid_import_kw": imp,
             "battery_kw": bat, "soc_kwh": 2000.0 - 25.0 * i}
            for i, (t, imp, bat) in enumerate(FOUR)]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def svc(request, tmp_path_factory, empty_database):
    url = empty_database(request.param, tmp_path_factory.mktemp("ops"))
    app = create_app(url, job_slots=0)
    sessions = session_factory(app.state.engine)
    with sessions() as s:
        keys = {"park1": create_key(s, "park", ["CZ-MG-01"]),
                "park3": create_key(s, "park", ["CZ-MG-03"]),
                "ev": create_key(s, "evaluator"), "admin": create_key(s, "admin")}
    return TestClient(app, raise_server_exceptions=False), keys, sessions, app


def h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def stored(sessions, site_id: str = "CZ-MG-01") -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(MeasurementRecord)
                        .where(MeasurementRecord.site_id == site_id))


def post(client, key, rows, site="CZ-MG-01", **extra):
    return client.post(f"/v1/sites/{site}/measurements", headers=h(key),
                       json={"rows": rows, **extra})


def test_measurements_are_upserted_idempotently_and_the_state_is_right(svc):
    client, keys, sessions, _ = svc
    r = post(client, keys["park1"], rows4())
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == 4 and r.json()["gaps"][0]["missing_intervals"] == 5
    n = stored(sessions)
    assert post(client, keys["park1"], rows4()).status_code == 200
    assert stored(sessions) == n  # the same batch again changes nothing
    st = client.get(f"/v1/sites/CZ-MG-01/state?at={AT}", headers=h(keys["ev"])).json()
    # by hand (tests/test_measurements.py): peak 3000 kW x 40 yuan/kW, energy 1121.25 yuan,
    # discharge 125 kWh of which 75 kWh in flat hours at 0.3 yuan/kWh
    assert st["month_peak_kw"] == 3000.0 and st["demand_charge_yuan"] == 120000.0
    assert st["energy_cost_yuan"] == pytest.approx(1121.25)
    assert st["discharge_kwh"] == 125.0 and st["subsidy_yuan"] == pytest.approx(22.5)
    assert st["soc_kwh"] == 1925.0 and st["age_s"] == 2700.0


def test_the_state_on_the_first_of_a_month_keeps_the_soc_and_freshness_of_the_day_before(
        svc):
    """CZ-MG-04: SOC 1200 kWh read at 22:30 on 31 May, then 15-minute rows with the battery
    idle to 00:00 on 1 June; at 00:20 the SOC is still that reading (the state read only
    an hour before the month, so it said "none measured" and a control step fell back to
    the nominal SOC). CZ-MG-22 last reported at 15:00 on 30 May: on 1 June it is stale
    since 15:15 that day, not "never measured"."""
    client, keys, _, _ = svc
    quarters = [f"2026-05-31T{h}:{m:02d}" for h in (22, 23) for m in (0, 15, 30, 45)]
    times = [*quarters[2:], "2026-06-01T00:00"]  # 22:30 .. 00:00
    rows = [{"timestamp": f"{t}:00+08:00", "battery_kw": 0.0, "grid_import_kw": 800.0}
            for t in times]
    rows[0]["soc_kwh"] = 1200.0
    assert post(client, keys["admin"], rows, site="CZ-MG-04").status_code == 200
    at = "2026-06-01T00:20:00%2B08:00"
    st = client.get(f"/v1/sites/CZ-MG-04/state?at={at}", headers=h(keys["ev"])).json()
    assert (st["soc_kwh"], st["soc_measured_at"]) == (1200.0, "2026-05-31T22:30:00+08:00")
    assert st["month"] == "2026-06" and st["month_peak_kw"] == 800.0  # June's 00:00 only
    # May's bill on 1 June: its six intervals 22:30-23:45 at 800 kW, 1,200 kWh at the flat
    # 0.65 yuan/kWh (spring: flat 22-02)
    may = client.get(f"/v1/sites/CZ-MG-04/state?at={at}&month=2026-05",
                     headers=h(keys["ev"])).json()
    assert (may["month"], may["month_peak_kw"], may["month_peak_at"]) == (
        "2026-05", 800.0, "2026-05-31T22:30:00+08:00")
    assert may["import_kwh"] == 1200.0 and may["energy_cost_yuan"] == pytest.approx(780.0)
    r = client.get(f"/v1/sites/CZ-MG-04/state?at={at}&month=2026-07", headers=h(keys["ev"]))
    assert r.status_code == 422 and "month=2026-07 has not begun" in r.text
    one = [{"timestamp": "2026-05-30T15:00:00+08:00", "battery_kw": 400.0,
            "grid_import_kw": 500.0}]
    assert post(client, keys["admin"], one, site="CZ-MG-22").status_code == 200
    st = client.get(f"/v1/sites/CZ-MG-22/state?at={at}", headers=h(keys["ev"])).json()
    assert st["measured"] is True and st["data_until"] == "2026-05-30T15:15:00+08:00"
    assert st["age_s"] == pytest.approx((33 * 60 + 5) * 60)  # 15:15 on the 30th to 00:20
    assert st["month_peak_kw"] == 0.0 and st["demand_charge_yuan"] == 0.0


def test_a_row_without_a_field_keeps_the_stored_value(svc):
    client, keys, _, _ = svc
    r = post(client, keys["admin"], [{"timestamp": "2026-07-15T10:15:00+08:00",
                                      "pv_kw": 800.0}])
    assert r.status_code == 200, r.text
    st = client.get(f"/v1/sites/CZ-MG-01/state?at={AT}", headers=h(keys["ev"])).json()
    assert st["month_peak_kw"] == 3000.0  # the import of 10:15 is still there
    r = post(client, keys["admin"], [{"timestamp": "2026-07-15T10:15:00+08:00",
                                      "grid_import_kw": 2500.0}])
    st = client.get(f"/v1/sites/CZ-MG-01/state?at={AT}", headers=h(keys["ev"])).json()
    assert st["month_peak_kw"] == 2500.0  # a given field replaces
    post(client, keys["admin"], [{"timestamp": "2026-07-15T10:15:00+08:00",
                                  "grid_import_kw": 3000.0}])


def test_a_rejected_batch_stores_nothing_and_names_every_row(svc):
    client, keys, sessions, _ = svc
    before = stored(sessions)
    good = {"timestamp": "2026-07-15T11:00:00+08:00", "grid_import_kw": 10.0}
    r = post(client, keys["park1"], [good, {"timestamp": "2026-07-15T11:15:00+08:00",
                                            "grid_import_kw": 99999.0},
                                     {"timestamp": "2026-07-15T11:30:00", "pv_kw": 1.0}])
    assert r.status_code == 422
    body = r.json()
    assert "nothing stored" in body["detail"]
    assert [(e["row"], e["field"]) for e in body["errors"]] == [(2, "grid_import_kw"),
                                                                 (3, "timestamp")]
    assert "7191" in body["errors"][0]["allowed"]
    assert stored(sessions) == before
    r = post(client, keys["park1"], [good] * 3001)
    assert r.status_code == 422 and "at most 3000 rows per batch" in r.text
    r = post(client, keys["park1"], [good], interval_minutes=10)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.interval_minutes"
    assert stored(sessions) == before


def test_counters_are_checked_against_stored_readings(svc):
    client, keys, _, _ = svc
    ok = [{"timestamp": "2026-07-14T10:00:00+08:00", "import_counter_kwh": 5000.0},
          {"timestamp": "2026-07-14T10:15:00+08:00", "import_counter_kwh": 5250.0}]
    assert post(client, keys["park1"], ok).status_code == 200
    r = post(client, keys["park1"], [{"timestamp": "2026-07-14T10:30:00+08:00",
                                      "import_counter_kwh": 5100.0}])
    assert r.status_code == 422 and "runs backwards: 5100 kWh after 5250 kWh" in r.text


def test_json_numbers_only_and_an_at_without_a_tariff_is_named(svc):
    client, keys, _, _ = svc
    r = post(client, keys["park1"], [{"timestamp": "2026-07-13T10:00:00+08:00",
                                      "grid_import_kw": "1e3"}])
    assert r.status_code == 422 and "a JSON number, not text" in r.text
    r = client.get("/v1/sites/CZ-MG-01/state?at=2000-01-01T00:00:00%2B08:00",
                   headers=h(keys["ev"]))
    assert r.status_code == 422 and "at=2000-01-01T00:00:00+08:00: " in r.text


def test_rows_of_another_length_may_replace_but_not_overlap_stored_ones(svc):
    client, keys, sessions, _ = svc
    quarter = [{"timestamp": "2026-05-12T08:00:00+08:00", "grid_import_kw": 100.0}]
    assert post(client, keys["park1"], quarter).status_code == 200
    n = stored(sessions)
    fives = [{"timestamp": f"2026-05-12T08:{m:02d}:00+08:00", "grid_import_kw": 7000.0}
             for m in (5, 10)]
    r = post(client, keys["park1"], fives, interval_minutes=5)
    assert r.status_code == 422, r.text
    errs = r.json()["errors"]
    assert [(e["row"], e["field"]) for e in errs] == [(1, "timestamp"), (2, "timestamp")]
    assert "overlaps the stored 15-minute row at 2026-05-12T08:00:00+08:00" in errs[0]["message"]
    assert stored(sessions) == n  # nothing of it stored
    # the whole quarter re-sent at 5 minutes replaces the 15-minute row
    whole = [{"timestamp": "2026-05-12T08:00:00+08:00", "grid_import_kw": 7000.0}, *fives]
    assert post(client, keys["park1"], whole, interval_minutes=5).status_code == 200
    assert stored(sessions) == n + 2
    # and back: one 15-minute row replaces the three 5-minute rows under it (it was refused
    # as overlapping 08:05, so a stretch could never become coarser again)
    r = post(client, keys["park1"], quarter)
    assert r.status_code == 200, r.text
    assert stored(sessions) == n
    state = client.get("/v1/sites/CZ-MG-01/state?at=2026-05-12T09:00:00%2B08:00",
                       headers=h(keys["park1"])).json()
    assert state["month_peak_kw"] == 100.0  # the 5-minute 7,000 kW rows are gone
    # a power not re-sent when the row's length changes is dropped, not kept: the stored
    # 15-minute battery -500 kW would read as a 5-minute average (a different energy)
    at_nine = "2026-05-12T09:00:00+08:00"
    both = [{"timestamp": at_nine, "grid_import_kw": 5000.0, "battery_kw": -500.0,
             "soc_kwh": 900.0}]
    assert post(client, keys["park1"], both).status_code == 200
    five = [{"timestamp": at_nine, "grid_import_kw": 3000.0}]
    assert post(client, keys["park1"], five, interval_minutes=5).status_code == 200
    with sessions() as s:
        row = s.execute(select(MeasurementRecord).where(
            MeasurementRecord.site_id == "CZ-MG-01", MeasurementRecord.ts == dt.datetime(
                2026, 5, 12, 1, 0, tzinfo=dt.UTC))).scalar_one()
        assert (row.interval_minutes, row.grid_import_kw, row.battery_kw, row.soc_kwh) == (
            5, 3000.0, None, 900.0)  # the SOC, an instant reading, stays
    # rows of one length: a 15-minute row on the grid covers finer stored rows wholly or
    # not at all, so the only clash left is a finer row under a coarser stored one (above)


def test_park_keys_write_only_their_own_sites(svc):
    client, keys, _, _ = svc
    one = [{"timestamp": "2026-07-15T10:00:00+08:00", "pv_kw": 1.0}]
    assert post(client, keys["park3"], one).status_code == 403
    assert post(client, keys["ev"], one).status_code == 403
    assert post(client, keys["park3"], one, site="CZ-MG-03").status_code == 200
    assert client.get("/v1/sites/CZ-MG-01/state", headers=h(keys["park3"])).status_code == 403
    assert post(client, keys["admin"], one, site="CZ-MG-99").status_code == 404


def test_plans_start_from_the_stored_state_unless_told(svc):
    client, keys, _, _ = svc
    post(client, keys["park1"], [{"timestamp": "2026-07-14T23:45:00+08:00", "soc_kwh": 3000.0}])
    r = client.post("/v1/plans", headers=h(keys["park1"]),
                    json={"site_id": "CZ-MG-01", "date": "2026-07-15"})
    assert r.status_code == 201, r.text
    plan = r.json()
    ini = plan["initial_state"]
    assert ini["month_peak_kw"] == 3000.0 and plan["options"]["month_peak_kw"] == 3000.0
    assert ini["soc_initial_kwh"] == pytest.approx(3000.0)
    assert "measured at 2026-07-14T23:45:00+08:00" in ini["soc_initial_source"]
    assert plan["parameters"]["storage"]["soc_initial_kwh"] == pytest.approx(3000.0)
    r = client.post("/v1/plans", headers=h(keys["park1"]),
                    json={"site_id": "CZ-MG-01", "date": "2026-07-15", "month_peak_kw": 0.0,
                          "soc_initial_frac": 0.5})
    ini = r.json()["initial_state"]
    assert ini["month_peak_kw"] == 0.0 and ini["month_peak_source"] == "option month_peak_kw"
    assert ini["soc_initial_kwh"] == 2000.0
    # a site without measurements: default 0 and the warning among the plan's flags
    r = client.post("/v1/plans", headers=h(keys["admin"]),
                    json={"site_id": "CZ-MG-02", "date": "2026-07-15"})
    assert r.json()["initial_state"]["month_peak_source"].startswith("default 0")
    assert any(f.startswith("WARNING: month-to-date peak 0 kW") for f in r.json()["flags"])


def test_a_control_step_is_stored_once_per_slot_across_processes(svc, catalog):
    client, keys, sessions, _ = svc
    now = dt.datetime(2026, 7, 15, 12, 20, tzinfo=CST)
    slot = dt.datetime(2026, 7, 15, 12, 15, tzinfo=CST)
    op = Operator(catalog, OperateOptions())
    doc = run_step(sessions, op, "CZ-MG-01", now, slot, "host:1:a", 60.0, "test")
    assert doc is not None and doc["start"] == "2026-07-15T12:15:00+08:00"
    assert len(doc["setpoint_kw"]) == 96 and doc["optimality_gap"] <= 5e-3 + 1e-9
    assert doc["defended_peak_kw"] >= 3000.0  # never below the month's metered peak
    # the 12:00 reading (1925 kWh) carried to the step's start, 12:15, through the 12:00
    # row's 200 kW discharge: 1925 - 200 x 0.25 / 0.93
    assert doc["initial"]["soc_kwh"] == pytest.approx(1925.0 - 50.0 / 0.93)
    assert "carried to 12:15" in doc["initial"]["soc_source"]
    assert doc["initial"]["month_peak_kw"] == 3000.0
    # another process, the same slot: nothing to do; the next slot: its turn
    assert run_step(sessions, op, "CZ-MG-01", now, slot, "host:2:b", 60.0, "test") is None
    with sessions() as db:
        assert claim_step(db, "CZ-MG-01", "host:2:b", slot + dt.timedelta(minutes=15), 60.0,
                          now)
        # held: a third process may not take it until the lease expires
        assert not claim_step(db, "CZ-MG-01", "host:3:c", slot + dt.timedelta(minutes=15),
                              60.0, now)
        assert claim_step(db, "CZ-MG-01", "host:3:c", slot + dt.timedelta(minutes=15), 60.0,
                          now + dt.timedelta(seconds=61))
        finish_step(db, "CZ-MG-01", "host:3:c", slot + dt.timedelta(minutes=15), done=False)
        db.commit()
    latest = client.get("/v1/sites/CZ-MG-01/setpoints", headers=h(keys["park1"]))
    assert latest.status_code == 200 and latest.json()["setpoint_kw"] == doc["setpoint_kw"]
    assert client.get("/v1/sites/CZ-MG-05/setpoints", headers=h(keys["ev"])).status_code == 404
    pva = client.get("/v1/sites/CZ-MG-01/plan-vs-actual?date=2026-07-15",
                     headers=h(keys["ev"])).json()
    assert len(pva["timestamps"]) == 96
    assert pva["planned"]["source"][49] == "setpoints"  # 12:15 decided by the step
    assert pva["actual"]["grid_import_kw"][40:43] == [1000.0, 3000.0, 2000.0]
    assert pva["planned"]["battery_kw"][49] == pytest.approx(doc["setpoint_kw"][0], abs=1e-5)


def test_the_scheduler_ticks_due_sites_and_skips_stale_ones(svc, catalog):
    _, _, sessions, app = svc
    settings = app.state.settings.model_copy(update={"operate_enabled": True})
    sched = OperateScheduler(sessions, settings, lambda db: catalog)
    fresh = dt.datetime(2026, 7, 15, 12, 50, tzinfo=CST)
    out = sched.tick(fresh)
    assert out == {"CZ-MG-01": "done"}  # CZ-MG-03's only row is from 10:00: stale
    assert sched.tick(fresh + dt.timedelta(minutes=1)) == {"CZ-MG-01": "taken"}  # slot done
    assert sched.last_round["done"] == 0 and sched.last_round["taken"] == 1
    assert sched.last_round["slot"] == "2026-07-15T12:45:00+08:00"
    with sessions() as db:
        n = db.scalar(select(func.count()).select_from(SetpointRecord)
                      .where(SetpointRecord.source == "scheduler"))
    assert n == 1
    assert sched.tick(fresh + dt.timedelta(hours=3)) == {}  # nothing fresh any more
    sched.start()
    try:
        (job,) = sched.scheduler.get_jobs()
        assert job.max_instances == 1 and job.trigger.interval == dt.timedelta(minutes=15)
    finally:
        sched.stop()


def test_the_scheduler_is_off_unless_enabled(svc):
    _, _, _, app = svc
    assert app.state.settings.operate_enabled is False
    app.state.operate.start()
    assert app.state.operate.scheduler is None


def test_health_tells_whether_this_process_runs_the_control_steps(svc):
    """/v1/health shows the scheduled control steps: off in this test app (Settings'
    default), with their cadence and no round yet."""
    client = svc[0]
    body = client.get("/v1/health").json()
    assert body["operate"] == {"enabled": False, "cadence_minutes": 15, "last_round": None}
