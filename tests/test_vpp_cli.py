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


def test_an_event_on_part_of_a_feeder_keeps_the_feeders_cap(small):
    """The cap is on the flow of every site behind the feeder: an event for CZ-MG-01 alone
    re-plans CZ-MG-03 with it (paid nothing), and the two together stay within 4,950 kW at
    every interval, outside the event too."""
    (small / "tight2.toml").write_text(
        'version = "t"\nsource = "test"\n[[feeders]]\nname = "F1"\n'
        'site_ids = ["CZ-MG-01", "CZ-MG-03"]\nimport_cap_kw = 4950.0\n', encoding="utf-8")
    (small / "one.json").write_text(json.dumps({"events": [
        {"id": "one", "type": "peak_shaving", "start": f"{DATE}T17:00", "end": f"{DATE}T19:00",
         "requested_mw": 0.5, "compensation_yuan_per_kwh": 1.0, "sites": ["CZ-MG-01"]}]}))
    out = small / "part"
    r = run("--fleet", str(small / "fleet.toml"), "--feeders", str(small / "tight2.toml"),
            "plan", "--all", "--date", DATE, "--jobs", "1", "--events",
            str(small / "one.json"), "--out", str(out))
    assert r.exit_code == 0, r.output
    plans = {s: json.loads((out / f"{s}_{DATE}.json").read_text())
             for s in ("CZ-MG-01", "CZ-MG-03")}
    head = sum(np.subtract(p["intervals"]["grid_import_kw"], p["intervals"]["grid_export_kw"])
               for p in plans.values())
    assert head.max() <= 4950.0 + 1e-3
    assert plans["CZ-MG-01"]["coupling"]["solved_with"] == ["CZ-MG-03"]
    assert plans["CZ-MG-01"]["coupling"]["events"][0]["participants"] == ["CZ-MG-01"]
    settle = pd.read_csv(out / f"settlement_{DATE}.csv", index_col=0)
    assert settle.loc["CZ-MG-03", "delivered [kWh]"] == 0.0
    assert settle.loc["CZ-MG-03", "compensation [yuan]"] == 0.0
    assert "breaks its cap" not in r.output


def test_a_feeder_neighbour_cannot_undo_a_paid_event(small):
    """CZ-MG-01 and CZ-MG-03 behind a 4,600 kW cap that binds at 10:00-12:00; CZ-MG-01 alone
    sheds 0.3 MW there. Left free, CZ-MG-03 spent the headroom CZ-MG-01 freed (300 kW more
    from 11:00): 600 kWh were paid for 300 kWh at the feeder head. A bystander may help but
    not undo: the head moves by at least what is credited, in every interval."""
    (small / "f4600.toml").write_text(
        'version = "t"\nsource = "test"\n[[feeders]]\nname = "F1"\n'
        'site_ids = ["CZ-MG-01", "CZ-MG-03"]\nimport_cap_kw = 4600.0\n', encoding="utf-8")
    (small / "shed01.json").write_text(json.dumps({"events": [
        {"id": "one", "type": "peak_shaving", "start": f"{DATE}T10:00", "end": f"{DATE}T12:00",
         "requested_mw": 0.3, "compensation_yuan_per_kwh": 3.0,
         "shortfall_penalty_yuan_per_kwh": 5.0, "sites": ["CZ-MG-01"]}]}))
    out = small / "shed"
    r = run("--fleet", str(small / "fleet.toml"), "--feeders", str(small / "f4600.toml"),
            "plan", "--all", "--date", DATE, "--jobs", "1", "--events",
            str(small / "shed01.json"), "--out", str(out))
    assert r.exit_code == 0, r.output

    def net(name):
        p = json.loads((out / name).read_text())
        return np.subtract(p["intervals"]["grid_import_kw"], p["intervals"]["grid_export_kw"])

    w = slice(40, 48)
    head = sum(net(f"{s}_{DATE}.json") - net(f"{s}_{DATE}_baseline.json")
               for s in ("CZ-MG-01", "CZ-MG-03"))[w]
    event = json.loads((out / f"vpp_{DATE}.json").read_text())["events"][0]
    assert event["delivered_kwh"] == pytest.approx(600.0, abs=1e-3)
    assert np.all(-head >= np.asarray(event["delivered_kw"]) - 1e-2)  # 1e-3 kW of slack
    three = net(f"CZ-MG-03_{DATE}.json") - net(f"CZ-MG-03_{DATE}_baseline.json")
    assert three[w].max() <= 1e-2


