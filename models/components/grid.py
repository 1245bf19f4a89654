"""The grid connection: import, export, one direction per interval, energy prices and the
demand part of the two-part tariff.

For intervals ``t`` of length ``dt`` [h], flow bounds ``I[t]``, ``E[t]`` from the balance
(:func:`models.components.coupling.flow_bounds`, at most the import and export limits)::

    0 <= imp[t] <= I[t],  0 <= exp[t] <= E[t],  0 <= y[t] <= 1
    imp[t] <= I[t] * y[t]                                        (import_direction[t])
    exp[t] <= E[t] * (1 - y[t])                                  (export_direction[t])
    peak >= imp[t],  peak >= month_peak                          (peak_demand[t], bound)
    excess >= peak - tolerance * contract                        (contract_excess)
    excess >= max(0, month_peak - tolerance * contract)          (bound)

``y`` is binary in the MILP (1: importing). Money [yuan]::

    sum_t dt * (price_imp[t] * imp[t] - price_exp[t] * exp[t])
      + rate * (peak - month_peak) + rate * (excess - excess_so_far)

The demand charge counts only what the plan adds to the month's bill: the month-to-date peak
is already paid for. ``excess`` exists only with a contracted demand and a demand rate.
Columns ``imp[t] exp[t] y[t] peak [excess]``; import and export enter the balance with signs
+1 and -1.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from models.components.base import (
    EMPTY,
    Component,
    Context,
    Flows,
    LPWriter,
    SiteCols,
    SiteLP,
    Tolerances,
    clean,
    first_violation,
    pyomo_env,
)
from models.components.coupling import import_limit
from models.specs import POWER_TOL_KW, DispatchProblem, GridSpec


def has_excess(g: GridSpec) -> bool:
    """Whether the contract excess is billed (a contracted demand and a demand rate)."""
    return g.contract_demand_kw is not None and g.demand_rate_yuan_per_kw_month > 0


def excess_so_far_kw(g: GridSpec) -> float:
    """Demand above the contract threshold already reached this month [kW]."""
    thr = g.contract_threshold_kw
    return 0.0 if thr is None else max(0.0, g.month_peak_kw - thr)


def demand_charge_yuan(g: GridSpec, imports_kw: np.ndarray) -> float:
    """Increase of the month's demand charge caused by ``imports_kw`` [kW] above the
    month-to-date peak (and the contract excess once more) [yuan]."""
    rate = g.demand_rate_yuan_per_kw_month
    peak = max(float(np.max(imports_kw, initial=0.0)), g.month_peak_kw)
    cost = rate * (peak - g.month_peak_kw)
    thr = g.contract_threshold_kw
    if thr is not None:
        cost += rate * (max(0.0, peak - thr) - max(0.0, g.month_peak_kw - thr))
    return cost


def peak_cap_kw(p: DispatchProblem, upper: float, other_cost_bound: float) -> float:
    """The highest peak [kW] a plan of ``p`` costing at most ``upper`` can have, when every
    cost but the demand charge is at least ``other_cost_bound`` [yuan]:
    ``month_peak + (upper - other_cost_bound) / demand_rate``."""
    g = p.grid
    return g.month_peak_kw + (upper - other_cost_bound) / g.demand_rate_yuan_per_kw_month


class Grid(Component):
    name = "grid connection and demand charge"

    def validate(self, p: DispatchProblem) -> list[str]:
        g, out = p.grid, []
        lim = np.asarray(g.import_limit_kw, dtype=float)
        if lim.ndim > 1 or (lim.ndim == 1 and lim.shape != (p.n,)):
            out.append(f"grid.import_limit_kw: {lim.size} values, expected 1 or {p.n}")
        elif not np.all(np.isfinite(lim)) or np.any(lim < 0):
            out.append(f"grid.import_limit_kw={g.import_limit_kw}: allowed range [0, inf) kW")
        for name in ("export_limit_kw", "demand_rate_yuan_per_kw_month", "month_peak_kw"):
            v = getattr(g, name)
            if not (np.isfinite(v) and v >= 0):
                unit = " kW" if name.endswith("_kw") else " yuan/(kW·month)"
                out.append(f"grid.{name}={v}: allowed range [0, inf){unit}")
        if g.contract_demand_kw is not None and not (np.isfinite(g.contract_demand_kw)
                                                     and g.contract_demand_kw > 0):
            out.append(f"grid.contract_demand_kw={g.contract_demand_kw}: allowed range "
                       "(0, inf) kW")
        if not 1.0 <= g.contract_tolerance <= 2.0:
            out.append(f"grid.contract_tolerance={g.contract_tolerance}: allowed range [1, 2]")
        return out

    def structure(self, p: DispatchProblem) -> tuple:
        g = p.grid
        return (g.export_limit_kw, g.demand_rate_yuan_per_kw_month,
                (g.contract_demand_kw, g.contract_tolerance) if has_excess(g) else None)

    # ------------------------------------------------------------------ arrays
    def columns(self, ctx: Context, w: LPWriter) -> None:
        p, n, dt, g = ctx.p, ctx.n, ctx.p.dt_h, ctx.p.grid
        rate = g.demand_rate_yuan_per_kw_month
        imp = w.columns("imp", n, 0.0, ctx.hi["imp"],
                        dt * np.asarray(p.import_price_yuan_per_kwh, dtype=float))
        exp = w.columns("exp", n, 0.0, ctx.hi["exp"],
                        -dt * np.asarray(p.export_price_yuan_per_kwh, dtype=float))
        w.columns("y", n, 0.0, 1.0)
        w.columns("peak", 1, g.month_peak_kw, np.inf, rate, labels=None)
        w.offset -= rate * g.month_peak_kw
        if has_excess(g):
            so_far = excess_so_far_kw(g)
            w.columns("excess", 1, so_far, np.inf, rate, labels=None)
            w.offset -= rate * so_far
        ctx.balance += [(ctx.t, imp, 1.0), (ctx.t, exp, -1.0)]

    def rows(self, ctx: Context, w: LPWriter) -> None:
        t, c, hi, g = ctx.t, w.cols, ctx.hi, ctx.p.grid
        w.rows("import_direction", -np.inf, 0.0, ctx.n,
               [(t, c["imp"], 1.0), (t, c["y"], -hi["imp"])])
        w.rows("export_direction", -np.inf, hi["exp"], ctx.n,
               [(t, c["exp"], 1.0), (t, c["y"], hi["exp"])])
        w.rows("peak_demand", 0.0, np.inf, ctx.n, [(t, c["peak"][0], 1.0), (t, c["imp"], -1.0)])
        if has_excess(g):
            w.rows("contract_excess", -g.contract_threshold_kw, np.inf, 1,
                   [([0], c["excess"][0], 1.0), ([0], c["peak"][0], -1.0)], labels=None)

    # ------------------------------------------------------------------ Pyomo
    def variables(self, ctx: Context, m: Any) -> None:
        pyo, hi, g = pyomo_env(), ctx.hi, ctx.p.grid
        m.imp = pyo.Var(m.T, bounds=lambda _, t: (0.0, hi["imp"][t]))
        m.exp = pyo.Var(m.T, bounds=lambda _, t: (0.0, hi["exp"][t]))
        m.y = pyo.Var(m.T, bounds=(0.0, 1.0))
        m.peak = pyo.Var(bounds=(g.month_peak_kw, None))
        if has_excess(g):
            m.excess = pyo.Var(bounds=(excess_so_far_kw(g), None))
        ctx.pyomo_balance += [(1.0, lambda m, t: m.imp[t]), (-1.0, lambda m, t: m.exp[t])]

    def constraints(self, ctx: Context, m: Any) -> None:
        pyo, p, hi, g = pyomo_env(), ctx.p, ctx.hi, ctx.p.grid
        m.import_direction = pyo.Constraint(m.T, rule=lambda m, t: m.imp[t] <= hi["imp"][t]
                                            * m.y[t])
        m.export_direction = pyo.Constraint(m.T, rule=lambda m, t: m.exp[t] <= hi["exp"][t]
                                            * (1 - m.y[t]))
        m.peak_demand = pyo.Constraint(m.T, rule=lambda m, t: m.peak >= m.imp[t])
        rate = g.demand_rate_yuan_per_kw_month
        cost = rate * (m.peak - g.month_peak_kw)
        if has_excess(g):
            m.contract_excess = pyo.Constraint(expr=m.excess >= m.peak - g.contract_threshold_kw)
            cost = cost + rate * (m.excess - excess_so_far_kw(g))
        pi = [float(v) for v in p.import_price_yuan_per_kwh]
        pe = [float(v) for v in p.export_price_yuan_per_kwh]
        ctx.pyomo_cost += [cost, sum(p.dt_h * (pi[t] * m.imp[t] - pe[t] * m.exp[t])
                                     for t in range(p.n))]

    # ------------------------------------------------------------------ integer decisions
    def integer_columns(self, p: DispatchProblem, cols: SiteCols) -> np.ndarray:
        return cols["y"]

    def candidates(self, p: DispatchProblem, cols: SiteCols) -> np.ndarray:
        """Export priced at or above import: a relaxation may import and export at once."""
        if p.grid.export_limit_kw <= 0:
            return EMPTY
        pays = (np.asarray(p.export_price_yuan_per_kwh)
                >= np.asarray(p.import_price_yuan_per_kwh))
        return cols["y"][pays]

    def repairs(self, p: DispatchProblem, cols: SiteCols, x: np.ndarray,
                ) -> tuple[np.ndarray, np.ndarray]:
        imp, exp = x[cols["imp"]], x[cols["exp"]]
        bad = np.flatnonzero(np.minimum(imp, exp) > POWER_TOL_KW)
        return cols["y"][bad], (imp[bad] >= exp[bad]).astype(float)

    def from_hint(self, p: DispatchProblem, cols: SiteCols, hint: Flows,
                  ) -> tuple[np.ndarray, np.ndarray]:
        imp = np.asarray(hint.grid_import_kw, dtype=float)
        exp = np.asarray(hint.grid_export_kw, dtype=float)
        on = (imp > POWER_TOL_KW) | (exp > POWER_TOL_KW)
        return cols["y"][on], (imp[on] > POWER_TOL_KW).astype(float)

    def start(self, p: DispatchProblem, cols: SiteCols, x: np.ndarray,
              ) -> tuple[np.ndarray, np.ndarray]:
        return cols["y"], (x[cols["imp"]] > POWER_TOL_KW).astype(float)

    # ------------------------------------------------------------------ demand charge
    def demand_columns(self, p: DispatchProblem, lp: SiteLP) -> tuple[np.ndarray, float]:
        g = p.grid
        if g.demand_rate_yuan_per_kw_month <= 0:
            return EMPTY, 0.0
        cols = np.concatenate([lp.cols["peak"], lp.cols.get_cols("excess")])
        rate = g.demand_rate_yuan_per_kw_month
        return cols, -rate * g.month_peak_kw - (rate * excess_so_far_kw(g)
                                                 if has_excess(g) else 0.0)

    def cap(self, p: DispatchProblem, slack_yuan: float) -> DispatchProblem | None:
        """Every interval's import at most ``month_peak + slack / rate`` [kW]."""
        g = p.grid
        if g.demand_rate_yuan_per_kw_month <= 0:
            return None
        cap = max(g.month_peak_kw + slack_yuan / g.demand_rate_yuan_per_kw_month,
                  g.month_peak_kw)
        lim = import_limit(p)
        if cap >= lim.max() - POWER_TOL_KW:
            return None
        new = np.minimum(lim, cap)
        return replace(p, grid=replace(g, import_limit_kw=new if lim.ndim and np.ptp(new)
                                       else float(new[0])))

    # ------------------------------------------------------------------ results
    def extract(self, p: DispatchProblem, cols: SiteCols, x: np.ndarray,
                out: dict[str, Any]) -> None:
        imp = clean(x[cols["imp"]])
        out["grid_import_kw"] = imp
        out["grid_export_kw"] = clean(x[cols["exp"]])
        out["peak_kw"] = max(float(imp.max(initial=0.0)), p.grid.month_peak_kw)

    def audit(self, p: DispatchProblem, f: Flows, tol: Tolerances) -> list[str]:
        imp = np.asarray(f.grid_import_kw, dtype=float)
        exp = np.asarray(f.grid_export_kw, dtype=float)
        lab, both = p.label, np.minimum(imp, exp)
        return [
            *first_violation(imp < -tol.kw, "grid_import_kw negative", imp, lab),
            *first_violation(exp < -tol.kw, "grid_export_kw negative", exp, lab),
            *first_violation(imp > import_limit(p) + tol.kw, "import above limit", imp, lab),
            *first_violation(exp > p.grid.export_limit_kw + tol.kw, "export above limit",
                             exp, lab),
            *first_violation(both > tol.kw, "simultaneous import and export", both, lab),
        ]

    def costs(self, p: DispatchProblem, f: Flows) -> dict[str, float]:
        imp = np.asarray(f.grid_import_kw, dtype=float)
        exp = np.asarray(f.grid_export_kw, dtype=float)
        return {
            "energy_cost_yuan": float(p.dt_h * np.sum(p.import_price_yuan_per_kwh * imp)),
            "export_revenue_yuan": float(p.dt_h * np.sum(p.export_price_yuan_per_kwh * exp)),
            "demand_charge_yuan": demand_charge_yuan(p.grid, imp),
        }


COMPONENT = Grid()
