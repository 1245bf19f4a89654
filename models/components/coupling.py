"""The site's bus: every flow meets in one power balance, which also bounds every flow.

For every interval ``t`` the parts' terms add up to the inflexible load::

    pv_used[t] + imp[t] + dis[t] - exp[t] - ch[t] - sum_k flex_k[t] == load[t]
                                                                 (power_balance[t])

(each part registers its own term and sign, :attr:`models.components.base.Context.balance`).
The balance bounds each flow in each interval (:func:`flow_bounds`): import cannot exceed
what load, flexible load and charging can absorb; export what PV and discharging can supply
beyond the load; charging what PV and the grid can deliver, nor the SOC window in one
interval; discharging what the load and export can take. These bounds are the flows' upper
bounds and the big-Ms of their direction constraints: they tighten the MILP without cutting
off any feasible dispatch (measured: CZ-MG-01 with a flat 1500 kW load and no PV went from
14.6 s to 4.1 s).

This module also checks what every problem needs (interval length, array lengths, finite
values) and names the intervals where the load cannot be served at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.components.base import Component, Context, Flows, LPWriter, Tolerances, pyomo_env
from models.components.shiftable import shiftable_range
from models.specs import DispatchProblem

#: The time series of a problem, all of length ``n``.
SERIES = ("load_kw", "pv_kw", "import_price_yuan_per_kwh", "export_price_yuan_per_kwh",
          "subsidy_yuan_per_kwh", "day_of_interval")


def import_limit(p: DispatchProblem) -> np.ndarray:
    """The import limit of every interval [kW] (a scalar limit broadcast)."""
    return np.broadcast_to(np.asarray(p.grid.import_limit_kw, dtype=float), (p.n,))


def flow_bounds(p: DispatchProblem) -> dict[str, np.ndarray]:
    """Largest value each flow (``imp``, ``exp``, ``ch``, ``dis``) can take in each
    interval [kW], from the limits and the balance (see the module docstring)."""
    n, dt = p.n, p.dt_h
    flex_min, flex_max = shiftable_range(p)
    s, g = p.storage, p.grid
    imp_lim = import_limit(p)
    ch = dis = np.zeros(n)
    if s is not None:
        window = s.soc_max_kwh - s.soc_min_kwh
        ch = np.minimum(s.power_kw, np.minimum(window / (s.eta_charge * dt),
                                               p.pv_kw + imp_lim - p.load_kw - flex_min))
        dis = np.minimum(s.power_kw, np.minimum(window * s.eta_discharge / dt,
                                                p.load_kw + flex_max + g.export_limit_kw))
        ch, dis = np.clip(ch, 0.0, None), np.clip(dis, 0.0, None)
    imp = np.minimum(imp_lim, p.load_kw + flex_max + ch)
    exp = np.minimum(g.export_limit_kw, p.pv_kw + dis - p.load_kw - flex_min)
    return {"imp": np.clip(imp, 0.0, None), "exp": np.clip(exp, 0.0, None), "ch": ch,
            "dis": dis}


class PowerBalance(Component):
    name = "power balance"

    def validate(self, p: DispatchProblem) -> list[str]:
        problems: list[str] = []
        n = p.n
        if not 0.0 < p.dt_h <= 24.0:
            problems.append(f"dt_h={p.dt_h}: allowed range (0, 24] h")
        if n == 0:
            problems.append("load_kw: empty horizon, need at least 1 interval")
        for name in SERIES:
            a = np.asarray(getattr(p, name), dtype=float)
            if a.shape != (n,):
                problems.append(f"{name}: length {a.size}, expected {n} (one per interval)")
            elif not np.all(np.isfinite(a)):
                problems.append(f"{name}: contains NaN or infinite values")
        load = np.asarray(p.load_kw, dtype=float)
        if load.shape == (n,) and np.nanmin(load, initial=0.0) < 0:
            problems.append(f"load_kw: minimum {np.nanmin(load):.6g}, allowed range [0, inf)")
        return problems

    def precheck(self, p: DispatchProblem) -> list[str]:
        min_flex, _ = shiftable_range(p)
        p_dis = p.storage.power_kw if p.storage is not None else 0.0
        lim = import_limit(p)
        # load that must be served beyond every source (PV can always be curtailed)
        short = p.load_kw + min_flex - p.pv_kw - lim - p_dis
        bad = np.flatnonzero(short > 1e-6)
        if not bad.size:
            return []
        t = int(bad[np.argmax(short[bad])])
        return [f"power balance: at {p.label(t)} load {p.load_kw[t] + min_flex[t]:.1f} kW "
                f"exceeds import limit {lim[t]:.1f} kW + storage {p_dis:.1f} kW + "
                f"PV {p.pv_kw[t]:.1f} kW (short {short[t]:.1f} kW; {bad.size} interval(s) "
                "affected)"]

    def structure(self, p: DispatchProblem) -> tuple:
        return (p.n, p.dt_h)

    def rows(self, ctx: Context, w: LPWriter) -> None:
        load = np.asarray(ctx.p.load_kw, dtype=float)
        w.rows("power_balance", load, load, ctx.n,
               [(t, c, sign) for t, c, sign in ctx.balance])

    def constraints(self, ctx: Context, m: Any) -> None:
        pyo = pyomo_env()
        load = [float(v) for v in ctx.p.load_kw]
        terms = ctx.pyomo_balance
        m.power_balance = pyo.Constraint(
            m.T, rule=lambda m, t: sum(sign * f(m, t) for sign, f in terms) == load[t])

    def audit(self, p: DispatchProblem, f: Flows, tol: Tolerances) -> list[str]:
        supply = (np.asarray(f.pv_used_kw) + np.asarray(f.grid_import_kw)
                  + np.asarray(f.discharge_kw))
        demand = (np.asarray(p.load_kw) + np.asarray(f.flexible_load_kw)
                  + np.asarray(f.charge_kw) + np.asarray(f.grid_export_kw))
        off = supply - demand
        bad = np.flatnonzero(np.abs(off) > tol.kw)
        if not bad.size:
            return []
        return [f"energy balance off at {p.label(int(bad[0]))} ({bad.size} intervals), value "
                f"{off[bad[0]]:.6g}"]


COMPONENT = PowerBalance()
