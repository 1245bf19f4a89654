"""Single-site dispatch: storage, grid import/export, PV curtailment and shiftable loads.

Sign convention (written once, used everywhere): every power is a non-negative magnitude;
``grid_import_kw`` flows from the grid into the site and ``grid_export_kw`` out of it, so the
net meter reading is ``grid_import_kw - grid_export_kw`` (import positive, export negative).
Storage powers are AC powers at the storage terminals.

The formulation, for intervals ``t = 0..n-1`` of length ``dt`` hours:

* power balance ``pv_used + imp + dis = load + flex + ch + exp``
* state of charge ``soc[t] = soc[t-1] + dt * (eta_c * ch[t] - dis[t] / eta_d)``, ``soc[-1] = soc0``
* bounds ``soc_min <= soc <= soc_max``, ``0 <= ch, dis <= P``, ``0 <= imp <= I``,
  ``0 <= exp <= E``, ``0 <= pv_used <= pv``
* one direction per interval: ``ch <= Mc * z``, ``dis <= Md * (1 - z)``, ``imp <= Mi * y``,
  ``exp <= Me * (1 - y)`` with ``z, y`` binary, where each ``M[t]`` is the largest value the
  flow can take in that interval given the limits, load, PV and SOC window
  (:func:`_flow_bounds`; at most ``P``, ``I``, ``E``), also used as the flow's upper bound
* terminal state ``soc[n-1] >= soc_terminal_min``; daily cycle cap
  ``sum_day dis * dt <= cycles_max * energy``
* peak ``peak >= imp[t]``, ``peak >= month_peak``; contract excess
  ``excess >= peak - 1.05 * contract``
* shiftable load ``k``: ``p_min <= flex_k[t] <= p_max`` inside its window, 0 outside,
  ``sum flex_k * dt = energy_k``
* export-source cut ``exp <= pv_used + dis - load * (1 - y)`` (valid for every dispatch;
  tightens the relaxation where export pays more than import)

Objective [yuan]::

    sum dt * (price_imp * imp - price_exp * exp + (degradation - subsidy) * dis)
      + demand_rate * (peak - month_peak) + demand_rate * (excess - excess_month)

Solution strategy (``SolveOptions.method="auto"``): solve the LP relaxation (a valid lower
bound); if it already uses one direction per interval it is optimal. Otherwise fix the
direction of offending intervals and re-solve the LP until none is left (an upper bound); if
``(upper - lower) / max(|upper|, 1)`` is within ``mip_rel_gap`` that plan is returned with
this certified gap. Otherwise, on sites with a demand charge, the incumbent caps the peak
any better plan can have (:func:`peak_cap_kw`), which tightens the relaxation without
changing the optimum, and the capped problem goes through the same steps; finally the MILP
with binaries where they can matter is solved from the incumbent. This runs on the same
model written as arrays (:func:`models.lp.site_lp`, checked against :func:`populate` term by
term in the tests) in ``highspy`` (:class:`models.certified.BlockModel`), for one site or for
sites coupled by a fleet.

``method="milp"`` is the reference path: the Pyomo model of :func:`populate`, handed to HiGHS
through Pyomo's persistent interface and solved straight as the MILP (:func:`solve_milp`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import TerminationCondition

from models.errors import InfeasiblePlanError, InvalidInputError

log = logging.getLogger(__name__)

#: Two quantities below this [kW] count as zero when checking "one direction per interval".
POWER_TOL_KW = 1e-6
#: Floor of the denominator of the relative optimality gap [yuan].
GAP_FLOOR_YUAN = 1.0
#: Billed again (double) is demand above this share of the contracted demand (1583号).
CONTRACT_TOLERANCE = 1.05


@dataclass(frozen=True)
class StorageSpec:
    """A battery as the model sees it.

    Parameters
    ----------
    power_kw : float
        Rated AC power, charge and discharge [kW].
    energy_kwh : float
        Nameplate energy [kWh].
    eta_charge, eta_discharge : float
        One-way efficiencies in (0, 1] [-].
    soc_min_kwh, soc_max_kwh, soc_initial_kwh : float
        State-of-charge window and start [kWh].
    soc_terminal_min_kwh : float or None
        Lowest allowed state of charge at the end of the horizon [kWh]; ``None`` means the
        initial state of charge.
    degradation_yuan_per_kwh : float
        Wear cost per kWh discharged (AC) [yuan/kWh].
    max_cycles_per_day : float or None
        Equivalent full cycles a calendar day may use, counted as discharged AC energy over
        nameplate energy [-]; ``None`` for no cap.
    """

    power_kw: float
    energy_kwh: float
    eta_charge: float
    eta_discharge: float
    soc_min_kwh: float
    soc_max_kwh: float
    soc_initial_kwh: float
    soc_terminal_min_kwh: float | None = None
    degradation_yuan_per_kwh: float = 0.0
    max_cycles_per_day: float | None = None

    @property
    def terminal_min_kwh(self) -> float:
        """Effective terminal state-of-charge floor [kWh]."""
        if self.soc_terminal_min_kwh is None:
            return self.soc_initial_kwh
        return self.soc_terminal_min_kwh


@dataclass(frozen=True)
class GridSpec:
    """The grid connection and the demand part of the two-part tariff.

    Parameters
    ----------
    import_limit_kw, export_limit_kw : float
        Limits at the meter [kW]; ``export_limit_kw = 0`` is anti-backflow.
    demand_rate_yuan_per_kw_month : float
        Basic charge on the month's maximum 15-minute import [yuan/(kW·month)]; 0 for sites
        billed on transformer capacity (their charge does not depend on dispatch).
    month_peak_kw : float
        Highest 15-minute import so far this month [kW]; only demand above it costs.
    contract_demand_kw : float or None
        Contracted demand [kW]; demand above 1.05 × contract is billed once more.
    """

    import_limit_kw: float
    export_limit_kw: float = 0.0
    demand_rate_yuan_per_kw_month: float = 0.0
    month_peak_kw: float = 0.0
    contract_demand_kw: float | None = None


@dataclass(frozen=True)
class ShiftableLoad:
    """A load that must take ``energy_kwh`` inside intervals ``[start, end)``.

    Parameters
    ----------
    name : str
    energy_kwh : float
        Energy to deliver inside the window [kWh].
    start, end : int
        Window as interval positions, ``end`` exclusive.
    p_max_kw, p_min_kw : float
        Power bounds inside the window [kW].
    """

    name: str
    energy_kwh: float
    start: int
    end: int
    p_max_kw: float
    p_min_kw: float = 0.0


@dataclass(frozen=True)
class DispatchProblem:
    """Everything one site's dispatch needs, as plain arrays of equal length ``n``.

    Parameters
    ----------
    dt_h : float
        Interval length [h].
    load_kw, pv_kw : array
        Inflexible load and available PV AC power, interval averages [kW].
    import_price_yuan_per_kwh, export_price_yuan_per_kwh : array
        Energy prices [yuan/kWh].
    subsidy_yuan_per_kwh : array
        Reward per kWh discharged [yuan/kWh]; zeros plan subsidy-blind.
    day_of_interval : array of int
        Calendar-day number of each interval, for the daily cycle cap.
    storage : StorageSpec or None
    grid : GridSpec
    shiftable : tuple of ShiftableLoad
    interval_labels : tuple of str, optional
        Names of the intervals (e.g. ``"07-15 18:00"``) used in error messages.
    """

    dt_h: float
    load_kw: np.ndarray
    pv_kw: np.ndarray
    import_price_yuan_per_kwh: np.ndarray
    export_price_yuan_per_kwh: np.ndarray
    subsidy_yuan_per_kwh: np.ndarray
    day_of_interval: np.ndarray
    storage: StorageSpec | None
    grid: GridSpec
    shiftable: tuple[ShiftableLoad, ...] = ()
    interval_labels: tuple[str, ...] | None = None

    @property
    def n(self) -> int:
        """Number of intervals."""
        return len(self.load_kw)

    def label(self, t: int) -> str:
        """Human name of interval ``t``."""
        if self.interval_labels is not None:
            return self.interval_labels[t]
        return f"interval {t}"


@dataclass(frozen=True)
class SolveOptions:
    """HiGHS settings.

    Parameters
    ----------
    mip_rel_gap : float
        Largest certified relative optimality gap a plan may have, in [0, 0.05] [-].
    time_limit_s : float
        Wall-clock limit of each HiGHS call, in (0, 3600] [s].
    method : {"auto", "milp"}
        ``auto``: LP relaxation, direction repair, MILP only if the gap demands it.
        ``milp``: straight to the MILP.
    threads : int
        HiGHS threads, in [1, 64].
    """

    mip_rel_gap: float = 1e-3
    time_limit_s: float = 60.0
    method: Literal["auto", "milp"] = "auto"
    threads: int = 1

    def validate(self) -> None:
        """Raise :class:`InvalidInputError` naming every out-of-range option."""
        problems = []
        if not 0.0 <= self.mip_rel_gap <= 0.05:
            problems.append(f"mip_rel_gap={self.mip_rel_gap}: allowed range [0, 0.05]")
        if not 0.0 < self.time_limit_s <= 3600.0:
            problems.append(f"time_limit_s={self.time_limit_s}: allowed range (0, 3600] s")
        if self.method not in ("auto", "milp"):
            problems.append(f"method={self.method!r}: allowed 'auto' or 'milp'")
        if not 1 <= self.threads <= 64:
            problems.append(f"threads={self.threads}: allowed range [1, 64]")
        if problems:
            raise InvalidInputError(problems, "invalid solver options")


@dataclass
class DispatchResult:
    """An optimal (within the certified gap) dispatch; arrays have the problem's length.

    Powers [kW] are interval averages; ``soc_kwh`` is the state at the end of each interval.
    """

    pv_used_kw: np.ndarray
    pv_curtailed_kw: np.ndarray
    charge_kw: np.ndarray
    discharge_kw: np.ndarray
    soc_kwh: np.ndarray
    grid_import_kw: np.ndarray
    grid_export_kw: np.ndarray
    flexible_load_kw: np.ndarray
    shiftable_kw: dict[str, np.ndarray]
    peak_kw: float
    objective_yuan: float
    objective_bound_yuan: float
    optimality_gap: float
    method: str
    solver_name: str
    solver_version: str
    solve_seconds: float
    highs_seconds: float
    solves: int
    binaries: int = 0
    log: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- validation


def validate_problem(p: DispatchProblem) -> None:
    """Check every input against its documented range; raise one error listing all."""
    problems: list[str] = []
    n = p.n
    if not 0.0 < p.dt_h <= 24.0:
        problems.append(f"dt_h={p.dt_h}: allowed range (0, 24] h")
    if n == 0:
        problems.append("load_kw: empty horizon, need at least 1 interval")
    arrays = {
        "load_kw": p.load_kw,
        "pv_kw": p.pv_kw,
        "import_price_yuan_per_kwh": p.import_price_yuan_per_kwh,
        "export_price_yuan_per_kwh": p.export_price_yuan_per_kwh,
        "subsidy_yuan_per_kwh": p.subsidy_yuan_per_kwh,
        "day_of_interval": p.day_of_interval,
    }
    for name, arr in arrays.items():
        a = np.asarray(arr, dtype=float)
        if a.shape != (n,):
            problems.append(f"{name}: length {a.size}, expected {n} (one per interval)")
            continue
        if not np.all(np.isfinite(a)):
            problems.append(f"{name}: contains NaN or infinite values")
    for name in ("load_kw", "pv_kw", "subsidy_yuan_per_kwh"):
        a = np.asarray(arrays[name], dtype=float)
        if a.shape == (n,) and np.nanmin(a, initial=0.0) < 0:
            problems.append(f"{name}: minimum {np.nanmin(a):.6g}, allowed range [0, inf)")
    s = p.storage
    if s is not None:
        if s.power_kw <= 0:
            problems.append(f"storage.power_kw={s.power_kw}: allowed range (0, inf) kW")
        if s.energy_kwh <= 0:
            problems.append(f"storage.energy_kwh={s.energy_kwh}: allowed range (0, inf) kWh")
        for name in ("eta_charge", "eta_discharge"):
            v = getattr(s, name)
            if not 0.0 < v <= 1.0:
                problems.append(f"storage.{name}={v}: allowed range (0, 1]")
        if not 0.0 <= s.soc_min_kwh <= s.soc_max_kwh <= s.energy_kwh:
            problems.append(
                f"storage SOC window: need 0 <= soc_min_kwh ({s.soc_min_kwh}) <= soc_max_kwh "
                f"({s.soc_max_kwh}) <= energy_kwh ({s.energy_kwh})"
            )
        if not s.soc_min_kwh <= s.soc_initial_kwh <= s.soc_max_kwh:
            problems.append(
                f"storage.soc_initial_kwh={s.soc_initial_kwh}: allowed range "
                f"[{s.soc_min_kwh}, {s.soc_max_kwh}] kWh"
            )
        if s.soc_terminal_min_kwh is not None and not (
            s.soc_min_kwh <= s.soc_terminal_min_kwh <= s.soc_max_kwh
        ):
            problems.append(
                f"storage.soc_terminal_min_kwh={s.soc_terminal_min_kwh}: allowed range "
                f"[{s.soc_min_kwh}, {s.soc_max_kwh}] kWh"
            )
        if s.degradation_yuan_per_kwh < 0:
            problems.append(
                f"storage.degradation_yuan_per_kwh={s.degradation_yuan_per_kwh}: "
                "allowed range [0, inf) yuan/kWh"
            )
        if s.max_cycles_per_day is not None and s.max_cycles_per_day < 0:
            problems.append(
                f"storage.max_cycles_per_day={s.max_cycles_per_day}: allowed range [0, inf)"
            )
    g = p.grid
    if g.import_limit_kw < 0:
        problems.append(f"grid.import_limit_kw={g.import_limit_kw}: allowed range [0, inf) kW")
    if g.export_limit_kw < 0:
        problems.append(f"grid.export_limit_kw={g.export_limit_kw}: allowed range [0, inf) kW")
    if g.demand_rate_yuan_per_kw_month < 0:
        problems.append(
            f"grid.demand_rate_yuan_per_kw_month={g.demand_rate_yuan_per_kw_month}: "
            "allowed range [0, inf)"
        )
    if g.month_peak_kw < 0:
        problems.append(f"grid.month_peak_kw={g.month_peak_kw}: allowed range [0, inf) kW")
    if g.contract_demand_kw is not None and g.contract_demand_kw <= 0:
        problems.append(
            f"grid.contract_demand_kw={g.contract_demand_kw}: allowed range (0, inf) kW"
        )
    names = [sh.name for sh in p.shiftable]
    if len(set(names)) != len(names):
        problems.append(f"shiftable loads: names must be unique, got {names}")
    for sh in p.shiftable:
        where = f"shiftable load {sh.name!r}"
        if not 0 <= sh.start < sh.end <= n:
            problems.append(f"{where}: window [{sh.start}, {sh.end}) must lie inside [0, {n})")
            continue
        if not 0.0 <= sh.p_min_kw <= sh.p_max_kw:
            problems.append(
                f"{where}: need 0 <= p_min_kw ({sh.p_min_kw}) <= p_max_kw ({sh.p_max_kw})"
            )
            continue
        hours = (sh.end - sh.start) * p.dt_h
        lo, hi = sh.p_min_kw * hours, sh.p_max_kw * hours
        if not lo - 1e-9 <= sh.energy_kwh <= hi + 1e-9:
            problems.append(
                f"{where}: energy_kwh={sh.energy_kwh} outside what its window can take, "
                f"[{lo:.6g}, {hi:.6g}] kWh ({hours:g} h at {sh.p_min_kw:g}-{sh.p_max_kw:g} kW)"
            )
    if problems:
        raise InvalidInputError(problems, "invalid dispatch problem")


def _shiftable_range(p: DispatchProblem) -> tuple[np.ndarray, np.ndarray]:
    """Least and most power all shiftable loads together can draw in each interval [kW]."""
    lo, hi = np.zeros(p.n), np.zeros(p.n)
    for sh in p.shiftable:
        lo[sh.start : sh.end] += sh.p_min_kw
        hi[sh.start : sh.end] += sh.p_max_kw
    return lo, hi


def precheck_feasibility(p: DispatchProblem) -> None:
    """Find infeasibilities that can be named exactly before solving.

    Raises
    ------
    InfeasiblePlanError
        With one reason per blocking constraint group.
    """
    reasons: list[str] = []
    dt = p.dt_h
    min_flex, _ = _shiftable_range(p)
    p_dis = p.storage.power_kw if p.storage is not None else 0.0
    # Supply side: load that must be served beyond every source (PV can always be curtailed).
    short = p.load_kw + min_flex - p.pv_kw - p.grid.import_limit_kw - p_dis
    bad = np.flatnonzero(short > 1e-6)
    if bad.size:
        t = int(bad[np.argmax(short[bad])])
        reasons.append(
            f"power balance: at {p.label(t)} load {p.load_kw[t] + min_flex[t]:.1f} kW exceeds "
            f"import limit {p.grid.import_limit_kw:.1f} kW + storage {p_dis:.1f} kW + "
            f"PV {p.pv_kw[t]:.1f} kW (short {short[t]:.1f} kW; {bad.size} interval(s) affected)"
        )
    s = p.storage
    if s is not None:
        need = s.terminal_min_kwh - s.soc_initial_kwh
        # Charging is limited by the converter and by what the grid and PV can deliver.
        headroom = np.clip(p.grid.import_limit_kw + p.pv_kw - p.load_kw - min_flex, 0, None)
        can = float(np.minimum(s.power_kw, headroom).sum() * dt * s.eta_charge)
        if need > can + 1e-6:
            reasons.append(
                f"terminal SOC {s.terminal_min_kwh:.1f} kWh unreachable from initial "
                f"{s.soc_initial_kwh:.1f} kWh: max charge {can:.1f} kWh in horizon "
                f"({s.power_kw:g} kW converter, charge efficiency {s.eta_charge:g}, "
                "grid and PV headroom)"
            )
    if reasons:
        raise InfeasiblePlanError(reasons, status="precheck")


# --------------------------------------------------------------------------- formulation


def _flow_bounds(p: DispatchProblem) -> dict[str, np.ndarray]:
    """Largest value each flow can take in each interval [kW], from limits and the balance.

    Import cannot exceed what load, flexible load and charging can absorb; export what PV
    and discharging can supply beyond the load; charging what PV and the grid can deliver, nor
    the SOC window in one interval; discharging what the load and export can take.
    """
    n, dt = p.n, p.dt_h
    flex_min, flex_max = _shiftable_range(p)
    s, g = p.storage, p.grid
    p_st = s.power_kw if s is not None else 0.0
    window = s.soc_max_kwh - s.soc_min_kwh if s is not None else 0.0
    ch = dis = np.zeros(n)
    if s is not None:
        ch = np.minimum(p_st, np.minimum(window / (s.eta_charge * dt),
                                         p.pv_kw + g.import_limit_kw - p.load_kw - flex_min))
        dis = np.minimum(p_st, np.minimum(window * s.eta_discharge / dt,
                                          p.load_kw + flex_max + g.export_limit_kw))
        ch, dis = np.clip(ch, 0.0, None), np.clip(dis, 0.0, None)
    imp = np.minimum(g.import_limit_kw, p.load_kw + flex_max + ch)
    exp = np.minimum(g.export_limit_kw, p.pv_kw + dis - p.load_kw - flex_min)
    return {"imp": np.clip(imp, 0.0, None), "exp": np.clip(exp, 0.0, None), "ch": ch,
            "dis": dis}


def build_model(p: DispatchProblem) -> pyo.ConcreteModel:
    """Write the formulation of the module docstring as a Pyomo model (objective ``cost``).

    Direction variables ``z`` (storage) and ``y`` (grid) are built continuous in [0, 1];
    :func:`solve_dispatch` makes the needed ones binary.
    """
    m = pyo.ConcreteModel(name="site_dispatch")
    populate(m, p)
    m.cost = pyo.Objective(expr=m.site_cost, sense=pyo.minimize)
    return m


def populate(m: pyo.Block, p: DispatchProblem) -> None:
    """Add one site's variables and constraints to block ``m``; its cost [yuan] becomes the
    expression ``m.site_cost`` (the caller builds the objective)."""
    n, dt = p.n, p.dt_h
    m.T = pyo.RangeSet(0, n - 1)
    load = [float(v) for v in p.load_kw]
    pv = [float(v) for v in p.pv_kw]
    pi = [float(v) for v in p.import_price_yuan_per_kwh]
    pe = [float(v) for v in p.export_price_yuan_per_kwh]
    g = p.grid
    s = p.storage

    # Per-interval upper bounds implied by the power balance. As the big-M of the direction
    # constraints they tighten the MILP without cutting off any feasible dispatch (measured:
    # CZ-MG-01 with a flat 1500 kW load and no PV went from 14.6 s to 4.1 s; the fleet of
    # 2026-07-15 needs the MILP on 4 sites instead of 6).
    hi = _flow_bounds(p)
    m.pv_used = pyo.Var(m.T, bounds=lambda _, t: (0.0, pv[t]))
    m.imp = pyo.Var(m.T, bounds=lambda _, t: (0.0, hi["imp"][t]))
    m.exp = pyo.Var(m.T, bounds=lambda _, t: (0.0, hi["exp"][t]))
    m.y = pyo.Var(m.T, bounds=(0.0, 1.0))
    m.peak = pyo.Var(bounds=(g.month_peak_kw, None))

    # Shiftable loads: one variable per interval of each window.
    m.F = pyo.Set(
        dimen=2,
        initialize=[(k, t) for k, sh in enumerate(p.shiftable) for t in range(sh.start, sh.end)],
    )
    m.flex = pyo.Var(
        m.F, bounds=lambda _, k, t: (p.shiftable[k].p_min_kw, p.shiftable[k].p_max_kw)
    )
    flex_at: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for k, t in m.F:
        flex_at[t].append((k, t))

    if s is not None:
        m.ch = pyo.Var(m.T, bounds=lambda _, t: (0.0, hi["ch"][t]))
        m.dis = pyo.Var(m.T, bounds=lambda _, t: (0.0, hi["dis"][t]))
        m.soc = pyo.Var(m.T, bounds=(s.soc_min_kwh, s.soc_max_kwh))
        m.z = pyo.Var(m.T, bounds=(0.0, 1.0))

    def balance(m, t):
        supply = m.pv_used[t] + m.imp[t]
        demand = load[t] + m.exp[t] + sum(m.flex[kt] for kt in flex_at[t])
        if s is not None:
            supply = supply + m.dis[t]
            demand = demand + m.ch[t]
        return supply == demand

    m.power_balance = pyo.Constraint(m.T, rule=balance)
    m.import_direction = pyo.Constraint(m.T, rule=lambda m, t: m.imp[t] <= hi["imp"][t] * m.y[t])
    m.export_direction = pyo.Constraint(
        m.T, rule=lambda m, t: m.exp[t] <= hi["exp"][t] * (1 - m.y[t])
    )
    m.peak_demand = pyo.Constraint(m.T, rule=lambda m, t: m.peak >= m.imp[t])

    # Valid inequality (a cut): exporting means not importing, so the export is PV and
    # discharge beyond the load, ``exp <= pv_used + dis - load (1 - y)``; with ``y = 1`` it
    # reads ``0 <= pv_used + dis``. Every dispatch satisfies it, but it stops the relaxation
    # from importing and exporting the same energy where export pays more than import
    # (valley hours): on the 2025 winter days of the pilot fleet that phantom trade put the
    # LP bound far below the optimum and sent 42 % of site-days to the MILP.
    def export_source(m, t):
        source = m.pv_used[t] + (m.dis[t] if s is not None else 0.0)
        return m.exp[t] <= source - load[t] * (1 - m.y[t])

    m.export_source = pyo.Constraint(m.T, rule=export_source)

    demand_cost = g.demand_rate_yuan_per_kw_month * (m.peak - g.month_peak_kw)
    if g.contract_demand_kw is not None and g.demand_rate_yuan_per_kw_month > 0:
        threshold = CONTRACT_TOLERANCE * g.contract_demand_kw
        excess_so_far = max(0.0, g.month_peak_kw - threshold)
        m.excess = pyo.Var(bounds=(excess_so_far, None))
        m.contract_excess = pyo.Constraint(expr=m.excess >= m.peak - threshold)
        demand_cost = demand_cost + g.demand_rate_yuan_per_kw_month * (m.excess - excess_so_far)

    m.shift_energy = pyo.Constraint(
        range(len(p.shiftable)),
        rule=lambda m, k: sum(
            m.flex[k, t] for t in range(p.shiftable[k].start, p.shiftable[k].end)
        )
        * dt
        == p.shiftable[k].energy_kwh,
    )

    energy = sum(dt * (pi[t] * m.imp[t] - pe[t] * m.exp[t]) for t in range(n))
    if s is not None:
        eta_c, eta_d = s.eta_charge, s.eta_discharge

        def soc_step(m, t):
            prev = m.soc[t - 1] if t > 0 else s.soc_initial_kwh
            return m.soc[t] == prev + dt * (eta_c * m.ch[t] - m.dis[t] / eta_d)

        m.soc_recursion = pyo.Constraint(m.T, rule=soc_step)
        m.soc_terminal = pyo.Constraint(expr=m.soc[n - 1] >= s.terminal_min_kwh)
        m.charge_direction = pyo.Constraint(m.T, rule=lambda m, t: m.ch[t] <= hi["ch"][t] * m.z[t])
        m.discharge_direction = pyo.Constraint(
            m.T, rule=lambda m, t: m.dis[t] <= hi["dis"][t] * (1 - m.z[t])
        )
        if s.max_cycles_per_day is not None:
            days = sorted({int(d) for d in p.day_of_interval})
            members = {d: [t for t in range(n) if int(p.day_of_interval[t]) == d] for d in days}
            cap = s.max_cycles_per_day * s.energy_kwh
            m.daily_cycles = pyo.Constraint(
                days, rule=lambda m, d: sum(m.dis[t] for t in members[d]) * dt <= cap
            )
        net = [
            s.degradation_yuan_per_kwh - float(p.subsidy_yuan_per_kwh[t]) for t in range(n)
        ]
        energy = energy + sum(dt * net[t] * m.dis[t] for t in range(n))
    m.other_cost = pyo.Expression(expr=energy)  # everything but the demand charge
    m.site_cost = pyo.Expression(expr=m.other_cost + demand_cost)


# --------------------------------------------------------------------------- solving


def _values(var, n: int) -> np.ndarray:
    return np.array([pyo.value(var[t]) for t in range(n)], dtype=float)


def both_ways(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intervals where two opposite flows [kW] (charge/discharge, import/export) are both
    above :data:`POWER_TOL_KW`."""
    return np.flatnonzero(np.minimum(a, b) > POWER_TOL_KW)


