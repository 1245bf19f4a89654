"""The array formulation (models.site.site_lp) is the Pyomo formulation (models.site.populate):
the same variables, bounds, costs, offset, rows and coefficients, name by name."""

from __future__ import annotations

import datetime as dt
from dataclasses import MISSING, fields, replace

import numpy as np
import pytest
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler
from test_dispatch_micro import battery, problem

from models import DispatchProblem, GridSpec, ShiftableLoad, StorageSpec
from models.site import build_model, site_lp
from vpp.planning import PlanOptions, build_inputs

INF = float("inf")


def pyomo_lp(p):
    """Columns {name: (lower, upper, cost)}, offset, rows {name: ({col: coef}, lower, upper)}
    of the Pyomo model, each row signed so that its first coefficient is positive."""
    m = build_model(p)
    info = LinearStandardFormCompiler().write(m, mixed_form=True)
    a = info.A.tocsr()
    names = [v.name for v in info.columns]
    cost = np.asarray(info.c.todense()).ravel() if hasattr(info.c, "todense") else info.c[0]
    cols = {v.name: (v.lb if v.lb is not None else -INF, v.ub if v.ub is not None else INF,
                     float(cost[j])) for j, v in enumerate(info.columns)}
    rows = {}
    for i, (entry, rhs) in enumerate(zip(info.rows, info.rhs, strict=True)):
        lo, up = {0: (rhs, rhs), -1: (rhs, INF), 1: (-INF, rhs)}[entry.bound_type]
        coef = {names[j]: float(v) for j, v in zip(a.indices[a.indptr[i]:a.indptr[i + 1]],
                                                   a.data[a.indptr[i]:a.indptr[i + 1]],
                                                   strict=True) if v != 0}
        rows[entry.constraint.name] = canonical(coef, lo, up)
    return cols, float(info.c_offset[0]), rows


def canonical(coef, lo, up):
    first = coef[min(coef)]
    if first < 0:
        return {k: -v for k, v in coef.items()}, -up, -lo
    return coef, lo, up


def array_lp(p):
    lp = site_lp(p)
    names = lp.col_names()
    cols = {nm: (lp.col_lower[j], lp.col_upper[j], lp.cost[j]) for j, nm in enumerate(names)}
    coef = [{} for _ in range(lp.num_row)]
    for r, c, v in zip(lp.a_row, lp.a_col, lp.a_val, strict=True):
        if v != 0:
            coef[r][names[c]] = coef[r].get(names[c], 0.0) + v
    # a free row (-inf <= . <= inf, e.g. a rule that has nothing to hold against) constrains
    # nothing: Pyomo has no such row
    free = (lp.row_lower == -INF) & (lp.row_upper == INF)
    rows = {nm: canonical(coef[i], lp.row_lower[i], lp.row_upper[i])
            for i, nm in enumerate(lp.row_names()) if coef[i] and not free[i]}
    return cols, lp.offset, rows


def assert_same(p):
    pc, po, pr = pyomo_lp(p)
    ac, ao, ar = array_lp(p)
    # Pyomo leaves out a variable no row or cost uses (y where the load and the big-Ms are 0)
    used = {name for coef, _, _ in ar.values() for name in coef}
    assert set(pc) <= set(ac)
    assert all(ac[k][2] == 0 and k not in used for k in set(ac) - set(pc))
    for k, (lo, up, c) in pc.items():
        assert ac[k] == pytest.approx((lo, up, c), rel=1e-12, abs=1e-12), k
    assert ao == pytest.approx(po, rel=1e-12, abs=1e-9)
    # Pyomo leaves out a row whose terms all vanish (e.g. a shiftable load of 0 kWh); so do we
    assert set(ar) == set(pr)
    for k, (coef, lo, up) in pr.items():
        got, glo, gup = ar[k]
        assert set(got) == set(coef), k
        for name, v in coef.items():
            assert got[name] == pytest.approx(v, rel=1e-12, abs=1e-12), (k, name)
        assert (glo, gup) == pytest.approx((lo, up), rel=1e-12, abs=1e-9), k


