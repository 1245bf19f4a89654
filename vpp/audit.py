"""Independent audit of a plan document: recompute physics and money from its own numbers.

Uses only the plan's ``inputs``, ``parameters``, ``intervals`` and ``kpis`` (no solver, no
model code), so a plan produced elsewhere can be checked the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Tolerances: power [kW], energy [kWh], money [yuan] (plans are written with 6 decimals).
TOL_KW = 1e-3
TOL_KWH = 1e-2
TOL_YUAN = 1e-2


def audit_plan(plan: dict[str, Any]) -> list[str]:
    """Every violation found in ``plan``; an empty list means the plan is consistent.

    Checks: per-interval energy balance; PV used + curtailed = forecast; state-of-charge
    recursion with the plan's efficiencies; SOC, power and grid limits; one direction per
    interval (storage and grid); terminal SOC; daily cycle cap; shiftable-load energy; and the
    KPIs (energy cost, export revenue, degradation, subsidy = rate x discharge, net cost,
    demand charge) recomputed from the intervals.
    """
    out: list[str] = []
    inp, iv, par, k = plan["inputs"], plan["intervals"], plan["parameters"], plan["kpis"]
    dt_h = plan["interval_minutes"] / 60.0
    a = {key: np.asarray(v, dtype=float) for key, v in {**inp, **iv}.items()
         if key not in ("timestamps", "period")}
    n = len(inp["timestamps"])
    for key, arr in a.items():
        if arr.shape != (n,):
            out.append(f"{key}: {arr.size} values, expected {n}")
    if out:
        return out
    ts = inp["timestamps"]

    def where(mask: np.ndarray, what: str, values: np.ndarray) -> None:
        bad = np.flatnonzero(mask)
        if bad.size:
            t = int(bad[0])
            out.append(f"{what} at {ts[t]} ({bad.size} intervals), value {values[t]:.6g}")

    supply = a["pv_used_kw"] + a["grid_import_kw"] + a["discharge_kw"]
    demand = a["load_kw"] + a["flexible_load_kw"] + a["charge_kw"] + a["grid_export_kw"]
    where(np.abs(supply - demand) > TOL_KW, "energy balance off", supply - demand)
    pv_sum = a["pv_used_kw"] + a["pv_curtailed_kw"]
    where(np.abs(pv_sum - a["pv_forecast_kw"]) > TOL_KW, "PV used + curtailed != forecast",
          pv_sum - a["pv_forecast_kw"])
    for key in ("pv_used_kw", "pv_curtailed_kw", "charge_kw", "discharge_kw", "grid_import_kw",
                "grid_export_kw", "flexible_load_kw"):
        where(a[key] < -TOL_KW, f"{key} negative", a[key])
    g = par["grid"]
    where(a["grid_import_kw"] > g["import_limit_kw"] + TOL_KW, "import above limit",
          a["grid_import_kw"])
    where(a["grid_export_kw"] > g["export_limit_kw"] + TOL_KW, "export above limit",
          a["grid_export_kw"])
    both = np.minimum(a["grid_import_kw"], a["grid_export_kw"])
    where(both > TOL_KW, "simultaneous import and export", both)

    s = par["storage"]
    if s is None:
        where(np.abs(a["charge_kw"]) + np.abs(a["discharge_kw"]) > TOL_KW,
              "storage power without storage", a["charge_kw"])
    else:
        p_max = s["power_kw"]
        where(a["charge_kw"] > p_max + TOL_KW, "charge above rated power", a["charge_kw"])
        where(a["discharge_kw"] > p_max + TOL_KW, "discharge above rated power",
              a["discharge_kw"])
        both = np.minimum(a["charge_kw"], a["discharge_kw"])
        where(both > TOL_KW, "simultaneous charge and discharge", both)
        prev = np.concatenate([[s["soc_initial_kwh"]], a["soc_kwh"][:-1]])
        expect = prev + dt_h * (s["eta_charge"] * a["charge_kw"]
                                - a["discharge_kw"] / s["eta_discharge"])
        where(np.abs(expect - a["soc_kwh"]) > TOL_KWH, "SOC recursion off",
              a["soc_kwh"] - expect)
        where(a["soc_kwh"] < s["soc_min_kwh"] - TOL_KWH, "SOC below minimum", a["soc_kwh"])
        where(a["soc_kwh"] > s["soc_max_kwh"] + TOL_KWH, "SOC above maximum", a["soc_kwh"])
        if a["soc_kwh"][-1] < s["soc_terminal_min_kwh"] - TOL_KWH:
            out.append(f"terminal SOC {a['soc_kwh'][-1]:.3f} kWh below "
                       f"{s['soc_terminal_min_kwh']:.3f} kWh")
        if s.get("max_cycles_per_day") is not None:
            days = np.array([t[:10] for t in ts])
            cap = s["max_cycles_per_day"] * s["energy_kwh"]
            for d in dict.fromkeys(days):
                used = float(a["discharge_kw"][days == d].sum() * dt_h)
                if used > cap + TOL_KWH:
                    out.append(f"cycle cap: {used:.3f} kWh discharged on {d} > {cap:.3f} kWh")

    shift_energy = sum(sh["energy_kwh"] for sh in par["shiftable_loads"])
    if abs(a["flexible_load_kw"].sum() * dt_h - shift_energy) > TOL_KWH:
        out.append(f"flexible load energy {a['flexible_load_kw'].sum() * dt_h:.3f} kWh != "
                   f"{shift_energy:.3f} kWh required")
    inside = np.zeros(n, dtype=bool)
    for sh in par["shiftable_loads"]:
        inside[sh["start"]:sh["end"]] = True
    where(~inside & (a["flexible_load_kw"] > TOL_KW), "flexible load outside its window",
          a["flexible_load_kw"])

    energy_cost = dt_h * float(np.sum(a["import_price_yuan_per_kwh"] * a["grid_import_kw"]))
    export_rev = dt_h * float(np.sum(a["export_price_yuan_per_kwh"] * a["grid_export_kw"]))
    discharge = dt_h * float(a["discharge_kw"].sum())
    subsidy = dt_h * float(np.sum(a["subsidy_yuan_per_kwh"] * a["discharge_kw"]))
    deg = discharge * (s["degradation_yuan_per_kwh"] if s else 0.0)
    rate = g["demand_rate_yuan_per_kw_month"]
    peak = max(float(a["grid_import_kw"].max(initial=0.0)), g["month_peak_kw"])
    demand = rate * (peak - g["month_peak_kw"])
    if g.get("contract_demand_kw") is not None:
        thr = 1.05 * g["contract_demand_kw"]
        demand += rate * (max(0.0, peak - thr) - max(0.0, g["month_peak_kw"] - thr))
    checks = {
        "energy_cost_yuan": energy_cost,
        "export_revenue_yuan": export_rev,
        "discharge_kwh": discharge,
        "subsidy_yuan": subsidy,
        "degradation_cost_yuan": deg,
        "demand_charge_yuan": demand,
        "net_cost_yuan": energy_cost - export_rev + demand + deg - subsidy,
    }
    for key, value in checks.items():
        if abs(k[key] - value) > TOL_YUAN + 1e-6 * abs(value):
            out.append(f"kpis.{key}={k[key]:.6f} but recomputed {value:.6f}")
    if abs(k["savings_yuan"] - (k["baseline_cost_yuan"] - k["net_cost_yuan"])) > TOL_YUAN:
        out.append("kpis.savings_yuan != baseline_cost_yuan - net_cost_yuan")
    solver = plan["solver"]
    if solver["optimality_gap"] > solver["mip_rel_gap_required"] + 1e-9:
        out.append(f"optimality gap {solver['optimality_gap']:.3%} above the required "
                   f"{solver['mip_rel_gap_required']:.3%}")
    if solver["objective_bound_yuan"] > solver["objective_yuan"] + TOL_YUAN:
        out.append("objective bound above the objective")
    if plan["parameters"]["subsidy"]["counted_in_objective"] and (
        abs(solver["objective_yuan"] - checks["net_cost_yuan"]) > TOL_YUAN
        + 1e-6 * abs(checks["net_cost_yuan"])
    ):
        out.append(f"objective {solver['objective_yuan']:.6f} != recomputed net cost "
                   f"{checks['net_cost_yuan']:.6f}")
    return out