def _offending(m, p: DispatchProblem) -> tuple[list[int], list[int]]:
    """Intervals that charge and discharge, or import and export, at once."""
    n = p.n
    grid_bad = both_ways(_values(m.imp, n), _values(m.exp, n)).tolist()
    batt_bad: list[int] = []
    if p.storage is not None:
        batt_bad = both_ways(_values(m.ch, n), _values(m.dis, n)).tolist()
    return batt_bad, grid_bad


def direction_candidates(p: DispatchProblem) -> tuple[set[int], set[int]]:
    """Intervals whose storage (``z``) and grid (``y``) direction need a binary in the MILP
    before any relaxation is seen: where a simultaneous direction can pay - subsidised
    discharge, and export priced at or above import."""
    cz: set[int] = set()
    cy: set[int] = set()
    if p.storage is not None:
        cz = set(np.flatnonzero(np.asarray(p.subsidy_yuan_per_kwh) > 0).tolist())
    if p.grid.export_limit_kw > 0:
        cy = set(np.flatnonzero(np.asarray(p.export_price_yuan_per_kwh)
                                >= np.asarray(p.import_price_yuan_per_kwh)).tolist())
    return cz, cy


def no_plan_error(stage: str, status: str, infeasible: bool,
                  terminal_floor_kwh: float | None) -> InfeasiblePlanError:
    """The error for a solve that ended without a plan: proven infeasible (which constraint
    groups meet; ``terminal_floor_kwh`` named when there is one battery) or stopped early."""
    if infeasible:
        floor = "" if terminal_floor_kwh is None else f" (>= {terminal_floor_kwh:.1f} kWh)"
        return InfeasiblePlanError(
            [f"{stage}: no dispatch meets the power balance, SOC window, terminal SOC{floor}, "
             "daily cycle cap, import/export limits and shiftable-load energy together; "
             "relax one of them"], status=status)
    return InfeasiblePlanError(
        [f"{stage}: HiGHS stopped with {status} before proving optimality"], status=status)


