"""Every cost, the subsidy and each KPI of a plan or of a realised day, defined once.

Plans (:mod:`vpp.planning`), the simulation's days and months (:mod:`vpp.simulation`) and the
audit (:mod:`vpp.audit`) all count with these functions. The money of each part of the model
comes from the part itself (:func:`models.costs`: energy, export, demand charge, wear,
subsidy); this module adds what the model does not know: the subsidy the plan *earns* at the
policy's rate whether or not it planned with it, the baseline without storage, energies and
ratios.

Definitions (per interval ``t``, ``dt`` [h]):

* PV self-consumed ``pv_used[t] - min(export[t], pv_used[t])`` [kW]: PV used on site, the
  export counted against PV first;
* consumption ``load[t] + flexible[t]`` [kW];
* ``net_cost = energy_cost - export_revenue + demand_charge + degradation - subsidy``
  [yuan];
* baseline: the same load and PV with no storage and no flexibility (shiftable loads spread
  evenly over their windows), PV to the load first, surplus exported up to the limit, the
  rest curtailed; ``savings = baseline_cost - net_cost``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from models import DispatchProblem, GridSpec, costs, demand_charge_yuan


@dataclass
class FlowArrays:
    """Per-interval quantities of a plan or a realised day [kW], ``soc_kwh`` at interval
    ends (the :class:`models.DispatchResult` names)."""

    pv_used_kw: np.ndarray
    pv_curtailed_kw: np.ndarray
    charge_kw: np.ndarray
    discharge_kw: np.ndarray
    soc_kwh: np.ndarray
    grid_import_kw: np.ndarray
    grid_export_kw: np.ndarray
    flexible_load_kw: np.ndarray


def baseline(p: DispatchProblem) -> FlowArrays:
    """The same load and PV without storage or flexibility (see the module docstring)."""
    flex = np.zeros(p.n)
    for sh in p.shiftable:
        flex[sh.start:sh.end] += sh.energy_kwh / ((sh.end - sh.start) * p.dt_h)
    net = p.load_kw + flex - p.pv_kw
    imp = np.clip(net, 0.0, None)
    surplus = np.clip(-net, 0.0, None)
    exp = np.minimum(surplus, p.grid.export_limit_kw)
    zeros = np.zeros(p.n)
    return FlowArrays(pv_used_kw=p.pv_kw - (surplus - exp), pv_curtailed_kw=surplus - exp,
                      charge_kw=zeros, discharge_kw=zeros, soc_kwh=zeros, grid_import_kw=imp,
                      grid_export_kw=exp, flexible_load_kw=flex)


def energies_kwh(p: DispatchProblem, f: FlowArrays) -> dict[str, float]:
    """Energies over the horizon [kWh]."""
    dt = p.dt_h
    pv_used = np.asarray(f.pv_used_kw, dtype=float)
    exp = np.asarray(f.grid_export_kw, dtype=float)
    return {
        "import_kwh": float(dt * np.sum(f.grid_import_kw)),
        "export_kwh": float(dt * exp.sum()),
        "charge_kwh": float(dt * np.sum(f.charge_kw)),
        "discharge_kwh": float(dt * np.sum(f.discharge_kw)),
        "load_kwh": float(dt * (np.sum(p.load_kw) + np.sum(f.flexible_load_kw))),
        "pv_available_kwh": float(dt * np.sum(p.pv_kw)),
        "pv_curtailed_kwh": float(dt * np.sum(f.pv_curtailed_kw)),
        "pv_self_consumed_kwh": float(dt * np.sum(pv_used - np.minimum(exp, pv_used))),
    }


def money_yuan(p: DispatchProblem, f: FlowArrays, subsidy_rate: np.ndarray,
               ) -> dict[str, float]:
    """The plan's money [yuan] by part, the subsidy at ``subsidy_rate`` [yuan/kWh] (what it
    earns, planned with or not), and ``net_cost_yuan``."""
    c = costs(replace(p, subsidy_yuan_per_kwh=np.asarray(subsidy_rate, dtype=float)), f)
    out = {k: c[k] for k in ("energy_cost_yuan", "export_revenue_yuan", "demand_charge_yuan",
                             "degradation_cost_yuan", "subsidy_yuan")}
    out["net_cost_yuan"] = c["objective_yuan"]
    return out


def ratios(e: dict[str, float], energy_kwh: float) -> dict[str, float]:
    """Equivalent full cycles, PV self-consumption and renewable share [-] from summed
    energies ``e`` (:func:`energies_kwh` keys) of a battery of ``energy_kwh``."""
    return {
        "equivalent_full_cycles": e["discharge_kwh"] / energy_kwh if energy_kwh else 0.0,
        "self_consumption_ratio": (e["pv_self_consumed_kwh"] / e["pv_available_kwh"]
                                   if e["pv_available_kwh"] > 0 else 0.0),
        "renewable_share": (min(1.0, e["pv_self_consumed_kwh"] / e["load_kwh"])
                            if e["load_kwh"] > 0 else 0.0),
    }


def kpis(p: DispatchProblem, f: FlowArrays, subsidy_rate: np.ndarray) -> dict[str, float]:
    """Costs [yuan], energies [kWh], peaks [kW] and ratios [-] of a plan and its baseline
    (the demand charge is the increase over the month-to-date peak)."""
    m = money_yuan(p, f, subsidy_rate)
    e = energies_kwh(p, f)
    b = baseline(p)
    b_cost = money_yuan(p, b, np.zeros(p.n))["net_cost_yuan"]
    energy_kwh = p.storage.energy_kwh if p.storage else 0.0
    return {
        **{k: m[k] for k in ("energy_cost_yuan", "export_revenue_yuan", "demand_charge_yuan",
                             "degradation_cost_yuan")},
        "discharge_kwh": e["discharge_kwh"],
        "charge_kwh": e["charge_kwh"],
        "subsidy_yuan": m["subsidy_yuan"],
        "net_cost_yuan": m["net_cost_yuan"],
        "baseline_cost_yuan": b_cost,
        "savings_yuan": b_cost - m["net_cost_yuan"],
        **{k: e[k] for k in ("import_kwh", "export_kwh", "load_kwh", "pv_available_kwh",
                             "pv_curtailed_kwh", "pv_self_consumed_kwh")},
        "peak_import_kw": float(np.max(f.grid_import_kw, initial=0.0)),
        "baseline_peak_import_kw": float(np.max(b.grid_import_kw, initial=0.0)),
        **ratios(e, energy_kwh),
    }


#: Tariff periods in which charging is cheap and discharge is not rewarded.
VALLEY_PERIODS = ("valley", "deep_valley")


def valley_cycling_kwh(periods: np.ndarray, charge_kw: np.ndarray, discharge_kw: np.ndarray,
                       dt_h: float) -> float:
    """Energy the battery both charged and discharged inside one stretch of valley
    intervals [kWh] (``min(charge, discharge)`` of each stretch): cycling that buys and
    sells at the same price, worth doing only for a reward on discharge."""
    valley = np.isin(np.asarray(periods, dtype=object), VALLEY_PERIODS)
    total, ch, dis = 0.0, 0.0, 0.0
    for t in range(len(valley)):
        if valley[t]:
            ch += float(charge_kw[t]) * dt_h
            dis += float(discharge_kw[t]) * dt_h
        if not valley[t] or t == len(valley) - 1:
            total += min(ch, dis)
            ch = dis = 0.0
    return total


def month_demand_charge_yuan(grid: GridSpec, peak_kw: float) -> float:
    """A billing month's whole demand charge [yuan] on its highest 15-minute import
    ``peak_kw`` (the contract excess billed once more)."""
    return demand_charge_yuan(replace(grid, month_peak_kw=0.0), np.array([peak_kw]))


def co2_avoided_t(consumption_kwh: float, net_import_kwh: float,
                  emission_factor_t_per_mwh: float) -> float:
    """CO2 avoided [t]: consumption not drawn from the grid, at the grid's factor."""
    return (consumption_kwh - net_import_kwh) * emission_factor_t_per_mwh / 1000.0
