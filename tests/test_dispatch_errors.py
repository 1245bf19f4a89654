"""Every error path of the dispatch model names the field, the value and the allowed range."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
from test_dispatch_micro import battery, problem

from models import (
    DispatchProblem,
    GridSpec,
    PersistentDispatch,
    ShiftableLoad,
    SolveOptions,
    audit,
    costs,
    solve_dispatch,
)
from models.errors import InfeasiblePlanError, InvalidInputError


def good():
    return problem([100] * 4, [0.3, 0.3, 1.0, 1.0], storage=battery())


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"dt_h": 0.0}, r"dt_h=0.0: allowed range \(0, 24\] h"),
        ({"load_kw": np.array([100.0, -1, 100, 100])}, r"load_kw: minimum -1, allowed range"),
        ({"pv_kw": np.array([0.0, np.nan, 0, 0])}, r"pv_kw: contains NaN"),
        ({"import_price_yuan_per_kwh": np.ones(3)}, r"import_price_yuan_per_kwh: length 3, "
                                                     r"expected 4"),
        ({"subsidy_yuan_per_kwh": np.full(4, -0.1)}, r"subsidy_yuan_per_kwh: minimum -0.1"),
    ],
)
def test_array_validation(change, match):
    with pytest.raises(InvalidInputError, match=match):
        solve_dispatch(dataclasses.replace(good(), **change))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"power_kw": -5.0}, r"storage.power_kw=-5.0: allowed range \(0, inf\) kW"),
        ({"energy_kwh": 0.0}, r"storage.energy_kwh=0.0: allowed range"),
        ({"eta_charge": 1.2}, r"storage.eta_charge=1.2: allowed range \(0, 1\]"),
        ({"eta_discharge": 0.0}, r"storage.eta_discharge=0.0: allowed range \(0, 1\]"),
        ({"soc_min_kwh": 80.0, "soc_max_kwh": 20.0, "soc_initial_kwh": 50.0},
         r"soc_min_kwh \(80.0\) <= soc_max_kwh \(20.0\)"),
        ({"soc_initial_kwh": 120.0}, r"soc_initial_kwh=120.0: allowed range \[0.0, 100.0\]"),
        ({"soc_terminal_min_kwh": -1.0}, r"soc_terminal_min_kwh=-1.0: allowed range"),
        ({"degradation_yuan_per_kwh": -0.1}, r"degradation_yuan_per_kwh=-0.1"),
        ({"max_cycles_per_day": -1.0}, r"max_cycles_per_day=-1.0"),
    ],
)
def test_storage_validation(change, match):
    p = dataclasses.replace(good(), storage=dataclasses.replace(battery(), **change))
    with pytest.raises(InvalidInputError, match=match):
        solve_dispatch(p)


@pytest.mark.parametrize(
    ("grid", "match"),
    [
        (GridSpec(import_limit_kw=-1.0), r"grid.import_limit_kw=-1.0: allowed range"),
        (GridSpec(1000.0, export_limit_kw=-2.0), r"grid.export_limit_kw=-2.0"),
        (GridSpec(1000.0, demand_rate_yuan_per_kw_month=-40.0), r"demand_rate_yuan_per_kw"),
        (GridSpec(1000.0, month_peak_kw=-1.0), r"grid.month_peak_kw=-1.0"),
        (GridSpec(1000.0, contract_demand_kw=0.0), r"grid.contract_demand_kw=0.0"),
    ],
)
def test_grid_validation(grid, match):
    with pytest.raises(InvalidInputError, match=match):
        solve_dispatch(dataclasses.replace(good(), grid=grid))


@pytest.mark.parametrize(
    ("loads", "match"),
    [
        ([ShiftableLoad("a", 10, 0, 5, 50)], r"window \[0, 5\) must lie inside \[0, 4\)"),
        ([ShiftableLoad("a", 10, 0, 2, 5, 10)], r"need 0 <= p_min_kw \(10\) <= p_max_kw \(5\)"),
        ([ShiftableLoad("a", 500, 0, 2, 50)], r"energy_kwh=500 outside what its window can "
                                              r"take, \[0, 100\] kWh"),
        ([ShiftableLoad("a", 10, 0, 2, 50), ShiftableLoad("a", 10, 2, 4, 50)],
         r"names must be unique"),
    ],
)
def test_shiftable_validation(loads, match):
    with pytest.raises(InvalidInputError, match=match):
        solve_dispatch(dataclasses.replace(good(), shiftable=tuple(loads)))


def test_all_problems_in_one_error():
    p = dataclasses.replace(good(), dt_h=-1.0,
                            storage=dataclasses.replace(battery(), eta_charge=2.0))
    with pytest.raises(InvalidInputError) as info:
        solve_dispatch(p)
    assert len(info.value.problems) == 2
    assert "2 problem(s)" in str(info.value)


@pytest.mark.parametrize(
    ("opts", "match"),
    [
        (SolveOptions(mip_rel_gap=0.2), r"mip_rel_gap=0.2: allowed range \[0, 0.05\]"),
        (SolveOptions(mip_rel_gap=-0.01), r"mip_rel_gap=-0.01"),
        (SolveOptions(time_limit_s=0.0), r"time_limit_s=0.0: allowed range \(0, 3600\] s"),
        (SolveOptions(time_limit_s=1e5), r"time_limit_s=100000.0"),
        (SolveOptions(method="simplex"), r"method='simplex': allowed 'auto' or 'milp'"),
        (SolveOptions(threads=0), r"threads=0: allowed range \[1, 64\]"),
    ],
)
def test_solver_options_validation(opts, match):
    with pytest.raises(InvalidInputError, match=match):
        solve_dispatch(good(), opts)


def test_terminal_soc_unreachable_names_the_numbers():
    """Empty 250 kW battery, 4 hours, 100 % charge efficiency: at most 1000 kWh can go in,
    so a terminal floor of 1800 kWh cannot be met."""
    st = battery(power_kw=250.0, energy_kwh=2000.0, soc_max_kwh=2000.0, eta_charge=1.0,
                 soc_terminal_min_kwh=1800.0)
    with pytest.raises(InfeasiblePlanError,
                       match=r"terminal SOC 1800.0 kWh unreachable from initial 0.0 kWh: "
                             r"max charge 1000.0 kWh in horizon") as info:
        solve_dispatch(dataclasses.replace(good(), storage=st))
    assert info.value.status == "precheck"


def test_terminal_soc_limited_by_grid_headroom():
    """Import limit 150 kW with 100 kW of load leaves 50 kW per hour to charge: 4 x 50 x 0.9
    = 180 kWh, short of a 190 kWh terminal floor even though the converter could do 200 kW."""
    st = battery(power_kw=200.0, energy_kwh=1000.0, soc_max_kwh=1000.0,
                 soc_terminal_min_kwh=190.0)
    p = dataclasses.replace(good(), storage=st, grid=GridSpec(import_limit_kw=150.0))
    with pytest.raises(InfeasiblePlanError, match=r"max charge 180.0 kWh in horizon"):
        solve_dispatch(p)


def test_load_above_every_source():
    """Load 500 kW at hour 2 against 300 kW import + 50 kW battery: short 150 kW."""
    p = dataclasses.replace(good(), load_kw=np.array([100.0, 100, 500, 100]),
                            grid=GridSpec(import_limit_kw=300.0))
    with pytest.raises(InfeasiblePlanError,
                       match=r"power balance: at interval 2 load 500.0 kW exceeds import limit "
                             r"300.0 kW \+ storage 50.0 kW \+ PV 0.0 kW \(short 150.0 kW"):
        solve_dispatch(p)


def test_infeasible_found_by_the_solver_names_the_groups():
    """A 100 kWh shiftable load inside 2 hours needs 50 kW on top of 100 kW of load, but the
    import limit is 120 kW and the empty battery must end where it started: infeasible, and
    not visible to the interval-by-interval precheck (p_min is 0)."""
    p = dataclasses.replace(
        good(), grid=GridSpec(import_limit_kw=120.0),
        shiftable=(ShiftableLoad("kiln", 100.0, 0, 2, 60.0),),
    )
    with pytest.raises(InfeasiblePlanError, match=r"shiftable-load energy together") as info:
        solve_dispatch(p)
    assert info.value.status != "precheck"


def test_empty_horizon():
    p = problem([], [])
    with pytest.raises(InvalidInputError, match=r"load_kw: empty horizon, need at least 1"):
        solve_dispatch(p)


def cycling_week() -> DispatchProblem:
    """4 days of subsidy cycling: a plan within 0 % of the optimum cannot be proven in
    seconds (the LP relaxation charges and discharges at once)."""
    n = 384
    return dataclasses.replace(
        problem([100 + (t % 7) * 10 for t in range(n)], [0.3 + 0.1 * (t % 5) for t in range(n)],
                subsidy=[0.3] * n, storage=battery(soc_initial_kwh=50.0), dt_h=0.25,
                grid=GridSpec(1000.0, demand_rate_yuan_per_kw_month=40.0)),
        day_of_interval=np.arange(n) // 96,
    )


@pytest.mark.parametrize("method", ["auto", "milp"])
def test_time_limit_returns_the_plan_as_such(method, caplog):
    """The budget runs out before a 0 % gap is proven: the best plan comes back, feasible
    (every equation holds), marked time_limit, with its proven gap above the required one,
    a note and a warning - on the array path and on the Pyomo reference path."""
    p = cycling_week()
    with caplog.at_level(logging.WARNING):
        r = solve_dispatch(p, SolveOptions(mip_rel_gap=0.0, time_limit_s=2.0, method=method))
    assert r.status == "time_limit"
    assert 0.0 < r.optimality_gap < 0.5
    assert r.objective_bound_yuan < r.objective_yuan
    assert r.optimality_gap == pytest.approx(
        (r.objective_yuan - r.objective_bound_yuan) / abs(r.objective_yuan))
    assert audit(p, r) == []
    assert costs(p, r)["objective_yuan"] == pytest.approx(r.objective_yuan, abs=1e-3)
    assert any(n.startswith("time limit: the 2 s budget ran out") for n in r.log)
    if method == "auto":
        assert "time limit: the 2 s budget" in caplog.text


def test_time_limit_strict_raises():
    """The same solve asked to be strict: an error naming the gap reached."""
    p = cycling_week()
    solver = PersistentDispatch(p, SolveOptions(mip_rel_gap=0.0, time_limit_s=2.0))
    with pytest.raises(InfeasiblePlanError,
                       match=r"HiGHS reached a certified gap of .* above the required 0.000%") \
            as info:
        solver.solve(p, strict=True)
    assert info.value.status == "time_limit"


@pytest.mark.parametrize("method", ["auto", "milp"])
def test_time_limit_before_any_plan_is_an_error(method):
    """A budget too short for the LP relaxation: no plan exists to return."""
    with pytest.raises(InfeasiblePlanError,
                       match=r"time budget ran out before any plan was found") as info:
        solve_dispatch(cycling_week(), SolveOptions(time_limit_s=1e-4, method=method))
    assert info.value.status == "time_limit"


@pytest.mark.parametrize("method", ["auto", "milp"])
def test_infeasible_site_without_battery_names_no_terminal_soc(method):
    """The same kiln at a site without a battery: the reason names no terminal SOC (there is
    none to name), on the array path and on the Pyomo reference path alike."""
    p = dataclasses.replace(
        good(), storage=None, grid=GridSpec(import_limit_kw=120.0),
        shiftable=(ShiftableLoad("kiln", 100.0, 0, 2, 60.0),),
    )
    with pytest.raises(InfeasiblePlanError, match=r"shiftable-load energy together") as info:
        solve_dispatch(p, SolveOptions(method=method))
    assert "terminal SOC," in str(info.value) and "kWh)" not in str(info.value)
