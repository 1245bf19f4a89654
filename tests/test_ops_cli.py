"""Live operation from the command line on a real SQLite database: ``vpp measurements
import`` (the API's validation), ``vpp state``, ``vpp operate``, and ``vpp plan`` taking the
stored state or warning loudly without it; ``vpp --help`` stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from service.cli import main

NOW = "2026-07-15T13:00:00+08:00"
CSV = """timestamp,grid_import_kw,battery_kw,soc_kwh
2026-07-15T10:00:00+08:00,1000,100,2000
2026-07-15T10:15:00+08:00,3000,100,1975
2026-07-15T10:30:00+08:00,2000,100,1950
2026-07-15T12:00:00+08:00,1500,200,1925
"""


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'ops.sqlite3'}"
    path = tmp_path / "m.csv"
    path.write_text(CSV, "utf-8")
    r = run("measurements", "import", str(path), "--site", "CZ-MG-01", "--db", url,
            "--now", NOW)
    assert r.exit_code == 0, r.output
    assert "stored 4 rows from 2026-07-15T10:00:00+08:00 to 2026-07-15T12:00:00+08:00" in r.stdout
    assert "5 missing 15-minute steps" in r.output
    # the first import creates the database file, and says so (a mistyped --db shows)
    assert f"note: created a new database file {tmp_path / 'ops.sqlite3'}" in r.output
    again = run("measurements", "import", str(path), "--site", "CZ-MG-01", "--db", url,
                "--now", NOW)
    assert again.exit_code == 0 and "created a new database" not in again.output
    return url, tmp_path


def test_a_bad_file_is_named_row_by_row_and_nothing_is_stored(db):
    url, tmp = db
    bad = tmp / "bad.csv"
    bad.write_text("timestamp,grid_import_kw,soc_kwh\n2026-07-15T12:15:00+08:00,100,\n"
                   "2026-07-15T12:30:00+08:00,-5,\n2026-07-15T12:45:00,1,5000\n", "utf-8")
    r = run("measurements", "import", str(bad), "--site", "CZ-MG-01", "--db", url, "--now", NOW)
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "row 2 (2026-07-15T12:30:00+08:00): grid_import_kw=-5.0: out of range" in r.output
    assert "row 3 (2026-07-15T12:45:00): timestamp" in r.output and "no UTC offset" in r.output
    st = json.loads(run("state", "--site", "CZ-MG-01", "--db", url, "--now", NOW,
                        "--format", "json").stdout)
    assert st["intervals_measured"] == 4  # the good first row was not stored either


def test_state_table_and_json(db):
    url, _ = db
    r = run("state", "--site", "CZ-MG-01", "--db", url, "--now", NOW)
    assert r.exit_code == 0, r.output
    assert "month-to-date peak          3,000.000 kW at 2026-07-15T10:15:00+08:00" in r.stdout
    assert "demand charge implied       120,000.000 yuan" in r.stdout
    assert "subsidy it would earn       22.500 yuan (rule peak_flat" in r.stdout
    st = json.loads(run("state", "--site", "CZ-MG-01", "--db", url, "--now", NOW,
                        "--format", "json").stdout)
    assert st["energy_cost_yuan"] == 1121.25 and st["soc_kwh"] == 1925.0


def test_reading_commands_refuse_a_missing_database_file_instead_of_creating_it(tmp_path):
    missing = tmp_path / "typo.sqlite3"
    url = f"sqlite:///{missing}"
    for args in (("state", "--site", "CZ-MG-01"), ("ledger", "--site", "CZ-MG-01"),
                 ("operate", "--site", "CZ-MG-01", "--now", NOW)):
        r = run(*args, "--db", url)
        assert r.exit_code == 1, (args, r.output)
        assert f"no database file {missing}" in r.output and "Traceback" not in r.output
        assert not missing.exists()


def test_operate_stores_setpoints_and_prints_them(db):
    url, _ = db
    r = run("operate", "--site", "CZ-MG-01", "--db", url, "--now", "2026-07-15T12:20:00+08:00",
            "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["start"] == "2026-07-15T12:15:00+08:00" and len(doc["setpoint_kw"]) == 96
    assert doc["defended_peak_kw"] >= 3000.0 and doc["optimality_gap"] <= 5e-3 + 1e-9
    r = run("operate", "--site", "CZ-MG-01", "--db", url, "--now", "2026-07-15T12:35:00+08:00")
    assert r.exit_code == 0, r.output
    assert "CZ-MG-01 decided 2026-07-15T12:35:00+08:00: set-point now" in r.stdout
    r = run("operate", "--all", "--db", url, "--now", "2026-07-15T18:00:00+08:00")
    assert r.exit_code == 0 and "no site with a battery in service" in r.output
    r = run("operate", "--site", "CZ-MG-01", "--db", url, "--cadence", "20")
    assert r.exit_code == 2 and "--cadence" in r.output and "multiple of 15" in r.output
    r = run("operate", "--site", "CZ-MG-01", "--loop", "--now", NOW, "--db", url)
    assert r.exit_code == 2 and "--now replays one step" in r.output


def test_plan_takes_the_stored_state_or_warns_loudly(db, tmp_path):
    url, _ = db
    out = tmp_path / "plan.json"
    r = run("plan", "--site", "CZ-MG-01", "--date", "2026-07-15", "--db", url, "--format",
            "json", "--out", str(out))
    assert r.exit_code == 0, r.output
    plan = json.loads(out.read_text("utf-8"))
    assert plan["initial_state"]["month_peak_kw"] == 3000.0
    assert plan["options"]["month_peak_kw"] == 3000.0 and "WARNING" not in r.output
    r = run("plan", "--site", "CZ-MG-01", "--date", "2026-07-15", "--db", url, "--no-state",
            "--format", "json", "--out", str(out))
    assert r.exit_code == 0 and "WARNING: month-to-date peak 0 kW on 2026-07-15" in r.output
    assert json.loads(out.read_text("utf-8"))["initial_state"]["month_peak_source"].startswith(
        "default 0")
    r = run("plan", "--site", "CZ-MG-01", "--date", "2026-07-01", "--no-state", "--format",
            "json", "--out", str(out))
    assert r.exit_code == 0 and "WARNING" not in r.output  # the first of the month
    missing = f"sqlite:///{tmp_path / 'none.sqlite3'}"
    r = run("plan", "--site", "CZ-MG-01", "--date", "2026-07-15", "--db", missing,
            "--month-peak-kw", "4200", "--format", "json", "--out", str(out))
    assert r.exit_code == 0 and "WARNING" not in r.output
    assert not (tmp_path / "none.sqlite3").exists()  # reading the state creates nothing
    assert json.loads(out.read_text("utf-8"))["initial_state"]["month_peak_source"] == (
        "option month_peak_kw")


def test_vpp_help_lists_operations_without_importing_them():
    code = ("import sys; from click.testing import CliRunner; from service.cli import main; "
            "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0; "
            "assert all(c in r.output for c in ('measurements', 'state', 'operate')); "
            "heavy = {'fastapi', 'sqlalchemy', 'pvlib', 'pandas', 'apscheduler', "
            "'service.cli_ops'} & set(sys.modules); assert not heavy, heavy")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_operate_table_shows_hourly_means_and_the_soc_at_each_hours_end():
    from service.cli_ops import hourly_table

    doc = {"timestamps": [f"2026-07-15T12:{m:02d}:00+08:00" for m in (0, 15, 30, 45)]
           + [f"2026-07-15T13:{m:02d}:00+08:00" for m in (0, 15, 30, 45)],
           "setpoint_kw": [100.0, 200.0, -300.0, 400.0, 0.0, 0.0, 0.0, -800.0],
           "grid_import_kw": [1000.0] * 4 + [2000.0, 2000.0, 3000.0, 3000.0],
           "soc_kwh": [1, 2, 3, 4, 5, 6, 7, 8]}
    lines = hourly_table(doc).splitlines()
    assert lines[1].split() == ["2026-07-15T12:00", "100.0", "1,000.0", "4.0"]
    assert lines[2].split() == ["2026-07-15T13:00", "-200.0", "2,500.0", "8.0"]


def test_serve_stops_before_saying_it_serves_when_the_port_is_taken(tmp_path):
    """`vpp serve` on a port another process listens on ends with one clear line, exit 1
    (it printed "serving on ..." and then failed inside uvicorn)."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run("serve", "--port", str(port), "--no-operate",
                "--db", f"sqlite:///{tmp_path / 's.sqlite3'}")
    assert r.exit_code == 1, r.output
    assert f"cannot listen on 127.0.0.1:{port}" in r.output and "serving on" not in r.output
