"""Real-time operation: how a day-ahead plan meets the day's actual PV and load.

The battery follows the plan's power set-points with a feasible correction, interval by
interval (the rule a site controller applies without re-optimising):

1. set-point ``b = discharge - charge`` from the plan [kW] (positive discharges);
2. net meter ``net = load + flexible - pv - b`` with the actual load and PV;
3. **peak guard**: if ``net`` exceeds the import target - the month-to-date peak or the
   plan's own peak for the day, whichever is higher, on sites billed on demand; the import
   limit otherwise - discharge more (or charge less) by the excess;
4. **export guard**: if ``-net`` exceeds the export limit, charge more (or discharge less);
5. clip ``b`` to the rated power, to the state-of-charge window and to what is left of the
   day's cycle cap;
6. whatever surplus is still above the export limit is PV curtailment; import above the
   import limit (the battery was empty) is recorded as ``import_over_limit_kwh``.

Shiftable loads run as planned. Everything is in kW (interval averages) and kWh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models import StorageSpec, cycle_budget_kwh, power_room_kw, soc_after


@dataclass
class RealisedDay:
    """One day as it happened; arrays per interval [kW], ``soc_kwh`` at interval ends (the
    flow names of :class:`vpp.accounting.FlowArrays`)."""

    pv_used_kw: np.ndarray
    pv_curtailed_kw: np.ndarray
    grid_import_kw: np.ndarray
    grid_export_kw: np.ndarray
    charge_kw: np.ndarray
    discharge_kw: np.ndarray
    soc_kwh: np.ndarray
    flexible_load_kw: np.ndarray
    import_over_limit_kwh: float
    corrected_intervals: int


def realise_day(
    *, dt_h: float, load_kw: np.ndarray, pv_kw: np.ndarray, flexible_kw: np.ndarray,
    charge_kw: np.ndarray, discharge_kw: np.ndarray, storage: StorageSpec | None,
    soc0_kwh: float, import_limit_kw: float, export_limit_kw: float, import_target_kw: float,
) -> RealisedDay:
    """Apply the rule of the module docstring to one day.

    Parameters
    ----------
    load_kw, pv_kw : array
        Actual inflexible load and available PV [kW].
    flexible_kw : array
        Planned shiftable-load power [kW] (run as planned).
    charge_kw, discharge_kw : array
        The plan's battery set-points [kW].
    soc0_kwh : float
        State of charge at the start of the day [kWh].
    import_target_kw : float
        The import the peak guard defends [kW] (see the module docstring).
    """
    n = len(load_kw)
    imp, exp, ch, dis, curt, soc = (np.zeros(n) for _ in range(6))
    over = 0.0
    corrected = 0
    s = storage
    level = soc0_kwh
    budget = cycle_budget_kwh(s) if s is not None else np.inf
    target = min(import_target_kw, import_limit_kw)
    demand = (np.asarray(load_kw, dtype=float) + np.asarray(flexible_kw, dtype=float)).tolist()
    pv = np.asarray(pv_kw, dtype=float).tolist()
    plan_b = (np.asarray(discharge_kw, dtype=float) - np.asarray(charge_kw, dtype=float)).tolist()
    for t in range(n):
        b = plan_b[t] if s is not None else 0.0
        net = demand[t] - pv[t] - b
        wanted = b
        if net > target:
            b += net - target
        elif -net > export_limit_kw:
            b -= -net - export_limit_kw
        if s is not None:
            max_ch, max_dis = power_room_kw(s, level, dt_h, budget)
            b = min(max(b, -max_ch), max_dis)
            if abs(b - plan_b[t]) > 1e-6:
                corrected += 1
            if b >= 0:
                dis[t] = b
                budget -= b * dt_h
            else:
                ch[t] = -b
            level = soc_after(s, level, b, dt_h)
            soc[t] = level
        elif abs(b - wanted) > 1e-6:
            corrected += 1
        net = demand[t] - pv[t] - b
        if net >= 0:
            imp[t] = net
            if net > import_limit_kw + 1e-9:
                over += (net - import_limit_kw) * dt_h
        else:
            exp[t] = min(-net, export_limit_kw)
            curt[t] = -net - exp[t]
    pv_arr = np.asarray(pv_kw, dtype=float)
    return RealisedDay(pv_arr - curt, curt, imp, exp, ch, dis, soc,
                       np.asarray(flexible_kw, dtype=float), over, corrected)
