"""Real-time operation: how a plan's set-point meets the actual PV and load of an interval.

The site controller follows the plan's battery set-point with a feasible correction, one
interval at a time (the rule it applies between re-plans, without optimising):

1. set-point ``b = discharge - charge`` from the plan [kW] (positive discharges);
2. net meter ``net = load + flexible - pv - b`` with the actual load and PV;
3. **peak guard**: if ``net`` exceeds the import target - on sites billed on demand the
   peak the plan defends (the month-to-date peak or the plan's own peak, whichever is
   higher); the import limit otherwise - discharge more (or charge less) by the excess;
4. **export guard**: if ``-net`` exceeds the export limit, charge more (or discharge less);
5. clip ``b`` to the rated power, to the state-of-charge window, to what is left of the
   day's cycle cap, and to the direction hold: the battery reverses direction only when
   the hold allows it (:mod:`models.components.direction`), otherwise it rests;
6. whatever surplus is still above the export limit is PV curtailment; import above the
   import limit (the battery was empty) is recorded as ``import_over_limit_kwh``.

Shiftable loads run as planned. Everything is in kW (interval averages) and kWh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from models import StorageSpec, cycle_budget_kwh, power_room_kw, soc_after


@dataclass
class BatteryState:
    """What the controller knows of the battery between intervals.

    ``soc_kwh`` [kWh]; ``side`` 1 charging, 0 discharging, None not yet known; ``held_h``
    time since the side was taken [h]; ``rested_h`` time since the battery last moved power
    [h]; ``discharged_today_kwh`` AC energy discharged since local midnight [kWh] (against
    the daily cycle cap). A change of side is dated as early as the rest before it and the
    hold allow, as :func:`models.components.direction.hold_sides` dates it in a plan.
    """

    soc_kwh: float
    side: int | None = None
    held_h: float = math.inf
    rested_h: float = math.inf
    discharged_today_kwh: float = 0.0

    def new_day(self) -> None:
        self.discharged_today_kwh = 0.0


@dataclass
class IntervalOutcome:
    """One interval as it happened [kW]."""

    grid_import_kw: float
    grid_export_kw: float
    charge_kw: float
    discharge_kw: float
    pv_curtailed_kw: float
    corrected: bool
    over_limit_kwh: float


def reversal_point_h(s: StorageSpec, state: BatteryState) -> float | None:
    """How long ago [h] the battery can have taken the other side, at the earliest time the
    rest since its last move and the hold allow; None if the hold forbids a reversal now."""
    hold = s.min_direction_hold_h or 0.0
    if state.side is None:
        return 0.0
    x = min(state.rested_h, state.held_h - hold)
    return x if x >= -1e-9 else None


def realise_interval(
    s: StorageSpec | None, state: BatteryState | None, dt_h: float, load_kw: float,
    pv_kw: float, flexible_kw: float, setpoint_kw: float, import_limit_kw: float,
    export_limit_kw: float, import_target_kw: float,
) -> IntervalOutcome:
    """Apply the rule of the module docstring to one interval and advance ``state``.

    ``setpoint_kw`` is the plan's ``discharge - charge`` [kW]; ``import_target_kw`` the
    import the peak guard defends [kW].
    """
    demand = load_kw + flexible_kw
    b = setpoint_kw if s is not None else 0.0
    net = demand - pv_kw - b
    target = min(import_target_kw, import_limit_kw)
    if net > target:
        b += net - target
    elif -net > export_limit_kw:
        b -= -net - export_limit_kw
    corrected = False
    if s is None:
        b = 0.0  # nothing to correct with
    else:
        max_ch, max_dis = power_room_kw(s, state.soc_kwh, dt_h,
                                        cycle_budget_kwh(s) - state.discharged_today_kwh)
        point = reversal_point_h(s, state)
        if point is None:
            if state.side == 1:
                max_dis = 0.0
            elif state.side == 0:
                max_ch = 0.0
        clipped = min(max(b, -max_ch), max_dis)
        corrected = abs(clipped - setpoint_kw) > 1e-6
        b = clipped
        side = 0 if b > 1e-9 else 1 if b < -1e-9 else state.side
        if side != state.side and state.side is not None:  # a first side is no change
            state.held_h = point if point is not None else 0.0
        state.side = side
        state.held_h += dt_h
        state.rested_h = 0.0 if abs(b) > 1e-9 else state.rested_h + dt_h
        if b > 0:
            state.discharged_today_kwh += b * dt_h
        # kept inside the window: rounding must not carry a level just outside it onwards
        state.soc_kwh = min(max(soc_after(s, state.soc_kwh, b, dt_h), s.soc_min_kwh),
                            s.soc_max_kwh)
    net = demand - pv_kw - b
    imp = exp = curt = over = 0.0
    if net >= 0:
        imp = net
        if net > import_limit_kw + 1e-9:
            over = (net - import_limit_kw) * dt_h
    else:
        exp = min(-net, export_limit_kw)
        curt = -net - exp
    return IntervalOutcome(imp, exp, max(-b, 0.0), max(b, 0.0), curt, corrected, over)


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
    state: BatteryState | None = field(default=None)


def realise_day(
    *, dt_h: float, load_kw: np.ndarray, pv_kw: np.ndarray, flexible_kw: np.ndarray,
    charge_kw: np.ndarray, discharge_kw: np.ndarray, storage: StorageSpec | None,
    state: BatteryState | None, import_limit_kw: float, export_limit_kw: float,
    import_target_kw: float,
) -> RealisedDay:
    """Apply :func:`realise_interval` to each interval of a day from ``state`` (advanced
    in place; its day's cycle count starts from 0)."""
    n = len(load_kw)
    out = {k: np.zeros(n) for k in ("imp", "exp", "ch", "dis", "curt", "soc")}
    over = 0.0
    corrected = 0
    if state is not None:
        state.new_day()
    plan_b = (np.asarray(discharge_kw, dtype=float) - np.asarray(charge_kw, dtype=float)).tolist()
    load = np.asarray(load_kw, dtype=float).tolist()
    pv = np.asarray(pv_kw, dtype=float).tolist()
    flex = np.asarray(flexible_kw, dtype=float).tolist()
    for t in range(n):
        o = realise_interval(storage, state, dt_h, load[t], pv[t], flex[t], plan_b[t],
                             import_limit_kw, export_limit_kw, import_target_kw)
        out["imp"][t], out["exp"][t] = o.grid_import_kw, o.grid_export_kw
        out["ch"][t], out["dis"][t], out["curt"][t] = o.charge_kw, o.discharge_kw, \
            o.pv_curtailed_kw
        out["soc"][t] = state.soc_kwh if state is not None else 0.0
        over += o.over_limit_kwh
        corrected += o.corrected
    pv_arr = np.asarray(pv_kw, dtype=float)
    return RealisedDay(pv_arr - out["curt"], out["curt"], out["imp"], out["exp"], out["ch"],
                       out["dis"], out["soc"], np.asarray(flexible_kw, dtype=float), over,
                       corrected, state)
