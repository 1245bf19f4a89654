"""The ``vpp`` command line: outputs, the fleet run, and errors without tracebacks."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import assert_valid_plan

from vpp.cli import main
from vpp.plan_io import read_plan

DATE = "2026-07-15"


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_plan_json_is_audited():
    r = run("plan", "--site", "CZ-MG-01", "--date", DATE, "--format", "json")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    assert_valid_plan(plan)
    assert plan["start"] == "2026-07-15T00:00:00+08:00"


def test_plan_table_csv_and_plot(tmp_path):
    r = run("plan", "--site", "CZ-MG-03", "--date", DATE, "--plot", str(tmp_path / "p.png"))
    assert r.exit_code == 0, r.output
    assert "savings_yuan" in r.stdout and "soc_end_kwh" in r.stdout
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = run("plan", "--site", "CZ-MG-03", "--date", DATE, "--format", "csv")
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 97
    assert lines[0].startswith("start,period,pv_forecast_kw,load_kw")
    assert lines[1].startswith("2026-07-15 00:00:00+08:00,")


def test_plan_all_writes_every_plan(tmp_path):
    out = tmp_path / "plans"
    r = run("plan", "--all", "--date", DATE, "--out", str(out))
    assert r.exit_code == 0, r.output
    files = sorted(out.glob("CZ-MG-*_2026-07-15.json"))
    assert len(files) == 30
    for f in files:
        assert_valid_plan(read_plan(f))
    assert (out / "summary_2026-07-15.csv").exists()
    assert "TOTAL" in r.stdout and "ILLUSTRATIVE" in r.stdout
    assert "[30/30]" in r.stderr
    r = run("audit", *map(str, files[:3]))
    assert r.exit_code == 0 and r.stdout.count(": ok") == 3


def test_audit_catches_a_tampered_plan(tmp_path):
    r = run("plan", "--site", "CZ-MG-01", "--date", DATE, "--format", "json")
    plan = json.loads(r.stdout)
    plan["intervals"]["grid_import_kw"][40] += 100.0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(plan))
    r = run("audit", str(path))
    assert r.exit_code == 1
    assert "energy balance off at 2026-07-15T10:00:00+08:00" in r.stdout
    # the money is checked beside the physics: 100 kW more for 15 minutes at 10:00 (flat,
    # 0.65 yuan/kWh under 426号) is 25 kWh, 16.25 yuan of energy
    energy = plan["kpis"]["energy_cost_yuan"]
    assert (f"kpis.energy_cost_yuan={energy:.6f} but recomputed {energy + 25 * 0.65:.6f}"
            in r.stdout)
    plan["intervals"]["grid_import_kw"][5] = None
    plan["intervals"]["soc_kwh"][7] = float("nan")
    path.write_text(json.dumps(plan))
    r = run("audit", str(path))
    assert r.exit_code == 1
    assert "intervals.grid_import_kw[5] is null" in r.stdout
    assert "intervals.soc_kwh[7] is nan, not a finite number" in r.stdout
    plan["intervals"]["grid_import_kw"][0] = "12.5"  # a number written as text
    path.write_text(json.dumps(plan))
    assert "intervals.grid_import_kw[0] is '12.5', not a number" in run("audit", str(path)).stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--site", "CZ-MG-99", "--date", DATE], "site_id='CZ-MG-99' is not in the fleet"),
        (["plan", "--site", "CZ-MG-01", "--gap", "0.5"], "--gap=0.5: Input should be less than "
                                                         "or equal to 0.05; allowed range"),
        (["plan", "--site", "CZ-MG-01", "--soc-initial", "2"], "--soc-initial=2: "),
        (["plan", "--site", "CZ-MG-01", "--days", "x"], "--days=x: Input should be a valid "
                                                       "integer"),
        (["plan", "--site", "CZ-MG-01", "--subsidy-rate", "0.4"], "allowed range [0, 0.3]"),
        (["plan", "--site", "CZ-MG-01", "--date", "2023-01-01"], "no version of tariff"),
        (["plan", "--site", "CZ-MG-01", "--all"], "give exactly one of --site ID or --all"),
        (["plan", "--all", "--plot", "x.png"], "--load-csv, --pv-csv and --plot are for a single"),
        (["plan", "--site", "CZ-MG-01", "--date", "15/07/2026"], "Invalid value for '--date'"),
        (["--data-dir", "/nonexistent", "sites"], "does not exist"),
    ],
)
def test_errors_exit_2_without_traceback(args, message):
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_every_bad_option_is_named_at_once():
    r = run("plan", "--site", "CZ-MG-01", "--soc-initial", "1.5", "--gap", "-1",
            "--subsidy-rate", "0.5")
    assert r.exit_code == 2
    assert "invalid plan options (3 problem(s))" in r.output
    for text in ("--soc-initial=1.5: ", "--gap=-1: ", "--subsidy-rate=0.5: "):
        assert text in r.output


def test_bad_load_csv(tmp_path):
    f = tmp_path / "load.csv"
    f.write_text("time,kw\n2026-07-15 00:00,1\n")
    r = run("plan", "--site", "CZ-MG-01", "--date", DATE, "--load-csv", str(f))
    assert r.exit_code == 2
    assert f"{f}: missing columns ['timestamp', 'load_kw']" in r.output


def test_load_csv_used(tmp_path):
    f = tmp_path / "load.csv"
    rows = [f"2026-07-15 {h:02d}:{m:02d},{1200 + h}" for h in range(24) for m in (0, 15, 30, 45)]
    f.write_text("timestamp,load_kw\n" + "\n".join(rows) + "\n")
    r = run("plan", "--site", "CZ-MG-03", "--date", DATE, "--load-csv", str(f), "--format",
            "json")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    assert plan["inputs"]["load_kw"][:5] == [1200, 1200, 1200, 1200, 1201]
    assert_valid_plan(plan)


def test_sites_and_tariff():
    r = run("sites")
    assert r.exit_code == 0
    assert "CZ-MG-30" in r.stdout and "not eligible" in r.stdout and "anti-backflow" in r.stdout
    r = run("tariff", "--date", "2025-10-02")
    assert r.exit_code == 0
    assert "10:00-14:00  deep_valley   0.3120 yuan/kWh" in r.stdout


def test_time_limited_plan_says_so_everywhere(tmp_path):
    """Two days of CZ-MG-24 cannot be proven 0 % from the optimum in 3 s: the plan comes
    back (exit 0) marked time_limit in the document, on the terminal and in the audit, which
    accepts it only as such and refuses it relabelled optimal or with a gap it does not
    have."""
    path = tmp_path / "p.json"
    r = run("plan", "--site", "CZ-MG-24", "--date", "2026-07-13", "--days", "2", "--gap", "0",
            "--time-limit", "3", "--format", "json", "--out", str(path))
    assert r.exit_code == 0, r.output
    assert "warning: CZ-MG-24: status: TIME_LIMIT - the best plan the time budget allowed, " \
           "proven within" in r.stderr
    plan = read_plan(path)
    assert plan["status"] == "time_limit"
    assert plan["solver"]["optimality_gap"] > 0
    assert any(n.startswith("time limit: the 3 s budget ran out") for n in
               plan["solver"]["notes"])
    assert_valid_plan(plan)
    r = run("audit", str(path))
    assert r.exit_code == 0
    assert f"{path}: ok as time_limit: gap " in r.stdout and "not certified" in r.stdout
    for change, problem in [({"status": "optimal"}, "in a plan whose status is optimal"),
                            ({"status": "done"}, "status 'done': allowed optimal, time_limit")]:
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**plan, **change}))
        r = run("audit", str(bad))
        assert r.exit_code == 1 and problem in r.stdout
    plan["solver"]["optimality_gap"] = 0.0
    bad.write_text(json.dumps(plan))
    r = run("audit", str(bad))
    assert r.exit_code == 1
    assert "status time_limit with optimality gap 0.000%" in r.stdout