@pytest.mark.parametrize("date", ["2026-07-15", "2026-01-10"])
def test_every_pilot_site(catalog, date):
    opts = PlanOptions()
    for site in catalog.fleet.sites:
        assert_same(build_inputs(catalog, site, dt.date.fromisoformat(date), opts).problem)


def edge_cases():
    """Hand-made problems that between them set every spec field away from its default."""
    load, price = [100.0, 0.0, 300.0, 50.0], [0.3, 0.3, 1.0, 1.0]
    cases = [
        problem(load, price),  # no battery, no shiftable load, no demand rate
        problem(load, price, pv=[0, 200, 400, 0], export_price=[0.4, 0.4, 0.2, 0.2],
                storage=battery(max_cycles_per_day=1.0, degradation_yuan_per_kwh=0.05,
                                soc_initial_kwh=40.0, soc_terminal_min_kwh=60.0),
                subsidy=[0, 0.3, 0.3, 0],
                grid=GridSpec(import_limit_kw=500, export_limit_kw=150,
                              demand_rate_yuan_per_kw_month=40, month_peak_kw=120,
                              contract_demand_kw=100)),
        problem(load, price, storage=battery(),
                shiftable=[ShiftableLoad("a", 30.0, 1, 3, 40.0, 5.0),
                           ShiftableLoad("b", 10.0, 0, 4, 20.0)],
                grid=GridSpec(import_limit_kw=400, demand_rate_yuan_per_kw_month=30)),
    ]
    two_days = replace(cases[1], day_of_interval=np.array([5, 5, 6, 6]),
                       interval_labels=("d5 00", "d5 01", "d6 00", "d6 01"))
    # an import limit per interval (as the incumbent's cap writes it) and another contract rule
    capped = replace(cases[1], grid=replace(cases[1].grid, import_limit_kw=np.array(
        [500.0, 450.0, 400.0, 500.0]), contract_tolerance=1.1))
    # the direction hold, with the side before the horizon unknown and known
    hold = replace(cases[2], storage=replace(cases[2].storage, min_direction_hold_h=2.0))
    carried = replace(hold, storage=replace(hold.storage, direction_initial=1,
                                            direction_held_h=1.0))
    # a month boundary inside the horizon (rates per month), a peak margin, cycles already
    # used on the first day
    months = replace(two_days, month_of_interval=np.array([0, 0, 1, 1]),
                     grid=replace(two_days.grid, demand_rate_yuan_per_kw_month=(40.0, 35.0),
                                  peak_margin_kw=np.array([10.0, 0.0, 25.0, 5.0])),
                     storage=replace(two_days.storage, cycles_used_first_day_kwh=30.0))
    # the subsidy counted net of grid charging, and under an annual cap
    net = replace(two_days, subsidy_rule="net_of_grid_charging")
    budget = replace(cases[1], subsidy_budget_kwh=40.0)
    no_export = replace(cases[1], storage=replace(cases[1].storage, export_allowed=False))
    held = replace(cases[1], storage=replace(cases[1].storage, hold_value_yuan_per_kwh_h=1e-3))
    return [*cases, two_days, capped, hold, carried, months, net, budget, no_export, held]


def test_edge_cases():
    for p in edge_cases():
        assert_same(p)


def test_every_spec_field_is_exercised():
    """A field added to a spec must be set away from its default by some equivalence case,
    so the Pyomo and array formulations are compared on it too."""
    cases = edge_cases()
    specs = {DispatchProblem: lambda p: [p], GridSpec: lambda p: [p.grid],
             StorageSpec: lambda p: [p.storage] if p.storage else [],
             ShiftableLoad: lambda p: list(p.shiftable)}
    for cls, parts in specs.items():
        for f in fields(cls):
            if f.default is MISSING and f.default_factory is MISSING:
                continue  # required: every case sets it
            default = f.default if f.default is not MISSING else f.default_factory()
            seen = [getattr(obj, f.name) for p in cases for obj in parts(p)]
            assert any(not _equal(v, default) for v in seen), (
                f"{cls.__name__}.{f.name} keeps its default in every case of edge_cases()")


def _equal(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and bool(np.all(np.asarray(a) == np.asarray(b)))
    return a == b
