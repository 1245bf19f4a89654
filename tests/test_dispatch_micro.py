"""Hand-solved micro cases: one site, 4 intervals, the exact optimum derived in each docstring."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import assert_valid

from models import (
    DispatchProblem,
    GridSpec,
    ShiftableLoad,
    SolveOptions,
    StorageSpec,
    solve_dispatch,
)

EXACT = SolveOptions(mip_rel_gap=0.0)


def problem(load, price, *, pv=None, export_price=None, subsidy=None, storage=None,
            grid=None, shiftable=(), dt_h=1.0) -> DispatchProblem:
    n = len(load)
    return DispatchProblem(
        dt_h=dt_h,
        load_kw=np.asarray(load, dtype=float),
        pv_kw=np.zeros(n) if pv is None else np.asarray(pv, dtype=float),
        import_price_yuan_per_kwh=np.asarray(price, dtype=float),
        export_price_yuan_per_kwh=np.zeros(n) if export_price is None
        else np.asarray(export_price, dtype=float),
        subsidy_yuan_per_kwh=np.zeros(n) if subsidy is None else np.asarray(subsidy, float),
        day_of_interval=np.zeros(n, dtype=int),
        storage=storage,
        grid=grid or GridSpec(import_limit_kw=1000.0),
        shiftable=tuple(shiftable),
    )


def battery(**kw) -> StorageSpec:
    base = dict(power_kw=50.0, energy_kwh=100.0, eta_charge=0.9, eta_discharge=0.9,
                soc_min_kwh=0.0, soc_max_kwh=100.0, soc_initial_kwh=0.0)
    return StorageSpec(**{**base, **kw})


def solve(p: DispatchProblem, opts: SolveOptions = EXACT):
    r = solve_dispatch(p, opts)
    assert_valid(p, r, opts.mip_rel_gap)
    return r


def test_arbitrage_two_cheap_two_dear_hours():
    """Load 100 kW, prices 0.3/0.3/1.0/1.0, 50 kW / 100 kWh battery, 90 % each way, empty.

    Charge 50 kW in both cheap hours: 100 kWh from the grid, SOC 90 kWh (cap 100 not reached);
    discharge 90 x 0.9 = 81 kWh in the dear hours. Each kWh charged costs 0.3 and returns
    0.81 yuan, so charging fully is optimal:
    0.3 x (150 + 150) + 1.0 x (200 - 81) = 90 + 119 = 209 yuan (no storage: 260).
    """
    r = solve(problem([100] * 4, [0.3, 0.3, 1.0, 1.0], storage=battery()))
    assert r.objective_yuan == pytest.approx(209.0, abs=1e-6)
    np.testing.assert_allclose(r.charge_kw, [50, 50, 0, 0], atol=1e-6)
    assert r.discharge_kw.sum() == pytest.approx(81.0, abs=1e-6)
    assert r.soc_kwh[1] == pytest.approx(90.0, abs=1e-6)
    assert r.soc_kwh[-1] == pytest.approx(0.0, abs=1e-6)
    assert r.optimality_gap == 0.0


def test_daily_cycle_cap_limits_discharge():
    """Same day, cap 0.5 cycles/day: discharge <= 50 kWh, so charge only 50 / 0.81 kWh.

    0.3 x 50/0.81 = 18.5185 yuan of charging saves 50 yuan: 260 + 18.518519 - 50 = 228.518519.
    """
    r = solve(problem([100] * 4, [0.3, 0.3, 1.0, 1.0], storage=battery(max_cycles_per_day=0.5)))
    assert r.objective_yuan == pytest.approx(260 + 0.3 * 50 / 0.81 - 50, abs=1e-6)
    assert r.discharge_kw.sum() == pytest.approx(50.0, abs=1e-6)


@pytest.mark.parametrize(
    ("wear", "expected"),
    [(0.5, 209.0 + 0.5 * 81), (0.7, 260.0)],
    ids=["wear-below-spread", "wear-above-spread"],
)
def test_degradation_cost(wear, expected):
    """Net value of a discharged kWh is 1.0 - 0.3/0.81 = 0.6296 yuan before wear.

    Wear 0.5 yuan/kWh still pays: 209 + 0.5 x 81 = 249.5. Wear 0.7 does not: idle, 260.
    """
    r = solve(problem([100] * 4, [0.3, 0.3, 1.0, 1.0],
                      storage=battery(degradation_yuan_per_kwh=wear)))
    assert r.objective_yuan == pytest.approx(expected, abs=1e-6)


def test_subsidy_cycling_needs_one_direction_per_interval():
    """Flat 0.5 yuan/kWh, subsidy 0.3 on discharge, 90 % each way, SOC 50 kWh back to 50.

    With charge C and discharge D [kWh], the cost is 200 + 0.5 C - 0.8 D and the terminal SOC
    needs D <= 0.81 C, so every charged kWh gains 0.8 x 0.81 - 0.5 = 0.148 yuan.
    With one direction per interval, k charging hours allow C <= 50 k and D <= 50 (4 - k):
    k = 2 gives C = 100, D = 81 (feasible as discharge 36-45, charge, charge, discharge the
    rest), a gain of 14.8, so the optimum is 185.2 yuan (k = 3: 9.14; k = 1: 7.4).
    The LP relaxation (ch/P + dis/P <= 1) reaches C = 200/1.81: 183.646 yuan, 0.84 % lower,
    so the solver must go beyond the LP to certify this plan.
    """
    r = solve(problem([100] * 4, [0.5] * 4, subsidy=[0.3] * 4,
                      storage=battery(soc_initial_kwh=50.0)))
    assert r.objective_yuan == pytest.approx(185.2, abs=1e-6)
    assert r.charge_kw.sum() == pytest.approx(100.0, abs=1e-6)
    assert r.discharge_kw.sum() == pytest.approx(81.0, abs=1e-6)
    assert r.method == "milp"
    assert r.objective_bound_yuan == pytest.approx(185.2, abs=1e-6)


def test_subsidy_cycling_default_gap_is_certified():
    """At the default 0.1 % gap the plan is within 0.1 % of 185.2 and never below it."""
    r = solve(problem([100] * 4, [0.5] * 4, subsidy=[0.3] * 4,
                      storage=battery(soc_initial_kwh=50.0)), SolveOptions())
    assert 185.2 - 1e-6 <= r.objective_yuan <= 185.2 * 1.001
    assert r.optimality_gap <= 1e-3


def test_auto_and_milp_agree():
    """The LP/repair path and the plain MILP reach the same optimum on the subsidy case."""
    p = problem([100] * 4, [0.5] * 4, subsidy=[0.3] * 4, storage=battery(soc_initial_kwh=50.0))
    auto = solve(p, SolveOptions(mip_rel_gap=0.0, method="auto"))
    milp = solve(p, SolveOptions(mip_rel_gap=0.0, method="milp"))
    assert auto.objective_yuan == pytest.approx(milp.objective_yuan, abs=1e-6)


def test_lossless_subsidy_cycling_repaired_lp():
    """With 100 % efficiency the relaxation is tight: ch + dis <= 50 per interval and
    SOC 50 -> 50 give D <= 100 kWh; cost 0.5 x 400 - 0.3 x 100 = 170 yuan."""
    r = solve(problem([100] * 4, [0.5] * 4, subsidy=[0.3] * 4,
                      storage=battery(soc_initial_kwh=50.0, eta_charge=1.0, eta_discharge=1.0)))
    assert r.objective_yuan == pytest.approx(170.0, abs=1e-6)
    assert r.discharge_kw.sum() == pytest.approx(100.0, abs=1e-6)


def test_demand_charge_peak_shaving():
    """15-minute intervals, load 100/100/300/100 kW, month peak so far 150 kW, 40 yuan/kW.

    Without storage: peak 300, demand charge 40 x 150 = 6000. A 100 kW battery (lossless,
    SOC 50 -> 50 kWh) discharges 100 kW in the spike and recharges 25 kWh below 200 kW:
    peak 200, charge 40 x 50 = 2000, energy 150 kWh x 0.5 = 75: optimum 2075 yuan.
    """
    p = problem([100, 100, 300, 100], [0.5] * 4, dt_h=0.25,
                storage=battery(power_kw=100.0, eta_charge=1.0, eta_discharge=1.0,
                                soc_initial_kwh=50.0),
                grid=GridSpec(import_limit_kw=1000.0, demand_rate_yuan_per_kw_month=40.0,
                              month_peak_kw=150.0))
    r = solve(p)
    assert r.objective_yuan == pytest.approx(2075.0, abs=1e-6)
    assert r.peak_kw == pytest.approx(200.0, abs=1e-6)


def test_demand_below_month_peak_is_free():
    """Peak 300 kW under a month-to-date peak of 400 kW adds no demand charge: 150 x 0.5."""
    p = problem([100, 100, 300, 100], [0.5] * 4, dt_h=0.25,
                grid=GridSpec(import_limit_kw=1000.0, demand_rate_yuan_per_kw_month=40.0,
                              month_peak_kw=400.0))
    assert solve(p).objective_yuan == pytest.approx(75.0, abs=1e-6)


def test_contract_excess_billed_twice():
    """Contract 200 kW: demand above 210 kW is billed once more. Load peak 300 kW, no
    storage, month peak 0: 40 x 300 + 40 x (300 - 210) = 15600, plus energy 75 yuan."""
    p = problem([100, 100, 300, 100], [0.5] * 4, dt_h=0.25,
                grid=GridSpec(import_limit_kw=1000.0, demand_rate_yuan_per_kw_month=40.0,
                              contract_demand_kw=200.0))
    assert solve(p).objective_yuan == pytest.approx(15675.0, abs=1e-6)


def test_export_limit_and_curtailment():
    """Load 50 kW, PV 0/200/200/0 kW, import 0.5, export 0.2, export limit 100 kW.

    Midday surplus 150 kW: export 100, curtail 50, twice. Cost 0.5 x 100 - 0.2 x 200 = 10.
    """
    p = problem([50] * 4, [0.5] * 4, pv=[0, 200, 200, 0], export_price=[0.2] * 4,
                grid=GridSpec(import_limit_kw=1000.0, export_limit_kw=100.0))
    r = solve(p)
    assert r.objective_yuan == pytest.approx(10.0, abs=1e-6)
    np.testing.assert_allclose(r.grid_export_kw, [0, 100, 100, 0], atol=1e-6)
    np.testing.assert_allclose(r.pv_curtailed_kw, [0, 50, 50, 0], atol=1e-6)


def test_anti_backflow_curtails_all_surplus():
    """Export limit 0: all 150 kW surplus curtailed; cost is the night import, 0.5 x 100 = 50."""
    p = problem([50] * 4, [0.5] * 4, pv=[0, 200, 200, 0], export_price=[0.2] * 4,
                grid=GridSpec(import_limit_kw=1000.0, export_limit_kw=0.0))
    r = solve(p)
    assert r.objective_yuan == pytest.approx(50.0, abs=1e-6)
    assert r.grid_export_kw.max() == 0.0
    assert r.pv_curtailed_kw.sum() == pytest.approx(300.0, abs=1e-6)


def test_anti_backflow_battery_soaks_surplus():
    """Anti-backflow with a lossless 50 kW / 100 kWh battery starting empty, terminal >= 0:
    it stores 50 kW of each surplus hour (100 kWh) and covers the last hour's 50 kWh load,
    so cost = 0.5 x 50 (first hour) = 25 yuan; 50 kWh stays in the battery."""
    p = problem([50] * 4, [0.5] * 4, pv=[0, 200, 200, 0], export_price=[0.2] * 4,
                storage=battery(eta_charge=1.0, eta_discharge=1.0),
                grid=GridSpec(import_limit_kw=1000.0, export_limit_kw=0.0))
    r = solve(p)
    assert r.objective_yuan == pytest.approx(25.0, abs=1e-6)


def test_export_at_or_above_import_price_one_direction():
    """Export price 0.6 >= import 0.5 on a 1000 kW connection: an LP would import and export
    at once to earn 0.1 yuan/kWh; one direction per interval leaves net flows only.
    Load 50, PV 100 each hour: export 50 kW x 4 h x 0.6 = -120 yuan."""
    p = problem([50] * 4, [0.5] * 4, pv=[100] * 4, export_price=[0.6] * 4,
                grid=GridSpec(import_limit_kw=1000.0, export_limit_kw=1000.0))
    r = solve(p)
    assert r.objective_yuan == pytest.approx(-120.0, abs=1e-6)
    assert r.grid_import_kw.max() == 0.0


def test_shiftable_load_goes_to_cheap_hours():
    """100 kWh within hours 0-2 (10-60 kW), prices 1.0/0.4/0.6/0.2: 10 kW in hour 0 at 1.0,
    60 kW in hour 1 at 0.4, the remaining 30 kW in hour 2 at 0.6; hour 3 is outside the window.
    Cost 10 + 24 + 18 = 52 yuan."""
    sh = ShiftableLoad("pump", energy_kwh=100.0, start=0, end=3, p_max_kw=60.0, p_min_kw=10.0)
    r = solve(problem([0] * 4, [1.0, 0.4, 0.6, 0.2], shiftable=[sh]))
    assert r.objective_yuan == pytest.approx(52.0, abs=1e-6)
    np.testing.assert_allclose(r.shiftable_kw["pump"], [10, 60, 30, 0], atol=1e-6)


def test_terminal_soc_floor_configurable():
    """Start at 50 kWh, prices 1.0 all day, terminal floor 0: sell the stored energy,
    45 kWh AC out of 50 kWh at 90 %, cost 400 - 45 = 355. Default floor (= initial): 400."""
    load, price = [100] * 4, [1.0] * 4
    r = solve(problem(load, price, storage=battery(soc_initial_kwh=50.0, soc_terminal_min_kwh=0)))
    assert r.objective_yuan == pytest.approx(355.0, abs=1e-6)
    r = solve(problem(load, price, storage=battery(soc_initial_kwh=50.0)))
    assert r.objective_yuan == pytest.approx(400.0, abs=1e-6)


def test_peak_cap_from_an_incumbent_by_hand():
    """Load 100 kW for two hours at 1 yuan/kWh, demand charge 30 yuan/kW: without the demand
    charge the cost is at least 200 yuan, so a plan costing at most 3,200 yuan peaks at
    (3,200 - 200) / 30 = 100 kW (and a month-to-date peak of 50 kW moves that to 150)."""
    from models.components.grid import peak_cap_kw

    p = problem([100, 100], [1.0, 1.0],
                grid=GridSpec(import_limit_kw=1000.0, demand_rate_yuan_per_kw_month=30.0))
    assert peak_cap_kw(p, 3200.0, 200.0) == pytest.approx(100.0)
    q = problem([100, 100], [1.0, 1.0],
                grid=GridSpec(import_limit_kw=1000.0, demand_rate_yuan_per_kw_month=30.0,
                              month_peak_kw=50.0))
    assert peak_cap_kw(q, 3200.0, 200.0) == pytest.approx(150.0)
    assert solve(p).objective_yuan == pytest.approx(3200.0)


# --------------------------------------------------------------------------- direction hold

ALTERNATING = dict(load=[100] * 4, price=[0.3, 1.0, 0.3, 1.0])


@pytest.mark.parametrize("method", ["auto", "milp"])
def test_direction_hold_by_hand(method):
    """Load 100 kW, prices 0.3/1.0/0.3/1.0 yuan/kWh, 1-hour intervals, a lossless empty
    50 kW / 100 kWh battery. Without a rule it charges in both cheap hours and discharges in
    both dear ones: 260 - 2 x 50 x (1.0 - 0.3) = 190 yuan. With a 2-hour hold the side may
    change once in any two intervals, so charge-discharge-charge-discharge (changes at 1, 2
    and 3) is out; one cheap-then-dear pair is the best left: 260 - 35 = 225 yuan."""
    lossless = battery(eta_charge=1.0, eta_discharge=1.0)
    free = solve(problem(ALTERNATING["load"], ALTERNATING["price"], storage=lossless),
                 SolveOptions(mip_rel_gap=0.0, method=method))
    assert free.objective_yuan == pytest.approx(190.0, abs=1e-6)
    held = solve(problem(ALTERNATING["load"], ALTERNATING["price"],
                         storage=battery(eta_charge=1.0, eta_discharge=1.0,
                                         min_direction_hold_h=2.0)),
                 SolveOptions(mip_rel_gap=0.0, method=method))
    assert held.objective_yuan == pytest.approx(225.0, abs=1e-6)
    assert held.discharge_kw.sum() == pytest.approx(50.0, abs=1e-6)


def test_direction_hold_carried_into_the_horizon():
    """The same battery discharging until the start (side 0) with no time held: the side
    may not change before hour 2, so the empty battery cannot charge at 0.3 in hour 0 and
    discharge in hour 1; hour 2 can charge but hour 3 may not reverse: no gain, 260 yuan.
    Held for 2 hours already, it is free again: 225 yuan."""
    def run(held):
        s = battery(eta_charge=1.0, eta_discharge=1.0, min_direction_hold_h=2.0,
                    direction_initial=0, direction_held_h=held)
        return solve(problem(ALTERNATING["load"], ALTERNATING["price"], storage=s))
    assert run(0.0).objective_yuan == pytest.approx(260.0, abs=1e-6)
    assert run(2.0).objective_yuan == pytest.approx(225.0, abs=1e-6)


def test_audit_names_a_reversal_inside_the_hold():
    """The unconstrained 190-yuan plan broken against a 2-hour hold: the audit names the
    first reversal that comes too soon (hour 2 charges one hour after hour 1's change)."""
    from models import audit

    free = solve(problem(ALTERNATING["load"], ALTERNATING["price"],
                         storage=battery(eta_charge=1.0, eta_discharge=1.0)))
    held = problem(ALTERNATING["load"], ALTERNATING["price"],
                   storage=battery(eta_charge=1.0, eta_discharge=1.0, min_direction_hold_h=2.0))
    assert audit(held, free) == ["direction reversed at interval 2 less than 2 h after the "
                                 "previous change (minimum direction hold)"]


# --------------------------------------------------------------------------- billing months


def test_each_billing_month_billed_on_its_own_peak():
    """Two hours of July (load 100, 200 kW, month-to-date peak 190 kW) and two of August
    (150, 50 kW), 1 yuan/kWh, 10 yuan/kW-month in July and 8 in August (a new tariff), a
    lossless full 100 kW / 100 kWh battery that must end empty. A kW off July's peak is
    worth 10, off August's 8: 10 kWh take hour 2 to 190 (no lower: below the month-to-date
    peak nothing is saved), the other 90 hour 3 from 150 to 60 kW. Energy 500 - 100 = 400
    yuan, demand 0 + 8 x 60 = 480: 880 yuan. Billed as one month, the same horizon would
    see no demand charge at all below 190 kW."""
    s = battery(power_kw=100.0, eta_charge=1.0, eta_discharge=1.0, soc_initial_kwh=100.0,
                soc_terminal_min_kwh=0.0)
    p = problem([100, 200, 150, 50], [1.0] * 4, storage=s,
                grid=GridSpec(import_limit_kw=1000.0, demand_rate_yuan_per_kw_month=(10.0, 8.0),
                              month_peak_kw=190.0))
    p = dataclasses.replace(p, month_of_interval=np.array([0, 0, 1, 1]))
    for method in ("auto", "milp"):
        r = solve(p, SolveOptions(mip_rel_gap=0.0, method=method))
        assert r.objective_yuan == pytest.approx(880.0, abs=1e-6)
        assert r.grid_import_kw[1] == pytest.approx(190.0, abs=1e-6)
        assert max(r.grid_import_kw[2:]) == pytest.approx(60.0, abs=1e-6)


def test_peak_margin_keeps_energy_for_the_peak():
    """One month, load 100/200 kW, 1 yuan/kWh, 10 yuan/kW, a lossless battery holding
    50 kWh that must end empty. Without a margin it charges C in hour 1 and discharges
    50 + C in hour 2: 100 + C = 150 - C gives C = 25, peak 125 kW, 250 + 1,250 yuan. With a
    30 kW margin on hour 2 (an upper load quantile) the plan provisions for
    100 + C = 150 - C + 30: C = 40, peak 140 kW, and 90 kWh kept for hour 2: 250 + 1,400."""
    s = battery(power_kw=100.0, eta_charge=1.0, eta_discharge=1.0, soc_initial_kwh=50.0,
                soc_terminal_min_kwh=0.0)
    grid = GridSpec(import_limit_kw=1000.0, demand_rate_yuan_per_kw_month=10.0)
    plain = solve(problem([100, 200], [1.0, 1.0], storage=s, grid=grid))
    assert plain.objective_yuan == pytest.approx(250.0 + 1250.0, abs=1e-6)
    held = solve(problem([100, 200], [1.0, 1.0], storage=s, grid=dataclasses.replace(
        grid, peak_margin_kw=np.array([0.0, 30.0]))))
    assert held.objective_yuan == pytest.approx(250.0 + 1400.0, abs=1e-6)
    assert held.discharge_kw[1] == pytest.approx(90.0, abs=1e-6)


def test_cycles_used_earlier_in_the_day_count():
    """The arbitrage day of the first test with 0.5 cycles a day (50 kWh), 30 kWh of which
    were discharged before the plan starts: 20 kWh left, bought at 0.3 / 0.81 each:
    260 + 0.3 x 20 / 0.81 - 20 yuan."""
    r = solve(problem([100] * 4, [0.3, 0.3, 1.0, 1.0],
                      storage=battery(max_cycles_per_day=0.5, cycles_used_first_day_kwh=30.0)))
    assert r.objective_yuan == pytest.approx(260 + 0.3 * 20 / 0.81 - 20, abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_repaired_sides_keep_the_hold(seed):
    """Whatever powers a relaxation proposes, the repair's side sequence keeps the hold:
    the powers it keeps (each interval's flow on its side) pass the exact check, and it keeps
    at least as much power as the greedy sequence does."""
    from models.components.direction import best_sides, hold_sides

    rng = np.random.default_rng(seed)
    n = 48
    ch = np.where(rng.random(n) < 0.4, rng.uniform(0, 50, n), 0.0)
    dis = np.where((ch == 0) & (rng.random(n) < 0.5), rng.uniform(0, 50, n), 0.0)
    for initial, held in ((None, None), (0, 0.25), (1, 5.0)):
        p = problem([100] * n, [1.0] * n, dt_h=0.25, storage=battery(
            min_direction_hold_h=1.0, direction_initial=initial, direction_held_h=held))
        side = best_sides(p, ch, dis)
        kept_ch, kept_dis = np.where(side == 1, ch, 0.0), np.where(side == 0, dis, 0.0)
        assert hold_sides(p, kept_ch, kept_dis)[1]
        greedy, _ = hold_sides(p, ch, dis)
        g = np.where(greedy == 1, ch, 0.0).sum() + np.where(greedy == 0, dis, 0.0).sum()
        assert kept_ch.sum() + kept_dis.sum() >= g - 1e-9


# --------------------------------------------------------------------------- subsidy rules


@pytest.mark.parametrize(("rule", "budget", "expected"), [
    ("discharge", None, 145.0 - 0.3 * 100),            # every discharged kWh: 30 yuan
    ("net_of_grid_charging", None, 145.0 - 0.3 * 50),  # 100 kWh less 50 from the grid
    ("discharge", 60.0, 145.0 - 0.3 * 60),             # an annual cap with 60 kWh left
])
def test_subsidy_rules_by_hand(rule, budget, expected):
    """Load 100 kW, prices 0.3/0.3/1.0/1.0 yuan/kWh, PV 150 kW in hour 2 (50 kW beyond the
    load, nowhere to export), a lossless empty 50 kW / 100 kWh battery, 0.3 yuan/kWh subsidy.
    The plan charges 50 kWh from the grid in hour 1 and 50 from the PV surplus in hour 2,
    discharges 100 kWh in the dear hours: imports 150 x 0.3 + 50 + 50 = 145 yuan, less the
    subsidy each rule pays (discharge net of grid charging: 100 - 50 = 50 kWh)."""
    p = problem([100] * 4, [0.3, 0.3, 1.0, 1.0], pv=[0, 150, 0, 0], subsidy=[0.3] * 4,
                storage=battery(eta_charge=1.0, eta_discharge=1.0, soc_terminal_min_kwh=0.0))
    p = dataclasses.replace(p, subsidy_rule=rule, subsidy_budget_kwh=budget)
    for method in ("auto", "milp"):
        r = solve(p, SolveOptions(mip_rel_gap=0.0, method=method))
        assert r.objective_yuan == pytest.approx(expected, abs=1e-6)
        assert r.discharge_kw.sum() == pytest.approx(100.0, abs=1e-6)


def test_grid_charged_arbitrage_is_unpaid_under_net_of_grid_charging_not_forbidden():
    """The arbitrage day of :func:`test_arbitrage_two_cheap_two_dear_hours` (209 yuan: 100 kWh
    charged from the grid, 81 discharged) under the net-of-grid-charging rule at 0.3
    yuan/kWh: the day's net is 81 - 100 < 0, so the subsidy pays max(0, -19) = 0 and the
    plan stays 209 yuan. The rule used to demand discharge >= grid charging, which losses
    make impossible: the battery idled (260 yuan, no storage)."""
    p = dataclasses.replace(problem([100] * 4, [0.3, 0.3, 1.0, 1.0], subsidy=[0.3] * 4,
                                    storage=battery()), subsidy_rule="net_of_grid_charging")
    for method in ("auto", "milp"):
        r = solve(p, SolveOptions(mip_rel_gap=0.0, method=method))
        assert r.objective_yuan == pytest.approx(209.0, abs=1e-6)
        assert r.discharge_kw.sum() == pytest.approx(81.0, abs=1e-6)


def test_storage_does_not_feed_the_grid_unless_allowed():
    """Two hours, load 100 kW, PV 200 / 0 kW, import 0.3 / 1.0, export 1.2 / 1.2 yuan/kWh
    (export limit 500 kW), a full lossless 50 kWh battery that may end empty, subsidy 0.3.
    Allowed to export, it discharges in hour 1 beside the 100 kW PV surplus: -150 x 1.2 +
    100 - 15 = -95 yuan (50 kWh exported at 1.2 beats 1.0 saved). As user-side storage it
    may not: it discharges in hour 2, -120 + 50 - 15 = -85 yuan."""
    grid = GridSpec(import_limit_kw=1000.0, export_limit_kw=500.0)
    full = dict(eta_charge=1.0, eta_discharge=1.0, soc_initial_kwh=50.0, soc_terminal_min_kwh=0.0)
    common = dict(pv=[200, 0], export_price=[1.2, 1.2], subsidy=[0.3, 0.3], grid=grid)
    free = solve(problem([100, 100], [0.3, 1.0], storage=battery(**full), **common))
    assert free.objective_yuan == pytest.approx(-95.0, abs=1e-6)
    for method in ("auto", "milp"):
        kept = solve(problem([100, 100], [0.3, 1.0], **common,
                             storage=battery(**full, export_allowed=False)),
                     SolveOptions(mip_rel_gap=0.0, method=method))
        assert kept.objective_yuan == pytest.approx(-85.0, abs=1e-6)
        assert kept.discharge_kw[0] == pytest.approx(0.0, abs=1e-6)
    from models import audit

    held = problem([100, 100], [0.3, 1.0], **common, storage=battery(**full, export_allowed=False))
    assert audit(held, free) == ["storage discharging while the site exports (user-side "
                                 "storage may not feed the grid) at interval 0 (1 intervals), "
                                 "value 50"]


def test_a_known_plan_as_hint_certifies_without_the_milp():
    """The subsidy-cycling case, whose relaxation bound 183.646 yuan is 0.84 % below the
    optimum 185.2: given the optimal plan's directions as a hint and a 1 % gap, the
    persistent model certifies 185.2 against the LP bound with LP solves only (method
    lp+hint, no binaries)."""
    from models import PersistentDispatch

    p = problem([100] * 4, [0.5] * 4, subsidy=[0.3] * 4, storage=battery(soc_initial_kwh=50.0))
    best = solve(p)
    r = PersistentDispatch(p, SolveOptions(mip_rel_gap=0.01)).solve(p, hint=best)
    assert r.method == "lp+hint" and r.binaries == 0
    assert r.objective_yuan == pytest.approx(185.2, abs=1e-6)
    c = 200 / 1.81  # the relaxation's charge (see the cycling test): 200 + 0.5 C - 0.8 D
    assert r.objective_bound_yuan == pytest.approx(200 + 0.5 * c - 0.8 * 0.81 * c, abs=1e-6)


def test_peak_reserve_lets_the_battery_answer_the_margin():
    """Load 100/200 kW, 1 yuan/kWh, 10 yuan/kW, a lossless 100 kW / 100 kWh battery at
    80 kWh that must keep 10 kWh, 30 kW of margin on hour 2. Charging C <= 20 kWh in hour 1
    and discharging 70 + C in hour 2 gives imports 100 + C and 130 - C (energy 230 yuan).
    In a high-load hour 2 the 10 kWh kept answer 10 kW of the margin (power room 30 - C):
    the peak must cover 130 - C + 30 - 10, so peak = max(100 + C, 150 - C) = 130 kW at
    C = 20: 230 + 1,300 yuan. Without the margin the peak would be 115 kW (1,380 yuan);
    provisioning it outright, 140 kW (1,630 yuan)."""
    s = battery(power_kw=100.0, eta_charge=1.0, eta_discharge=1.0, soc_initial_kwh=80.0,
                soc_terminal_min_kwh=10.0)
    grid = GridSpec(import_limit_kw=1000.0, demand_rate_yuan_per_kw_month=10.0,
                    peak_margin_kw=np.array([0.0, 30.0]))
    for method in ("auto", "milp"):
        r = solve(problem([100, 200], [1.0, 1.0], storage=s, grid=grid),
                  SolveOptions(mip_rel_gap=0.0, method=method))
        assert r.objective_yuan == pytest.approx(230.0 + 1300.0, abs=1e-6)
        assert r.charge_kw[0] == pytest.approx(20.0, abs=1e-6)
    plain = solve(problem([100, 200], [1.0, 1.0], storage=s,
                          grid=dataclasses.replace(grid, peak_margin_kw=0.0)))
    assert plain.objective_yuan == pytest.approx(230.0 + 1150.0, abs=1e-6)


def test_a_hold_value_keeps_energy_until_the_last_dear_hour():
    """Load 100 kW, price 1.0 in all four hours, 50 kW / 100 kWh battery at 45 kWh, 90 %
    each way, ending at >= 0: the money is the same whenever it discharges (45 x 0.9 =
    40.5 kWh saved: 400 - 40.5 = 359.5 yuan). With a hold value of 0.01 yuan/(kWh*h) it
    keeps the energy to the last hour: SOC 45, 45, 45, 0 -> objective
    359.5 - 0.01 x (45 + 45 + 45) = 358.15 yuan (discharging earlier holds less)."""
    p = problem([100.0] * 4, [1.0] * 4, storage=battery(
        soc_initial_kwh=45.0, soc_terminal_min_kwh=0.0, hold_value_yuan_per_kwh_h=0.01))
    r = solve(p)
    assert r.objective_yuan == pytest.approx(358.15, abs=1e-6)
    assert r.discharge_kw.tolist() == pytest.approx([0.0, 0.0, 0.0, 40.5])
    assert float(np.sum(r.grid_import_kw)) == pytest.approx(359.5)
    bad = dataclasses.replace(p, storage=dataclasses.replace(p.storage,
                                                             hold_value_yuan_per_kwh_h=-1.0))
    with pytest.raises(ValueError, match=r"hold_value_yuan_per_kwh_h=-1.0: allowed range"):
        solve_dispatch(bad, EXACT)
