"""The VPP from the command line: a small fleet with a feeder, events, settlement, plots,
the flexibility envelope, and clear errors for bad event files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import assert_valid_plan

from vpp.catalog import DEFAULT_FLEET, Catalog, data_dir
from vpp.cli import main
from vpp.planning import plan_site

DATE = "2026-07-15"


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """The first four shipped sites as their own fleet, behind one feeder."""
    d = tmp_path_factory.mktemp("vpp")
    text = (data_dir() / DEFAULT_FLEET).read_text(encoding="utf-8")
    head, *blocks = text.split("\n[[sites]]\n")
    (d / "fleet.toml").write_text(head + "".join("\n[[sites]]\n" + b for b in blocks[:4]),
                                  encoding="utf-8")
    (d / "feeders.toml").write_text(
        'version = "t"\nsource = "test"\n[[feeders]]\nname = "F1"\n'
        'site_ids = ["CZ-MG-01", "CZ-MG-02", "CZ-MG-03", "CZ-MG-04"]\n'
        "import_cap_kw = 100000.0\n", encoding="utf-8")
    (d / "events.json").write_text(json.dumps({"events": [
        {"id": "evening", "type": "peak_shaving", "start": f"{DATE}T17:00",
         "end": f"{DATE}T18:00", "requested_mw": 2.0, "compensation_yuan_per_kwh": 4.0,
         "shortfall_penalty_yuan_per_kwh": 2.0}]}), encoding="utf-8")
    return d


def test_events_feeders_settlement_and_plots(small):
    out = small / "out"
    r = run("--fleet", str(small / "fleet.toml"), "--feeders", str(small / "feeders.toml"),
            "plan", "--all", "--date", DATE, "--jobs", "1", "--events",
            str(small / "events.json"), "--out", str(out), "--plot-fleet",
            str(small / "fleet.png"), "--plot-events", str(small / "events.png"))
    assert r.exit_code == 0, r.output
    assert "Demand-response events" in r.stdout and "Settlement per site" in r.stdout
    report = json.loads((out / f"vpp_{DATE}.json").read_text())
    ev = report["events"][0]
    assert ev["requested_kw"] == 2000.0
    delivered, short = np.array(ev["delivered_kw"]), np.array(ev["shortfall_kw"])
    # at 17:00 the batteries already discharge at full power in the baselines: what cannot
    # be delivered is reported as shortfall, never silently dropped
    np.testing.assert_allclose(delivered + short, 2000.0, atol=1e-2)
    assert delivered.max() == pytest.approx(2000.0, abs=1e-2) and short.sum() > 0
    # the report rounds each interval's kW to 3 decimals: at most 5e-4 kW off each
    rounding = 0.25 * 5e-4 * len(delivered)
    assert ev["compensation_yuan"] == pytest.approx(4.0 * 0.25 * delivered.sum(),
                                                    abs=4.0 * rounding)
    assert ev["shortfall_penalty_yuan"] == pytest.approx(2.0 * 0.25 * short.sum(),
                                                         abs=2.0 * rounding)
    settle = pd.read_csv(out / f"settlement_{DATE}.csv", index_col=0)
    assert settle.loc["TOTAL", "delivered [kWh]"] == pytest.approx(ev["delivered_kwh"],
                                                                   abs=1e-2)
    assert settle.loc["TOTAL", "compensation [yuan]"] == pytest.approx(ev["compensation_yuan"],
                                                                       rel=1e-6)
    for sid in ("CZ-MG-01", "CZ-MG-02", "CZ-MG-03", "CZ-MG-04"):
        plan = json.loads((out / f"{sid}_{DATE}.json").read_text())
        base = json.loads((out / f"{sid}_{DATE}_baseline.json").read_text())
        assert_valid_plan(base)
        c = plan["coupling"]
        assert c["group_optimality_gap"] <= 1e-3 and c["group_status"] == "optimal"
        assert c["events"] == [{
            "id": "evening", "type": "peak_shaving", "start": f"{DATE}T17:00:00+08:00",
            "end": f"{DATE}T18:00:00+08:00", "requested_kw": 2000.0,
            "compensation_yuan_per_kwh": 4.0, "compensation_yuan_per_kw": 0.0,
            "shortfall_penalty_yuan_per_kwh": 2.0,
            "participants": ["CZ-MG-01", "CZ-MG-02", "CZ-MG-03", "CZ-MG-04"]}]
        assert c["feeders"][0]["flows"] == "net"
        # the stand-alone plan is the baseline here (the loose feeder binds nothing)
        assert c["standalone_objective_yuan"] == base["solver"]["objective_yuan"]
        assert c["cost_above_standalone_yuan"] == pytest.approx(
            plan["solver"]["objective_yuan"] - base["solver"]["objective_yuan"], abs=1e-9)
        extra = plan["kpis"]["net_cost_yuan"] - base["kpis"]["net_cost_yuan"]
        assert settle.loc[sid, "extra cost [yuan]"] == pytest.approx(extra, abs=1e-3)
        # the event changed what the site imports by what the settlement says it delivered
        t = slice(68, 72)
        moved = (np.subtract(base["intervals"]["grid_import_kw"][t],
                             plan["intervals"]["grid_import_kw"][t])
                 + np.subtract(plan["intervals"]["grid_export_kw"][t],
                               base["intervals"]["grid_export_kw"][t])).sum() * 0.25
        assert moved == pytest.approx(settle.loc[sid, "delivered [kWh]"], abs=1e-2)
    for png in ("fleet.png", "events.png"):
        assert (small / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = run("--fleet", str(small / "fleet.toml"), "flex", "--plans", str(out), "--duration",
            "2", "--out", str(small / "flex.csv"))
    assert r.exit_code == 0, r.output
    env = pd.read_csv(small / "flex.csv", index_col=0)
    assert len(env) == 96 and (env["fleet_down_kw"].dropna() >= 0).all()
    assert env["fleet_down_kw"].iloc[88:].isna().sum() == 7  # 2 h windows past midnight


def test_binding_feeder_is_solved_jointly(small):
    """A cap below what the independent plans import makes the feeder's sites re-planned
    together; the report says so and the plans keep the cap."""
    (small / "tight.toml").write_text(
        'version = "t"\nsource = "test"\n[[feeders]]\nname = "F1"\n'
        'site_ids = ["CZ-MG-01", "CZ-MG-03"]\nimport_cap_kw = 4950.0\n', encoding="utf-8")
    out = small / "tight"
    r = run("--fleet", str(small / "fleet.toml"), "--feeders", str(small / "tight.toml"),
            "plan", "--all", "--date", DATE, "--jobs", "1", "--out", str(out))
    assert r.exit_code == 0, r.output
    rep = json.loads((out / f"vpp_{DATE}.json").read_text())["feeders"][0]
    assert rep["solved_jointly"] and rep["peak_net_import_kw"] <= 4950.0 + 1e-3
    assert rep["flows"] == "net"
    p1 = json.loads((out / f"CZ-MG-01_{DATE}.json").read_text())
    c = p1["coupling"]
    assert c["solved_with"] == ["CZ-MG-03"] and c["events"] == []
    assert c["feeders"] == [{"name": "F1", "sites": ["CZ-MG-01", "CZ-MG-03"], "flows": "net",
                             "import_cap_kw": 4950.0, "export_cap_kw": None}]
    alone = plan_site(Catalog.load(fleet=small / "fleet.toml"), "CZ-MG-01",
                      dt.date(2026, 7, 15))
    assert c["standalone_objective_yuan"] == pytest.approx(alone["solver"]["objective_yuan"],
                                                           rel=1e-9)
    above = p1["solver"]["objective_yuan"] - alone["solver"]["objective_yuan"]
    assert c["cost_above_standalone_yuan"] == pytest.approx(above, abs=1e-6)
    assert c["cost_above_standalone_share"] == pytest.approx(
        above / alone["solver"]["objective_yuan"], rel=1e-6)
    assert any("against its stand-alone plan" in n for n in p1["solver"]["notes"])
    assert_valid_plan(p1)


@pytest.mark.parametrize(("event", "message"), [
    ({"start": "2026-07-16T17:00", "end": "2026-07-16T18:00"}, "lies outside the planned"),
    ({"start": f"{DATE}T17:05", "end": f"{DATE}T18:00"}, "15-minute boundaries"),
    ({"type": "spinning_reserve"}, "type"),
    ({"requested_mw": -1}, "requested_mw"),
    ({"sites": ["CZ-MG-99"]}, "CZ-MG-99"),
])
def test_bad_event_files_are_named(small, event, message):
    base = {"id": "x", "type": "peak_shaving", "start": f"{DATE}T17:00",
            "end": f"{DATE}T18:00", "requested_mw": 1.0}
    (small / "bad.json").write_text(json.dumps({"events": [{**base, **event}]}))
    r = run("--fleet", str(small / "fleet.toml"), "plan", "--all", "--date", DATE,
            "--jobs", "1", "--events", str(small / "bad.json"))
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