def gap_error(stage: str, gap: float, opts: SolveOptions, status: str) -> InfeasiblePlanError:
    """The error for a MILP that stopped (time limit) above the required certified gap."""
    return InfeasiblePlanError(
        [f"{stage}HiGHS reached a certified gap of {gap:.3%} within {opts.time_limit_s:g} s, "
         f"above the required {opts.mip_rel_gap:.3%}; raise time_limit_s"], status=status)


_ONLY_VARS = {
    "check_for_new_or_removed_constraints": False, "check_for_new_or_removed_vars": False,
    "check_for_new_or_removed_params": False, "check_for_new_objective": False,
    "update_constraints": False, "update_parameters": False,
    "update_named_expressions": False, "update_objective": False, "update_vars": True,
}


class HighsRun:
    """One persistent HiGHS instance for a model, counting calls and time. The model must be
    complete when it is handed over: later solves push variable changes only."""

    def __init__(self, m: pyo.ConcreteModel, opts: SolveOptions) -> None:
        self.opt = SolverFactory("highs")
        if not self.opt.available():
            raise RuntimeError("HiGHS is not available: install the 'highspy' package")
        self.m = m
        self.opts = opts
        self.solves = 0
        self.highs_seconds = 0.0
        self.opt.set_instance(m)

    @property
    def version(self) -> str:
        return ".".join(str(v) for v in self.opt.version())

    def run(self, mip_gap: float | None = None):
        """Solve; return ``(termination, objective, bound)``, loading primals if any.

        HiGHS keeps one run clock per instance: the time limit is set on it (the limit of
        this call plus what earlier calls used), and this call's HiGHS time is its increase
        (Pyomo reports the clock's total, which summed over calls counts early ones again).
        """
        clock = self.opt._solver_model.getRunTime()
        res = self.opt.solve(
            self.m,
            load_solutions=False,
            raise_exception_on_nonoptimal_result=False,
            time_limit=clock + self.opts.time_limit_s,
            threads=self.opts.threads,
            rel_gap=mip_gap,
            solver_options={"mip_abs_gap": 1e-9, "output_flag": False},
            # between solves only variables change (fixed directions, binaries, bounds):
            # skip Pyomo's scan of every constraint, parameter and the objective
            auto_updates=_ONLY_VARS,
        )
        self.solves += 1
        self.highs_seconds += self.opt._solver_model.getRunTime() - clock
        tc = res.termination_condition
        if res.incumbent_objective is not None:
            res.solution_loader.load_vars()
        return tc, res.incumbent_objective, res.objective_bound


