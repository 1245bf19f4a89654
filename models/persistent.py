"""One site's dispatch model built once and re-solved for new days: the simulation hot path.

The first day's linear program (:func:`models.lp.site_lp`, the formulation of
:func:`models.dispatch.populate` as arrays) goes to HiGHS once. Every later day of the same site
has the same structure - the same intervals, battery, limits and shiftable-load windows - and
differs only in numbers, so :meth:`PersistentDispatch.solve` writes those numbers into the HiGHS
model by column and row index (:meth:`models.certified.BlockModel.set_block`: bounds, costs and
right-hand sides in three vectorised calls, matrix coefficients only where they changed, which
for the direction big-Ms is a few dozen a day) and re-solves warm from the previous day's basis.

What a day may change (everything else is the *structure*, :func:`structure_key`):

===================  =====================================================================
data                 where it goes in the HiGHS model
===================  =====================================================================
load, PV             power-balance right-hand sides; PV, import, export, charge and
                     discharge upper bounds and direction big-Ms (``_flow_bounds``);
                     the export-source cut's load coefficient and right-hand side
prices, subsidy,     costs of ``imp`` (``dt * price``), ``exp`` (``-dt * price``), ``dis``
degradation          (``dt * (degradation - subsidy)``)
month-to-date peak   lower bound of ``peak`` (and ``excess``); objective offset
                     ``-rate * month_peak - rate * excess_so_far``
initial SOC          right-hand side of the first SOC-recursion row
terminal SOC floor   lower bound of the terminal-SOC row
import limit         import and charge upper bounds and big-Ms (so the incumbent's peak
                     cap of :func:`models.dispatch.peak_cap_kw` is an update too)
===================  =====================================================================

Solution strategy: :meth:`models.certified.BlockModel.solve` - LP relaxation (a bound),
direction repair (a plan), the incumbent's peak cap, and the MILP with binaries on the
candidate intervals only when the certified gap is not reached.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from models.certified import BlockModel, Certified
from models.dispatch import (
    GAP_FLOOR_YUAN,
    DispatchProblem,
    DispatchResult,
    SolveOptions,
    validate_problem,
)


def structure_key(p: DispatchProblem) -> tuple:
    """Everything about ``p`` that the persistent model cannot change between solves."""
    s, g = p.storage, p.grid
    st = None if s is None else (s.power_kw, s.energy_kwh, s.eta_charge, s.eta_discharge,
                                 s.soc_min_kwh, s.soc_max_kwh, s.max_cycles_per_day)
    contract = (g.contract_demand_kw is not None and g.demand_rate_yuan_per_kw_month > 0)
    return (p.n, p.dt_h, st, g.export_limit_kw,
            g.demand_rate_yuan_per_kw_month, g.contract_demand_kw if contract else None,
            tuple(p.shiftable), np.asarray(p.day_of_interval, dtype=np.int64).tobytes())


@dataclass
class DaySolution:
    """A day's plan from :class:`PersistentDispatch`; powers [kW], ``soc_kwh`` at interval
    ends, objective and bound [yuan] (the bound is a valid lower bound of the optimum)."""

    pv_used_kw: np.ndarray
    grid_import_kw: np.ndarray
    grid_export_kw: np.ndarray
    charge_kw: np.ndarray
    discharge_kw: np.ndarray
    soc_kwh: np.ndarray
    flexible_load_kw: np.ndarray
    objective_yuan: float
    bound_yuan: float
    gap: float
    method: str
    relative_gap: float  # (plan - bound) / max(|plan|, 1 yuan), whatever the floor
    solves: int
    highs_seconds: float
    update_seconds: float
    shiftable_kw: dict[str, np.ndarray] = field(default_factory=dict)
    binaries: int = 0
    notes: list[str] = field(default_factory=list)

    def to_result(self, p: DispatchProblem, seconds: float, version: str) -> DispatchResult:
        """The same plan as a :class:`models.dispatch.DispatchResult` (``seconds`` wall)."""
        return DispatchResult(
            pv_used_kw=self.pv_used_kw,
            pv_curtailed_kw=np.where(p.pv_kw - self.pv_used_kw < 1e-9, 0.0,
                                     p.pv_kw - self.pv_used_kw),
            charge_kw=self.charge_kw, discharge_kw=self.discharge_kw, soc_kwh=self.soc_kwh,
            grid_import_kw=self.grid_import_kw, grid_export_kw=self.grid_export_kw,
            flexible_load_kw=self.flexible_load_kw, shiftable_kw=self.shiftable_kw,
            peak_kw=max(float(self.grid_import_kw.max(initial=0.0)), p.grid.month_peak_kw),
            objective_yuan=self.objective_yuan, objective_bound_yuan=self.bound_yuan,
            optimality_gap=self.gap, method=self.method, solver_name="HiGHS",
            solver_version=version, solve_seconds=seconds, highs_seconds=self.highs_seconds,
            solves=self.solves, binaries=self.binaries, log=list(self.notes))


class PersistentDispatch:
    """A site's dispatch model in HiGHS, updated and re-solved for each new day.

    Parameters
    ----------
    p0 : DispatchProblem
        The first day; fixes the structure (:func:`structure_key`).
    opts : SolveOptions
        Certified gap, time limit and threads of every solve.
    """

    def __init__(self, p0: DispatchProblem, opts: SolveOptions | None = None) -> None:
        self.opts = opts or SolveOptions()
        self.opts.validate()
        validate_problem(p0)
        self.key = structure_key(p0)
        t0 = time.perf_counter()
        self.model = BlockModel([p0], self.opts)
        self.version = self.model.version
        self.build_seconds = time.perf_counter() - t0
        self._first = True

    def solve(self, p: DispatchProblem, strict: bool = True,
              gap_floor_yuan: float = GAP_FLOOR_YUAN) -> DaySolution:
        """Plan day ``p`` (same structure as the first day) to the certified gap.

        The gap is ``(plan - bound) / max(|plan|, gap_floor_yuan)``: the default floor
        (1 yuan) makes it the plain relative gap; a larger floor measures it against the
        money at stake on days whose net cost is near zero. With ``strict=False`` a MILP that
        hits the time limit with a plan returns that plan and its (larger) certified gap
        instead of raising.

        Raises
        ------
        ValueError
            ``p`` differs from the first day in structure.
        InfeasiblePlanError
            No plan exists, or HiGHS stopped before certifying the gap.
        """
        if structure_key(p) != self.key:
            raise ValueError("day problem differs in structure from the persistent model's "
                             "first day; build a new PersistentDispatch")
        t0 = time.perf_counter()
        if not self._first or p is not self.model.blocks[0].problem:
            self.model.set_block(0, p)
        self._first = False
        update_s = time.perf_counter() - t0
        cert = self.model.solve(strict=strict, gap_floor_yuan=gap_floor_yuan)
        return day_solution(self.model, 0, cert, update_s)


def day_solution(model: BlockModel, k: int, cert: Certified, update_s: float = 0.0,
                 ) -> DaySolution:
    """Block ``k``'s plan from a certified solve of ``model``."""
    b = model.blocks[k]
    p, c, x, n = b.problem, b.cols, cert.x, b.problem.n

    def clean(a: np.ndarray) -> np.ndarray:
        return np.where(np.abs(a) < 1e-9, 0.0, a)

    flex = np.zeros(n)
    shift = {sh.name: np.zeros(n) for sh in p.shiftable}
    for (k_, t), col in zip(c.flex_kt, c.flex, strict=True):
        flex[t] += x[col]
        shift[p.shiftable[k_].name][t] = x[col]
    zeros = np.zeros(n)
    has_storage = c.ch is not None
    return DaySolution(
        pv_used_kw=np.clip(x[c.pv], 0.0, p.pv_kw),
        grid_import_kw=clean(x[c.imp]), grid_export_kw=clean(x[c.exp]),
        charge_kw=clean(x[c.ch]) if has_storage else zeros,
        discharge_kw=clean(x[c.dis]) if has_storage else zeros,
        soc_kwh=x[c.soc] if has_storage else zeros,
        flexible_load_kw=clean(flex), objective_yuan=cert.upper, bound_yuan=cert.lower,
        gap=cert.gap, method=cert.method, relative_gap=cert.relative_gap,
        solves=cert.solves, highs_seconds=cert.highs_seconds, update_seconds=update_s,
        shiftable_kw={name: clean(v) for name, v in shift.items()},
        binaries=cert.binaries, notes=list(cert.notes),
    )
