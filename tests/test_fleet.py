"""Several sites in one model: feeder caps, demand-response events, the decomposition that
solves uncoupled sites independently, settlement, and the flexibility envelope."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest
from conftest import assert_valid
from test_dispatch_micro import EXACT, battery, problem

from models import (
    Directions,
    DREvent,
    FeederCap,
    FleetProblem,
    GridSpec,
    solve_dispatch,
    solve_fleet,
)
from models.errors import InfeasiblePlanError, InvalidInputError
from vpp.coupled import coupling_document
from vpp.flexibility import fleet_envelope, site_envelope
from vpp.planning import PlanOptions, build_inputs


def two_sites():
    """A: 100 kW load, lossless 100 kW / 200 kWh battery, empty; B: 100 kW load, no battery.
    Prices 0.3 then 1.0 yuan/kWh, one-hour intervals."""
    a = problem([100, 100], [0.3, 1.0],
                storage=battery(power_kw=100.0, energy_kwh=200.0, soc_max_kwh=200.0,
                                eta_charge=1.0, eta_discharge=1.0))
    b = problem([100, 100], [0.3, 1.0])
    return {"A": a, "B": b}


def test_joint_equals_independent_when_no_cap_binds():
    """With a 1,000 kW feeder cap nothing couples the sites: A charges 100 kW in the cheap hour
    and discharges 100 kW in the dear one (0.3 x 200 = 60 yuan), B pays 0.3 x 100 + 1.0 x 100
    = 130 yuan, and the joint solve returns exactly the independent plans."""
    sites = two_sites()
    ind = {s: solve_dispatch(p, EXACT) for s, p in sites.items()}
    joint = solve_fleet(FleetProblem(sites, (FeederCap("f", ("A", "B"), 1000.0),)), EXACT)
    assert ind["A"].objective_yuan == pytest.approx(60.0)
    assert ind["B"].objective_yuan == pytest.approx(130.0)
    for s in sites:
        r = joint.sites[s]
        assert_valid(sites[s], r, 0.0)
        for key in ("charge_kw", "discharge_kw", "grid_import_kw", "grid_export_kw", "soc_kwh"):
            np.testing.assert_allclose(getattr(r, key), getattr(ind[s], key), atol=1e-9)
        assert r.objective_yuan == pytest.approx(ind[s].objective_yuan, abs=1e-9)
    assert joint.objective_yuan == pytest.approx(190.0)


def test_binding_feeder_cap_by_hand():
    """Cap 250 kW: in the cheap hour B's 100 kW and A's 100 kW load leave A 50 kW to charge,
    so A: 0.3 x 150 + 1.0 x 50 = 95 yuan, B: 130 yuan, fleet 225 yuan (190 without the cap)."""
    sites = two_sites()
    joint = solve_fleet(FleetProblem(sites, (FeederCap("f", ("A", "B"), 250.0),)), EXACT)
    assert joint.objective_yuan == pytest.approx(225.0, abs=1e-6)
    assert joint.sites["A"].objective_yuan == pytest.approx(95.0, abs=1e-6)
    np.testing.assert_allclose(joint.sites["A"].charge_kw, [50, 0], atol=1e-6)
    total = joint.sites["A"].grid_import_kw + joint.sites["B"].grid_import_kw
    assert total.max() <= 250.0 + 1e-6


def test_coupled_plan_says_what_the_coupling_cost_the_site():
    """Under the 250 kW cap A costs 95 yuan against 60 on its own: 35 yuan (58.33 %) above
    its stand-alone plan, B nothing; the group's certificate and the cap come along."""
    sites = two_sites()
    feeder = FeederCap("f", ("A", "B"), 250.0)
    joint = solve_fleet(FleetProblem(sites, (feeder,)), EXACT)
    alone = {s: {"solver": {"objective_yuan": solve_dispatch(p, EXACT).objective_yuan,
                            "optimality_gap": 0.0}} for s, p in sites.items()}
    index = pd.date_range("2026-07-15", periods=2, freq="1h", tz="Asia/Shanghai")
    doc = coupling_document("A", ["A", "B"], (feeder,), (), index, "shared limit of f", joint,
                            alone["A"])
    assert doc["solved_with"] == ["B"] and doc["events"] == []
    assert doc["feeders"] == [{"name": "f", "sites": ["A", "B"], "flows": "net",
                               "import_cap_kw": 250.0, "export_cap_kw": None}]
    assert doc["group_status"] == "optimal"
    assert doc["group_objective_yuan"] == pytest.approx(225.0, abs=1e-6)
    assert doc["group_optimality_gap"] == pytest.approx(0.0, abs=1e-9)
    assert doc["standalone_objective_yuan"] == pytest.approx(60.0, abs=1e-9)
    assert doc["cost_above_standalone_yuan"] == pytest.approx(35.0, abs=1e-6)
    assert doc["cost_above_standalone_share"] == pytest.approx(35.0 / 60.0, abs=1e-8)
    b = coupling_document("B", ["A", "B"], (feeder,), (), index, "x", joint, alone["B"])
    assert b["cost_above_standalone_yuan"] == pytest.approx(0.0, abs=1e-6)
    lost = coupling_document("B", ["A", "B"], (feeder,), (), index, "x", joint, None)
    assert lost["cost_above_standalone_yuan"] is None  # no stand-alone plan to compare with