def _not_optimal(tc, p: DispatchProblem, stage: str) -> InfeasiblePlanError:
    infeasible = tc in (TerminationCondition.provenInfeasible,
                        TerminationCondition.infeasibleOrUnbounded)
    return no_plan_error(stage, str(tc.name), infeasible,
                         p.storage.terminal_min_kwh if p.storage else 0.0)


def solve_dispatch(p: DispatchProblem, opts: SolveOptions | None = None) -> DispatchResult:
    """Solve a dispatch problem to a certified relative gap of at most ``opts.mip_rel_gap``.

    Raises
    ------
    InvalidInputError
        Inputs outside their ranges (all listed).
    InfeasiblePlanError
        No plan exists (the reason names the blocking constraint group), or HiGHS stopped
        without a certified plan. A non-optimal result never becomes a plan.
    """
    opts = opts or SolveOptions()
    opts.validate()
    validate_problem(p)
    precheck_feasibility(p)
    t0 = time.perf_counter()
    if opts.method == "auto":
        # the same strategy on HiGHS arrays: no Pyomo round trip per LP (measured on the 30
        # sites of 2026-07-15: 9.5 s -> 3.8 s, of which HiGHS 3.6 s -> 1.1 s)
        from models.persistent import PersistentDispatch

        solver = PersistentDispatch(p, opts)
        sol = solver.solve(p)
        return sol.to_result(p, time.perf_counter() - t0, solver.version)
    m = build_model(p)  # method "milp": straight to the MILP
    hs = HighsRun(m, opts)
    out = solve_milp(hs, m, p, opts)
    return _result(m, p, hs, out, time.perf_counter() - t0)