def test_shipped_jingkai_feeder_keeps_its_cap_under_an_event_for_one_of_its_sites(tmp_path):
    """The shipped fleet on 2026-07-15, an event for CZ-MG-19 alone: planned on its own
    against the Jingkai cap, CZ-MG-19 imported 4,396 kW at 00:45 while CZ-MG-20 and -22 kept
    7,788 and 651 kW, 12,835 kW at the head against the 12,800 kW cap. With the feeder's
    other sites in the group the head stays within 12,800 kW at every interval."""
    (tmp_path / "e.json").write_text(json.dumps({"events": [
        {"id": "S19", "type": "peak_shaving", "start": f"{DATE}T17:00",
         "end": f"{DATE}T19:00", "requested_mw": 1.0, "compensation_yuan_per_kwh": 1.0,
         "shortfall_penalty_yuan_per_kwh": 5.0, "sites": ["CZ-MG-19"]}]}))
    r = run("plan", "--all", "--date", DATE, "--events", str(tmp_path / "e.json"), "--out",
            str(tmp_path / "out"))
    assert r.exit_code == 0, r.output
    vpp = json.loads((tmp_path / "out" / f"vpp_{DATE}.json").read_text())
    jingkai = next(f for f in vpp["feeders"] if f["feeder"].startswith("Jingkai"))
    assert jingkai["import_cap_kw"] == 12800.0 and not jingkai["violated"]
    head = sum(np.subtract(p["intervals"]["grid_import_kw"], p["intervals"]["grid_export_kw"])
               for p in (json.loads((tmp_path / "out" / f"{s}_{DATE}.json").read_text())
                         for s in jingkai["sites"]))
    assert head.max() <= 12800.0 + 1e-3


def test_events_that_would_be_credited_twice_are_refused(small):
    """Two events with one id, or two that share a site and an interval, would both be
    credited with one reduction against one baseline."""
    ev = {"type": "peak_shaving", "start": f"{DATE}T17:00", "end": f"{DATE}T19:00",
          "requested_mw": 1.0}
    for events, message in (
            ([{**ev, "id": "a"}, {**ev, "id": "a", "sites": ["CZ-MG-02"]}],
             "event id(s) ['a'] used more than once"),
            ([{**ev, "id": "a", "sites": ["CZ-MG-01", "CZ-MG-03"]},
              {**ev, "id": "b", "start": f"{DATE}T18:00", "end": f"{DATE}T20:00",
               "sites": ["CZ-MG-03"]},
              {**ev, "id": "c", "sites": ["CZ-MG-02"]}],
             "events a and b overlap at 2026-07-15 18:00-19:00 on CZ-MG-03")):
        (small / "twice.json").write_text(json.dumps({"events": events}))
        r = run("--fleet", str(small / "fleet.toml"), "plan", "--all", "--date", DATE,
                "--jobs", "1", "--events", str(small / "twice.json"))
        assert r.exit_code == 2, r.output
        assert message in r.output and "planning" not in r.output  # before any solve
        assert "events a and c" not in r.output  # disjoint sites may overlap in time


def test_flex_refuses_a_partial_interval_and_two_plans_of_a_site(small, tmp_path):
    r = run("--fleet", str(small / "fleet.toml"), "flex", "--duration", "0.3")
    assert r.exit_code == 2 and "--duration 0.3 h: a whole number of 15-minute" in r.output
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps(plan_site(
            Catalog.load(fleet=small / "fleet.toml"), "CZ-MG-04", dt.date(2026, 7, 15))))
    r = run("--fleet", str(small / "fleet.toml"), "flex", "--plans", str(tmp_path))
    assert r.exit_code == 2 and "two plans of CZ-MG-04: a.json and b.json" in r.output


@pytest.mark.parametrize(("event", "message"), [
    ({"sites": ["CZ-MG-01", "CZ-MG-01"]}, "sites ['CZ-MG-01'] listed more than once"),
    ({"sites": []}, "an empty list: name at least one site"),
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


def test_a_bad_feeder_file_is_named_all_at_once(small):
    """A negative cap (the schema), an unknown site, a site listed twice and a feeder
    without a cap (the fleet's checks) come in one message."""
    (small / "bad_feeders.toml").write_text(
        'version = "t"\nsource = "test"\n[[feeders]]\nname = "F1"\n'
        'site_ids = ["CZ-MG-01", "CZ-MG-99", "CZ-MG-01"]\nimport_cap_kw = -5.0\n'
        '[[feeders]]\nname = "F2"\nsite_ids = ["CZ-MG-02"]\n', encoding="utf-8")
    r = run("--fleet", str(small / "fleet.toml"), "--feeders", str(small / "bad_feeders.toml"),
            "plan", "--all", "--date", DATE, "--jobs", "1")
    assert r.exit_code == 2, r.output
    assert "(4 problem(s))" in r.output
    for text in ("feeders.0.import_cap_kw: Input should be greater than or equal to 0",
                 "feeders[0] (F1): site CZ-MG-99 is not in the fleet",
                 "feeders[0] (F1): site CZ-MG-01 listed twice",
                 "feeders[1] (F2): give import_cap_kw or export_cap_kw"):
        assert text in r.output