def test_an_impossible_hint_changes_nothing():
    """Hints that fix B to export in both hours (B has no PV or battery, so no plan can) make
    the hinted LP infeasible; the solve falls back and still certifies the 225 yuan optimum."""
    sites = two_sites()
    zero, one = np.zeros(2), np.ones(2)
    hints = {"B": Directions(zero, one, zero, zero)}
    joint = solve_fleet(FleetProblem(sites, (FeederCap("f", ("A", "B"), 250.0),)), EXACT,
                        hints)
    assert joint.objective_yuan == pytest.approx(225.0, abs=1e-6)


def test_hinted_joint_plan_is_certified_like_the_unhinted_one(catalog):
    """The Jingkai feeder on 2026-07-15 (its independent plans draw more than the 12,800 kW
    net import cap): the joint plan with the independent plans' directions as hints and the
    one without are both within 0.1 % of the optimum, so each one's proven bound is below
    the other's cost and the costs differ by <= 0.1 %: hints change the speed, never the
    certificate (tests/test_dispatch_micro.py shows a hint closing a gap by itself)."""
    day = dt.date(2026, 7, 15)
    opts = PlanOptions()
    feeder = next(f for f in catalog.feeder_caps if f.name.startswith("Jingkai"))
    ins = {s: build_inputs(catalog, catalog.fleet.site(s), day, opts) for s in feeder.members}
    fp = FleetProblem({s: si.problem for s, si in ins.items()}, (feeder,))
    own = {s: solve_dispatch(si.problem, opts.solve_options()) for s, si in ins.items()}
    net = sum(r.grid_import_kw - r.grid_export_kw for r in own.values())
    assert net.max() > feeder.import_cap_kw  # the coupling binds
    hints = {s: Directions(r.grid_import_kw, r.grid_export_kw, r.charge_kw, r.discharge_kw)
             for s, r in own.items()}
    hinted = solve_fleet(fp, opts.solve_options(), hints)
    plain = solve_fleet(fp, opts.solve_options())
    assert {hinted.method, plain.method} <= {"lp+hint", "lp+repair", "milp"}
    for a, b in ((hinted, plain), (plain, hinted)):
        assert a.optimality_gap <= 1e-3
        assert a.objective_bound_yuan <= b.objective_yuan + 1e-6
    assert abs(hinted.objective_yuan - plain.objective_yuan) <= 1e-3 * plain.objective_yuan
    for s, p in fp.sites.items():
        assert_valid(p, hinted.sites[s], 1.0)  # feasible, one direction per interval
    total = sum(hinted.sites[s].grid_import_kw - hinted.sites[s].grid_export_kw
                for s in fp.sites)
    assert total.max() <= feeder.import_cap_kw + 1e-6


def test_impossible_feeder_cap_names_the_feeder_and_interval():
    sites = two_sites()
    with pytest.raises(InfeasiblePlanError, match=r"feeder f: at interval 0 its sites import at "
                                                  r"least 100 kW net .* above the 50 kW cap"):
        solve_fleet(FleetProblem(sites, (FeederCap("f", ("A", "B"), 50.0),)), EXACT)