def peak_cap_kw(p: DispatchProblem, upper: float, other_cost_bound: float) -> float:
    """The highest peak [kW] a plan of ``p`` costing at most ``upper`` can have, when every
    cost but the demand charge is at least ``other_cost_bound`` [yuan]:
    ``month_peak + (upper - other_cost_bound) / demand_rate``."""
    g = p.grid
    return g.month_peak_kw + (upper - other_cost_bound) / g.demand_rate_yuan_per_kw_month


@dataclass
class BlockSolve:
    """What :func:`solve_milp` proved: objective ``upper``, bound ``lower`` [yuan]."""

    upper: float
    lower: float
    gap: float
    method: str
    binaries: int
    notes: list[str]


def solve_milp(hs: HighsRun, m: pyo.Block, p: DispatchProblem, opts: SolveOptions,
               ) -> BlockSolve:
    """Solve the Pyomo model of ``hs`` (one site, :func:`build_model`) as the MILP to the
    certified gap and leave the plan loaded.

    Binaries only where a simultaneous direction can pay: subsidised discharge, export priced
    at or above import; if the plan still uses both directions somewhere else, those intervals
    become binary too and HiGHS runs again.
    """
    cz, cy = direction_candidates(p)
    for _ in range(p.n + 1):
        if p.storage is not None:
            for t in cz:
                m.z[t].domain = pyo.Binary
        for t in cy:
            m.y[t].domain = pyo.Binary
        tc, obj, bound = hs.run(mip_gap=opts.mip_rel_gap)
        if obj is None:
            raise _not_optimal(tc, p, "MILP")
        bz, by = _offending(m, p)
        if set(bz) <= cz and set(by) <= cy:
            break
        cz |= set(bz)
        cy |= set(by)
    upper = float(obj)
    lower = float(bound) if bound is not None else -np.inf
    gap = _gap(upper, lower)
    if gap > opts.mip_rel_gap + 1e-9:
        raise gap_error("", gap, opts, str(tc.name))
    return BlockSolve(upper, lower, gap, "milp", len(cz) + len(cy), [])


