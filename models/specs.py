"""What a dispatch problem is made of, and what a solve returns: plain dataclasses.

The bottom of :mod:`models`: nothing here imports another module of the package but
:mod:`models.errors`. The equations these parameters enter are written, one part each, in
:mod:`models.components`; a problem is validated there too (:func:`models.site.validate`).

Sign convention (written once, used everywhere): every power is a non-negative magnitude;
``grid_import_kw`` flows from the grid into the site and ``grid_export_kw`` out of it, so the
net meter reading is ``grid_import_kw - grid_export_kw`` (import positive, export negative).
Storage powers are AC powers at the storage terminals. Powers are interval averages [kW],
energies [kWh], money [yuan].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from models.errors import InvalidInputError

#: Two quantities below this [kW] count as zero when checking "one direction per interval".
POWER_TOL_KW = 1e-6
#: Floor of the denominator of the relative optimality gap [yuan].
GAP_FLOOR_YUAN = 1.0


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
    cycles_used_first_day_kwh : float
        AC energy discharged on the horizon's first calendar day before the horizon starts
        [kWh] (a plan made during the day): counted against that day's cap.
    min_direction_hold_h : float or None
        Minimum time between two changes of direction (charging / discharging, rest allowed
        on either side) [h]; 0 or ``None`` for no rule (:mod:`models.components.direction`).
    direction_initial : {1, 0} or None
        The side before the horizon, 1 charging, 0 discharging; ``None`` unknown.
    direction_held_h : float or None
        Time since that side was taken [h]; ``None`` long enough ago.
    export_allowed : bool
        The battery may discharge while the site exports (feed the grid); False: export is
        PV beyond the load only (:mod:`models.components.storage_export`).
    hold_value_yuan_per_kwh_h : float
        A small value of energy held in the battery, per kWh and hour [yuan/(kWh*h)]: among
        plans of (almost) equal money the battery keeps its energy longer, so a load that
        comes in above its forecast finds it there. The closed loop's re-plans use it
        (:mod:`vpp.control`); 0 (plans of money alone) elsewhere. It moves a plan's
        objective by at most ``value * soc_max * hours`` [yuan].
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
    cycles_used_first_day_kwh: float = 0.0
    min_direction_hold_h: float | None = None
    direction_initial: int | None = None
    direction_held_h: float | None = None
    export_allowed: bool = True
    hold_value_yuan_per_kwh_h: float = 0.0

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
    import_limit_kw : float or array
        Import limit at the meter [kW], one value or one per interval.
    export_limit_kw : float
        Export limit at the meter [kW]; 0 is anti-backflow.
    demand_rate_yuan_per_kw_month : float or tuple of float
        Basic charge on a billing month's maximum 15-minute import [yuan/(kW·month)], one for
        every billing month of the horizon or one each (:attr:`DispatchProblem.
        month_of_interval`); 0 for sites billed on transformer capacity (their charge does
        not depend on dispatch).
    month_peak_kw : float
        Highest 15-minute import so far in the horizon's first billing month [kW]; only
        demand above it costs. Later billing months start from 0.
    contract_demand_kw : float or None
        Contracted demand [kW]; demand above ``contract_tolerance`` × contract is billed once
        more.
    contract_tolerance : float
        Share of the contracted demand above which demand is billed again [-] (1.05 under
        发改办价格〔2016〕1583号; from the tariff file).
    peak_margin_kw : float or array
        Import the demand charge provisions for above the planned import, one value or one
        per interval [kW] (e.g. an upper quantile of the load above its forecast, so that a
        plan keeps what its battery needs to hold the peak if the load comes in high).
    """

    import_limit_kw: float | np.ndarray
    export_limit_kw: float = 0.0
    demand_rate_yuan_per_kw_month: float | tuple[float, ...] = 0.0
    month_peak_kw: float = 0.0
    contract_demand_kw: float | None = None
    contract_tolerance: float = 1.05
    peak_margin_kw: float | np.ndarray = 0.0

    def rates(self, months: int) -> np.ndarray:
        """The demand rate of each of ``months`` billing months [yuan/(kW·month)]."""
        r = np.asarray(self.demand_rate_yuan_per_kw_month, dtype=float)
        return np.full(months, float(r)) if r.ndim == 0 else r

    def month_peaks(self, months: int) -> np.ndarray:
        """Peak so far of each billing month [kW]: ``month_peak_kw`` for the first, 0 for
        the months that start inside the horizon."""
        out = np.zeros(months)
        out[0] = self.month_peak_kw
        return out

    @property
    def contract_threshold_kw(self) -> float | None:
        """Demand above which the contract excess is billed [kW], or None."""
        if self.contract_demand_kw is None:
            return None
        return self.contract_tolerance * self.contract_demand_kw


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
    month_of_interval : array of int, optional
        Billing-month number of each interval, 0 for the first billing month of the horizon
        (non-decreasing, no gaps); ``None``: the whole horizon is one billing month.
    subsidy_rule : {"discharge", "net_of_grid_charging"}
        What earns the subsidy: each discharged kWh at its interval's rate, or per day the
        discharge net of grid charging (:mod:`models.components.subsidy`).
    subsidy_budget_kwh : float, optional
        At most this much discharge earns the subsidy over the horizon [kWh] (what is left
        of an annual cap); ``None`` for no cap.
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
    month_of_interval: np.ndarray | None = None
    subsidy_rule: str = "discharge"
    subsidy_budget_kwh: float | None = None

    @property
    def n(self) -> int:
        """Number of intervals."""
        return len(self.load_kw)

    @property
    def months(self) -> np.ndarray:
        """Billing-month number of each interval (zeros for one billing month)."""
        if self.month_of_interval is None:
            return np.zeros(self.n, dtype=np.int64)
        return np.asarray(self.month_of_interval, dtype=np.int64)

    @property
    def n_months(self) -> int:
        """Billing months the horizon touches."""
        return int(self.months.max(initial=0)) + 1

    def label(self, t: int) -> str:
        """Human name of interval ``t``."""
        if self.interval_labels is not None:
            return self.interval_labels[t]
        return f"interval {t}"