def pv_and_load():
    """P: no load, 300 kW of PV, may export 300 kW at 0.4 yuan/kWh; L: 200 kW of load at
    1.0 yuan/kWh. One hour."""
    p = problem([0], [1.0], pv=[300.0], export_price=[0.4],
                grid=GridSpec(import_limit_kw=500.0, export_limit_kw=300.0))
    ld = problem([200], [1.0])
    return {"P": p, "L": ld}


def test_feeder_caps_hold_the_net_flow_at_the_head():
    """P exports 300 kW while L imports 200 kW: the feeder head carries 100 kW of reverse
    flow. A 150 kW import cap does not bind (the head imports nothing; capping L's gross
    200 kW import would make the day impossible); a 50 kW export cap does: P curtails 50 kW
    and exports 250 kW, so P earns 0.4 x 250 = 100 yuan (not 120) and L pays 200 yuan;
    fleet 100 yuan."""
    sites = pv_and_load()
    free = solve_fleet(FleetProblem(sites, (FeederCap("f", ("P", "L"), 150.0),)), EXACT)
    assert free.objective_yuan == pytest.approx(200.0 - 120.0, abs=1e-6)
    np.testing.assert_allclose(free.sites["P"].grid_export_kw, [300.0], atol=1e-6)
    capped = solve_fleet(FleetProblem(sites, (FeederCap("f", ("P", "L"), 150.0, 50.0),)),
                         EXACT)
    assert capped.objective_yuan == pytest.approx(100.0, abs=1e-6)
    assert capped.sites["P"].objective_yuan == pytest.approx(-100.0, abs=1e-6)
    assert capped.sites["L"].objective_yuan == pytest.approx(200.0, abs=1e-6)
    np.testing.assert_allclose(capped.sites["P"].pv_curtailed_kw, [50.0], atol=1e-6)
    for s, p in sites.items():
        assert_valid(p, capped.sites[s], 0.0)


def test_feeder_import_cap_counts_the_neighbours_export():
    """An import cap of 90 kW: L's 200 kW less P's 300 kW of export would leave the head
    exporting, so the cap is met - unless P may not export, when the head must carry L's
    200 kW: infeasible, and the precheck names it (at least 200 kW net above 90)."""
    sites = pv_and_load()
    r = solve_fleet(FleetProblem(sites, (FeederCap("f", ("P", "L"), 90.0),)), EXACT)
    net = sum(r.sites[s].grid_import_kw - r.sites[s].grid_export_kw for s in sites)
    assert net.max() <= 90.0 + 1e-6
    assert r.objective_yuan == pytest.approx(200.0 - 120.0, abs=1e-6)
    sites["P"] = dataclasses.replace(sites["P"], grid=GridSpec(500.0, export_limit_kw=0.0))
    with pytest.raises(InfeasiblePlanError, match=r"its sites import at least 200 kW net .* "
                                                  r"above the 90 kW cap"):
        solve_fleet(FleetProblem(sites, (FeederCap("f", ("P", "L"), 90.0),)), EXACT)


def flat_site():
    """100 kW load at 0.5 yuan/kWh in both hours; lossless 100 kW / 100 kWh battery half full,
    ending at least half full, wear 0.01 yuan/kWh. Its baseline plan idles: 100 yuan."""
    return problem([100, 100], [0.5, 0.5],
                   storage=battery(power_kw=100.0, energy_kwh=100.0, eta_charge=1.0,
                                   eta_discharge=1.0, soc_initial_kwh=50.0,
                                   degradation_yuan_per_kwh=0.01))