def _gap(upper: float, lower: float) -> float:
    if not np.isfinite(upper) or not np.isfinite(lower):
        return float("inf")
    return max(0.0, upper - lower) / max(abs(upper), GAP_FLOOR_YUAN)


def _result(m, p: DispatchProblem, hs: HighsRun, out: BlockSolve, seconds: float,
            objective: float | None = None) -> DispatchResult:
    """Read block ``m``'s plan; ``objective`` defaults to the solve's (single-site) one."""
    n = p.n
    pv_used = np.clip(_values(m.pv_used, n), 0.0, p.pv_kw)
    imp, exp = _values(m.imp, n), _values(m.exp, n)
    if p.storage is not None:
        ch, dis, soc = _values(m.ch, n), _values(m.dis, n), _values(m.soc, n)
    else:
        ch = dis = np.zeros(n)
        soc = np.zeros(n)
    shift = {}
    flex = np.zeros(n)
    for k, sh in enumerate(p.shiftable):
        arr = np.zeros(n)
        for t in range(sh.start, sh.end):
            arr[t] = pyo.value(m.flex[k, t])
        shift[sh.name] = arr
        flex += arr
    # Solver tolerances leave values like -1e-12: clean them so plans read exactly.
    clean = [np.where(np.abs(a) < 1e-9, 0.0, a) for a in (pv_used, imp, exp, ch, dis, flex)]
    pv_used, imp, exp, ch, dis, flex = clean
    return DispatchResult(
        pv_used_kw=pv_used,
        pv_curtailed_kw=np.where(p.pv_kw - pv_used < 1e-9, 0.0, p.pv_kw - pv_used),
        charge_kw=ch,
        discharge_kw=dis,
        soc_kwh=soc,
        grid_import_kw=imp,
        grid_export_kw=exp,
        flexible_load_kw=flex,
        shiftable_kw=shift,
        peak_kw=max(float(imp.max(initial=0.0)), p.grid.month_peak_kw),
        objective_yuan=out.upper if objective is None else objective,
        objective_bound_yuan=out.lower,
        optimality_gap=out.gap,
        method=out.method,
        solver_name="HiGHS",
        solver_version=hs.version,
        solve_seconds=seconds,
        highs_seconds=hs.highs_seconds,
        solves=hs.solves,
        binaries=out.binaries,
        log=out.notes,
    )
