"""The grid connection: import, export, one direction per interval, energy prices and the
demand part of the two-part tariff, billed per billing month.

For intervals ``t`` of length ``dt`` [h] in billing month ``m(t)``, flow bounds ``I[t]``,
``E[t]`` from the balance (:func:`models.components.coupling.flow_bounds`, at most the
import and export limits), a peak margin ``q[t]`` [kW]::

    0 <= imp[t] <= I[t],  0 <= exp[t] <= E[t],  0 <= y[t] <= 1
    imp[t] <= I[t] * y[t]                                        (import_direction[t])
    exp[t] <= E[t] * (1 - y[t])                                  (export_direction[t])
    peak[m(t)] >= imp[t] + q[t]                                  (peak_demand[t])
    peak[0] >= month_peak,  peak[m] >= 0 for later months        (bounds)
    excess[m] >= peak[m] - tolerance * contract                  (contract_excess[m])
    excess[0] >= max(0, month_peak - tolerance * contract)       (bound)

``y`` is binary in the MILP (1: importing). Money [yuan]::

    sum_t dt * (price_imp[t] * imp[t] - price_exp[t] * exp[t])
      + sum_m rate[m] * (peak[m] - peak_so_far[m] + excess[m] - excess_so_far[m])

Each billing month is billed on its own peak: a horizon that crosses a month boundary pays
the first month's increase over its month-to-date peak and the next month's peak from 0.
The demand charge counts only what the plan adds to a month's bill. The margin ``q``
provisions for imports above the plan (an upper load quantile): the plan keeps what the
battery needs to hold the peak if the load comes in high. ``excess`` exists only with a
contracted demand and a demand rate. Columns ``imp[t] exp[t] y[t] peak[m] [excess[m]]``;
import and export enter the balance with signs +1 and -1; a ``peak_demand`` row carries every
month's ``peak`` column, with coefficient 0 for the other months (so the matrix pattern does
not move with the month boundary).
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
    rates = np.asarray(g.demand_rate_yuan_per_kw_month, dtype=float)
    return g.contract_demand_kw is not None and bool(np.any(rates > 0))


def excess_so_far_kw(g: GridSpec) -> float:
    """Demand above the contract threshold already reached in the first month [kW]."""
    thr = g.contract_threshold_kw
    return 0.0 if thr is None else max(0.0, g.month_peak_kw - thr)


def margin(p: DispatchProblem) -> np.ndarray:
    """The peak margin of every interval [kW]."""
    return np.broadcast_to(np.asarray(p.grid.peak_margin_kw, dtype=float), (p.n,))


def demand_charge_yuan(g: GridSpec, imports_kw: np.ndarray,
                       months: np.ndarray | None = None) -> float:
    """Increase of the demand charges caused by ``imports_kw`` [kW]: each billing month's
    peak above its peak so far (and the contract excess once more) [yuan]; ``months`` the
    billing month of each interval (default one month)."""
    imports_kw = np.asarray(imports_kw, dtype=float)
    months = np.zeros(len(imports_kw), dtype=int) if months is None else np.asarray(months)
    n_months = int(months.max(initial=0)) + 1
    rates, so_far = g.rates(n_months), g.month_peaks(n_months)
    thr = g.contract_threshold_kw
    cost = 0.0
    for m in range(n_months):
        peak = max(float(np.max(imports_kw[months == m], initial=0.0)), so_far[m])
        cost += rates[m] * (peak - so_far[m])
        if thr is not None:
            cost += rates[m] * (max(0.0, peak - thr) - max(0.0, so_far[m] - thr))
    return cost


def peak_cap_kw(p: DispatchProblem, upper: float, other_cost_bound: float) -> float:
    """The highest peak [kW] a plan of ``p`` costing at most ``upper`` can have in its first
    billing month, when every cost but the demand charge is at least ``other_cost_bound``
    [yuan]: ``month_peak + (upper - other_cost_bound) / demand_rate``."""
    g = p.grid
    return g.month_peak_kw + (upper - other_cost_bound) / g.rates(1)[0]


class Grid(Component):
    name = "grid connection and demand charge"

    def validate(self, p: DispatchProblem) -> list[str]:
        g, out = p.grid, []
        lim = np.asarray(g.import_limit_kw, dtype=float)
        if lim.ndim > 1 or (lim.ndim == 1 and lim.shape != (p.n,)):
            out.append(f"grid.import_limit_kw: {lim.size} values, expected 1 or {p.n}")
        elif not np.all(np.isfinite(lim)) or np.any(lim < 0):
            out.append(f"grid.import_limit_kw={g.import_limit_kw}: allowed range [0, inf) kW")
        for name in ("export_limit_kw", "month_peak_kw"):
            v = getattr(g, name)
            if not (np.isfinite(v) and v >= 0):
                out.append(f"grid.{name}={v}: allowed range [0, inf) kW")
        rates = np.asarray(g.demand_rate_yuan_per_kw_month, dtype=float)
        if rates.ndim > 1 or (rates.ndim == 1 and len(rates) != p.n_months):
            out.append(f"grid.demand_rate_yuan_per_kw_month: {rates.size} values, expected 1 "
                       f"or one per billing month ({p.n_months})")
        elif not (np.all(np.isfinite(rates)) and np.all(rates >= 0)):
            out.append(f"grid.demand_rate_yuan_per_kw_month={g.demand_rate_yuan_per_kw_month}: "
                       "allowed range [0, inf) yuan/(kW·month)")
        q = np.asarray(g.peak_margin_kw, dtype=float)
        if q.ndim > 1 or (q.ndim == 1 and q.shape != (p.n,)):
            out.append(f"grid.peak_margin_kw: {q.size} values, expected 1 or {p.n}")
        elif not (np.all(np.isfinite(q)) and np.all(q >= 0)):
            out.append("grid.peak_margin_kw: allowed range [0, inf) kW")
        if p.month_of_interval is not None:
            mo = np.asarray(p.month_of_interval)
            if mo.shape != (p.n,):
                out.append(f"month_of_interval: length {mo.size}, expected {p.n}")
            elif mo[0] != 0 or np.any(np.diff(mo) < 0) or np.any(np.diff(mo) > 1):
                out.append("month_of_interval: must start at 0 and rise by steps of 1")
        if g.contract_demand_kw is not None and not (np.isfinite(g.contract_demand_kw)
                                                     and g.contract_demand_kw > 0):
            out.append(f"grid.contract_demand_kw={g.contract_demand_kw}: allowed range "
                       "(0, inf) kW")
        if not 1.0 <= g.contract_tolerance <= 2.0:
            out.append(f"grid.contract_tolerance={g.contract_tolerance}: allowed range [1, 2]")
        return out

    def structure(self, p: DispatchProblem) -> tuple:
        return (p.n_months, has_excess(p.grid))

    # ------------------------------------------------------------------ arrays
    def columns(self, ctx: Context, w: LPWriter) -> None:
        p, n, dt, g = ctx.p, ctx.n, ctx.p.dt_h, ctx.p.grid
        months = p.n_months
        rates, so_far = g.rates(months), g.month_peaks(months)
        imp = w.columns("imp", n, 0.0, ctx.hi["imp"],
                        dt * np.asarray(p.import_price_yuan_per_kwh, dtype=float))
        exp = w.columns("exp", n, 0.0, ctx.hi["exp"],
                        -dt * np.asarray(p.export_price_yuan_per_kwh, dtype=float))
        w.columns("y", n, 0.0, 1.0)
        w.columns("peak", months, so_far, np.inf, rates)
        w.offset -= float(rates @ so_far)
        if has_excess(g):
            excess = np.zeros(months)
            excess[0] = excess_so_far_kw(g)
            w.columns("excess", months, excess, np.inf, rates)
            w.offset -= float(rates @ excess)
        ctx.balance += [(ctx.t, imp, 1.0), (ctx.t, exp, -1.0)]

    def rows(self, ctx: Context, w: LPWriter) -> None:
        p, t, c, hi, g = ctx.p, ctx.t, w.cols, ctx.hi, ctx.p.grid
        w.rows("import_direction", -np.inf, 0.0, ctx.n,
               [(t, c["imp"], 1.0), (t, c["y"], -hi["imp"])])
        w.rows("export_direction", -np.inf, hi["exp"], ctx.n,
               [(t, c["exp"], 1.0), (t, c["y"], hi["exp"])])
        months, m_of = p.n_months, p.months
        peak_terms = [(t, c["peak"][m], (m_of == m).astype(float)) for m in range(months)]
        w.rows("peak_demand", margin(p), np.inf, ctx.n,
               [*peak_terms, (t, c["imp"], -1.0), *ctx.peak_terms])
        if has_excess(g):
            k = np.arange(months)
            w.rows("contract_excess", -g.contract_threshold_kw, np.inf, months,
                   [(k, c["excess"], 1.0), (k, c["peak"], -1.0)])

    # ------------------------------------------------------------------ Pyomo
    def variables(self, ctx: Context, m: Any) -> None:
        pyo, hi, g, p = pyomo_env(), ctx.hi, ctx.p.grid, ctx.p
        months = p.n_months
        so_far = g.month_peaks(months)
        m.M = pyo.RangeSet(0, months - 1)
        m.imp = pyo.Var(m.T, bounds=lambda _, t: (0.0, hi["imp"][t]))
        m.exp = pyo.Var(m.T, bounds=lambda _, t: (0.0, hi["exp"][t]))
        m.y = pyo.Var(m.T, bounds=(0.0, 1.0))
        m.peak = pyo.Var(m.M, bounds=lambda _, k: (so_far[k], None))
        if has_excess(g):
            first = excess_so_far_kw(g)
            m.excess = pyo.Var(m.M, bounds=lambda _, k: (first if k == 0 else 0.0, None))
        ctx.pyomo_balance += [(1.0, lambda m, t: m.imp[t]), (-1.0, lambda m, t: m.exp[t])]

    def constraints(self, ctx: Context, m: Any) -> None:
        pyo, p, hi, g = pyomo_env(), ctx.p, ctx.hi, ctx.p.grid
        months, m_of, q = p.n_months, p.months, margin(p)
        rates, so_far = g.rates(months), g.month_peaks(months)
        m.import_direction = pyo.Constraint(m.T, rule=lambda m, t: m.imp[t] <= hi["imp"][t]
                                            * m.y[t])
        m.export_direction = pyo.Constraint(m.T, rule=lambda m, t: m.exp[t] <= hi["exp"][t]
                                            * (1 - m.y[t]))
        extra = ctx.pyomo_peak_terms
        m.peak_demand = pyo.Constraint(
            m.T, rule=lambda m, t: m.peak[int(m_of[t])] + sum(k * f(m, t) for k, f in extra)
            >= m.imp[t] + float(q[t]))
        cost = sum(rates[k] * (m.peak[k] - so_far[k]) for k in range(months))
        if has_excess(g):
            thr = g.contract_threshold_kw
            m.contract_excess = pyo.Constraint(m.M, rule=lambda m, k: m.excess[k]
                                               >= m.peak[k] - thr)
            first = excess_so_far_kw(g)
            cost = cost + sum(rates[k] * (m.excess[k] - (first if k == 0 else 0.0))
                              for k in range(months))
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
        rates = g.rates(p.n_months)
        if not np.any(rates > 0):
            return EMPTY, 0.0
        cols = np.concatenate([lp.cols["peak"], lp.cols.get_cols("excess")])
        offset = -float(rates[0]) * (g.month_peak_kw
                                     + (excess_so_far_kw(g) if has_excess(g) else 0.0))
        return cols, offset

    def cap(self, p: DispatchProblem, slack_yuan: float) -> DispatchProblem | None:
        """Every interval's import at most ``peak_so_far + slack / rate`` of its billing
        month [kW]: a plan whose demand charges add up to at most ``slack_yuan`` cannot
        import more (every month's charge is >= 0, and a peak is never below an import,
        margin or not)."""
        g, months = p.grid, p.n_months
        rates, so_far = g.rates(months), g.month_peaks(months)
        with np.errstate(divide="ignore"):
            top = np.where(rates > 0, so_far + max(slack_yuan, 0.0) / rates, np.inf)
        cap = top[p.months]
        lim = import_limit(p)
        new = np.minimum(lim, cap)
        if np.all(new >= lim - POWER_TOL_KW):
            return None
        return replace(p, grid=replace(g, import_limit_kw=new if np.ptp(new) else float(new[0])))

    # ------------------------------------------------------------------ results
    def extract(self, p: DispatchProblem, cols: SiteCols, x: np.ndarray,
                out: dict[str, Any]) -> None:
        imp = clean(x[cols["imp"]])
        out["grid_import_kw"] = imp
        out["grid_export_kw"] = clean(x[cols["exp"]])
        first = imp[p.months == 0]
        out["peak_kw"] = max(float(first.max(initial=0.0)), p.grid.month_peak_kw)

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
            "demand_charge_yuan": demand_charge_yuan(p.grid, imp, p.months),
        }


COMPONENT = Grid()