@pytest.mark.parametrize(("comp", "penalty", "delivered", "objective"), [
    # 40 kWh at 1 yuan pays for charging 40 kWh first (same price) and 0.4 yuan of wear
    (1.0, 0.0, 40.0, 100.0 + 0.4 - 40.0),
    # compensation below the wear: stay idle, nothing delivered, no penalty
    (0.005, 0.0, 0.0, 100.0),
    # no compensation but a shortfall penalty of 1 yuan/kWh: delivering (0.4) beats paying 40
    (0.0, 1.0, 40.0, 100.4),
])
def test_peak_shaving_event_by_hand(comp, penalty, delivered, objective):
    base = solve_dispatch(flat_site(), EXACT)
    assert base.objective_yuan == pytest.approx(100.0)
    net = {"C": base.grid_import_kw - base.grid_export_kw}
    ev = DREvent("e", "peak_shaving", 1, 2, 40.0, compensation_yuan_per_kwh=comp,
                 shortfall_penalty_yuan_per_kwh=penalty)
    r = solve_fleet(FleetProblem({"C": flat_site()}, (), (ev,), net), EXACT)
    o = r.events[0]
    assert o.delivered_kw[1] == pytest.approx(delivered, abs=1e-6)
    assert o.shortfall_kw[1] == pytest.approx(40.0 - delivered, abs=1e-6)
    assert r.objective_yuan == pytest.approx(objective, abs=1e-6)
    assert o.compensation_yuan == pytest.approx(comp * delivered, abs=1e-6)
    if delivered:
        np.testing.assert_allclose(r.sites["C"].grid_import_kw, [140, 60], atol=1e-6)
        assert r.sites["C"].objective_yuan == pytest.approx(100.4, abs=1e-6)


def test_capacity_compensation_and_valley_filling():
    """Valley filling, +30 kW for the first hour at 2 yuan/kW held: the battery charges 30 kW
    then gives it back (the price is flat), wear 0.3 yuan; compensation 60 yuan."""
    base = solve_dispatch(flat_site(), EXACT)
    net = {"C": base.grid_import_kw - base.grid_export_kw}
    ev = DREvent("v", "valley_filling", 0, 1, 30.0, compensation_yuan_per_kw=2.0)
    r = solve_fleet(FleetProblem({"C": flat_site()}, (), (ev,), net), EXACT)
    assert r.events[0].delivered_kw[0] == pytest.approx(30.0, abs=1e-6)
    assert r.events[0].compensation_yuan == pytest.approx(60.0, abs=1e-6)
    assert r.objective_yuan == pytest.approx(100.0 + 0.3 - 60.0, abs=1e-6)


def test_event_validation_names_the_problem():
    sites = two_sites()
    with pytest.raises(InvalidInputError, match=r"event e: intervals \[1, 5\) outside"):
        solve_fleet(FleetProblem(sites, (), (DREvent("e", "peak_shaving", 1, 5, 10.0),),
                                 {"A": np.zeros(2), "B": np.zeros(2)}))
    with pytest.raises(InvalidInputError, match="no baseline for participant B"):
        solve_fleet(FleetProblem(sites, (), (DREvent("e", "peak_shaving", 0, 1, 10.0),),
                                 {"A": np.zeros(2)}))


def _plan(ch, dis, soc, imp, exp, pv_used, pv_curt, storage=True):
    n = len(ch)
    return {
        "interval_minutes": 60,
        "inputs": {"timestamps": [f"2026-07-15T0{t}:00:00+08:00" for t in range(n)]},
        "intervals": {"charge_kw": ch, "discharge_kw": dis, "soc_kwh": soc,
                      "grid_import_kw": imp, "grid_export_kw": exp, "pv_used_kw": pv_used,
                      "pv_curtailed_kw": pv_curt},
        "parameters": {
            "grid": {"import_limit_kw": 500.0, "export_limit_kw": 20.0},
            "storage": {"power_kw": 100.0, "eta_charge": 0.9, "eta_discharge": 0.9,
                        "soc_min_kwh": 10.0, "soc_max_kwh": 190.0} if storage else None,
        },
    }