@dataclass(frozen=True)
class FeederCap:
    """Sites behind one feeder or substation and their aggregate limits [kW] (None: none)."""

    name: str
    members: tuple[str, ...]
    import_cap_kw: float | None = None
    export_cap_kw: float | None = None


@dataclass(frozen=True)
class DREvent:
    """A demand-response instruction on intervals ``[start, end)`` of the horizon.

    ``requested_kw`` is the change of the participants' aggregate grid import from their
    baseline (down for ``peak_shaving``, up for ``valley_filling``).
    """

    name: str
    kind: Literal["peak_shaving", "valley_filling"]
    start: int
    end: int
    requested_kw: float
    compensation_yuan_per_kwh: float = 0.0
    compensation_yuan_per_kw: float = 0.0
    shortfall_penalty_yuan_per_kwh: float = 0.0
    participants: tuple[str, ...] = ()

    @property
    def direction(self) -> int:
        return 1 if self.kind == "peak_shaving" else -1


@dataclass(frozen=True)
class SolveOptions:
    """HiGHS settings.

    Parameters
    ----------
    mip_rel_gap : float
        Largest certified relative optimality gap a plan may have, in [0, 0.05] [-].
    time_limit_s : float
        Wall-clock budget of one solve, every HiGHS call of it together, in (0, 3600] [s].
        A solve that runs out of it holding a plan returns that plan with status
        ``"time_limit"`` and its proven gap.
    method : {"auto", "milp"}
        ``auto``: LP relaxation, direction repair, MILP only if the gap demands it.
        ``milp``: straight to the MILP (the Pyomo reference path).
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


#: What a result is: certified within the required gap, or the best plan the time budget
#: allowed (its gap proven, but above the required one).
STATUSES = ("optimal", "time_limit")


@dataclass
class DispatchResult:
    """A plan and its certificate; arrays have the problem's length.

    Powers [kW] are interval averages; ``soc_kwh`` is the state at the end of each interval.
    ``optimality_gap`` is ``(objective - bound) / max(|objective|, floor)`` with the floor of
    the solve (1 yuan unless a larger one was asked for), ``relative_gap`` the same with the
    1-yuan floor. ``status`` is ``"optimal"`` when the gap is within the required one and
    ``"time_limit"`` when the time budget ran out first (the plan is feasible, its gap proven
    but larger; ``log`` says so).
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
    relative_gap: float = 0.0
    update_seconds: float = 0.0
    status: str = "optimal"