def test_envelope_by_hand():
    """Battery 100 kW, SOC 100 kWh after hour 0 and 55 after hour 1 (discharging 50 kW in
    hour 1), floor 10, 90 % each way; importing 200 then 150 kW; 5 kW of PV curtailed in hour 0.

    Down for 1 h from hour 0: battery min(100 - 0, (100 - 10) x 0.9 / 1) = 81, + 5 kW PV =
    86 (net import 200 + 20 export allowed is no limit). For 2 h: rating min(100, 50) = 50;
    energy min(90 x 0.9 / 1, 45 x 0.9 / 2) = 20.25; PV min(5, 0) = 0 -> 20.25.
    Up for 1 h from hour 1: rating 100 + 50 = 150, room (190 - 55) / (0.9 x 1) = 150, + PV
    in use 30 -> 180, below the 500 - 150 import headroom."""
    p = _plan(ch=[0, 0], dis=[0, 50], soc=[100, 55], imp=[200, 150], exp=[0, 0],
              pv_used=[0, 30], pv_curt=[5, 0])
    one = site_envelope(p, 1.0)
    two = site_envelope(p, 2.0)
    assert one["down_kw"].iloc[0] == pytest.approx(86.0)
    assert two["down_kw"].iloc[0] == pytest.approx(20.25)
    assert np.isnan(two["down_kw"].iloc[1])  # a 2 h window from hour 1 leaves the plan
    assert one["up_kw"].iloc[1] == pytest.approx(180.0)
    bare = site_envelope(_plan([0], [0], [0], [10], [0], [0], [0], storage=False), 1.0)
    assert bare["down_kw"].iloc[0] == 0 and bare["up_kw"].iloc[0] == 0  # nothing to move with


def test_envelope_keeps_the_cycle_cap_and_a_battery_that_may_not_export():
    """The plan of test_envelope_by_hand with a cycle cap of 0.5 x 200 kWh = 100 kWh a day,
    50 of them discharged in hour 1: 50 kWh are left, so 1 h of extra discharge from hour 0
    is at most 50 kW (+ 5 kW PV = 55); for 2 h the SOC's 20.25 kW binds before the cap's
    25. A battery that may not export, importing 30 kW in hour 0, displaces at most those
    30 kW: 30 + 5 = 35."""
    p = _plan(ch=[0, 0], dis=[0, 50], soc=[100, 55], imp=[200, 150], exp=[0, 0],
              pv_used=[0, 30], pv_curt=[5, 0])
    p["parameters"]["storage"].update(max_cycles_per_day=0.5, energy_kwh=200.0)
    assert site_envelope(p, 1.0)["down_kw"].iloc[0] == pytest.approx(55.0)
    assert site_envelope(p, 2.0)["down_kw"].iloc[0] == pytest.approx(20.25)
    p["intervals"]["grid_import_kw"] = [30, 150]
    p["parameters"]["storage"].update(max_cycles_per_day=None, export_allowed=False)
    assert site_envelope(p, 1.0)["down_kw"].iloc[0] == pytest.approx(35.0)


def test_fleet_envelope_feeder_headroom_is_net():
    """Two sites behind one feeder, import cap 300 kW, export cap 50 kW: S1 imports 200 kW
    and can move 100 kW either way, S2 exports 80 kW and can move 40 kW either way. The head
    carries 200 - 80 = 120 kW: up to 300 leaves 180 (>= 140, no cut); down to -50 leaves 170
    (>= 140, no cut). With S2 exporting 250 kW instead the head carries -50 kW: up 350
    (no cut), down 0 - the export cap is reached."""
    def site(imp, exp, room):
        p = _plan(ch=[0], dis=[0], soc=[100], imp=[imp], exp=[exp], pv_used=[room],
                  pv_curt=[room], storage=False)
        p["parameters"]["grid"] = {"import_limit_kw": 1000.0, "export_limit_kw": 1000.0}
        return p
    feeder = (FeederCap("f", ("S1", "S2"), 300.0, 50.0),)
    env = fleet_envelope({"S1": site(200, 0, 100), "S2": site(0, 80, 40)}, 1.0, feeder)
    assert env["fleet_up_kw"].iloc[0] == pytest.approx(140.0)
    assert env["fleet_down_kw"].iloc[0] == pytest.approx(140.0)
    env = fleet_envelope({"S1": site(200, 0, 100), "S2": site(0, 250, 40)}, 1.0, feeder)
    assert env["fleet_up_kw"].iloc[0] == pytest.approx(140.0)
    assert env["fleet_down_kw"].iloc[0] == pytest.approx(0.0)
