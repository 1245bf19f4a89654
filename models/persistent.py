"""One site's dispatch model built once and re-solved for new days: the simulation hot path.

:func:`models.dispatch.build_model` writes the formulation in Pyomo once, for the first day;
Pyomo hands it to HiGHS (its persistent interface). Every later day of the same site has the
same structure - the same intervals, battery, limits and shiftable-load windows - and differs
only in numbers, so :meth:`PersistentDispatch.solve` writes those numbers straight into the
HiGHS model by column and row index (vectorised bound, cost and coefficient changes) and
re-solves warm from the previous day's basis. Measured on the 30 pilot sites: rebuilding the
Pyomo model costs ≈70 ms per site-day, an update ≈0.3 ms.

What a day may change (everything else is the *structure*, :func:`structure_key`):

===================  =====================================================================
data                 where it goes in the HiGHS model
===================  =====================================================================
load, PV             power-balance right-hand sides; PV, import, export, charge and
                     discharge upper bounds and direction big-Ms (:func:`_flow_bounds`);
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

The construction checks itself: right after the build, the arrays computed for the first day
must equal what Pyomo wrote into HiGHS (bounds, costs, offset, right-hand sides and
big-M coefficients), so a change of the formulation in :func:`models.dispatch.populate` that
this module does not follow fails loudly instead of solving a different problem.

Solution strategy: as :func:`models.dispatch.solve_blocks` - LP relaxation (a bound), direction
repair (a plan), and the MILP with binaries on the candidate intervals only when the certified
gap is not reached - but on HiGHS arrays instead of Pyomo components.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import highspy
import numpy as np

from models.dispatch import (
    CONTRACT_TOLERANCE,
    GAP_FLOOR_YUAN,
    POWER_TOL_KW,
    DispatchProblem,
    DispatchResult,
    HighsRun,
    SolveOptions,
    _flow_bounds,
    _gap,
    build_model,
    peak_cap_kw,
    validate_problem,
)
from models.errors import InfeasiblePlanError

_OPTIMAL = highspy.HighsModelStatus.kOptimal
_INFEASIBLE = (highspy.HighsModelStatus.kInfeasible,
               highspy.HighsModelStatus.kUnboundedOrInfeasible)


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


@dataclass
class _Cols:
    """HiGHS column indices of one variable family, one per interval."""

    imp: np.ndarray
    exp: np.ndarray
    pv: np.ndarray
    y: np.ndarray
    ch: np.ndarray | None = None
    dis: np.ndarray | None = None
    soc: np.ndarray | None = None
    z: np.ndarray | None = None
    flex: list[tuple[int, int, int]] = field(default_factory=list)  # (k, t, column)


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
        self.has_storage = p0.storage is not None
        self.has_excess = (p0.grid.contract_demand_kw is not None
                           and p0.grid.demand_rate_yuan_per_kw_month > 0)
        t0 = time.perf_counter()
        m = build_model(p0)
        run = HighsRun(m, self.opts)
        self.version = run.version
        self.h: highspy.Highs = run.opt._solver_model
        col = run.opt._pyomo_var_to_solver_var_map
        row = run.opt._pyomo_con_to_solver_con_map
        n = p0.n

        def cols(var) -> np.ndarray:
            return np.array([col[id(var[t])] for t in range(n)], dtype=np.int32)

        def rows(con) -> np.ndarray:
            return np.array([row[con[t]] for t in range(n)], dtype=np.int32)

        self.c = _Cols(imp=cols(m.imp), exp=cols(m.exp), pv=cols(m.pv_used), y=cols(m.y))
        self.c.flex = [(k, t, col[id(m.flex[k, t])]) for k, t in m.F]
        self.c_peak = col[id(m.peak)]
        self.c_excess = col[id(m.excess)] if self.has_excess else None
        self.r_balance = rows(m.power_balance)
        self.r_imp_dir, self.r_exp_dir = rows(m.import_direction), rows(m.export_direction)
        self.r_source = rows(m.export_source)
        if self.has_storage:
            self.c.ch, self.c.dis = cols(m.ch), cols(m.dis)
            self.c.soc, self.c.z = cols(m.soc), cols(m.z)
            self.r_ch_dir, self.r_dis_dir = rows(m.charge_direction), rows(m.discharge_direction)
            self.r_soc0 = row[m.soc_recursion[0]]
            self.r_terminal = row[m.soc_terminal]
        self.dirs = np.concatenate([self.c.y, self.c.z]) if self.has_storage else self.c.y
        h = self.h
        h.setOptionValue("output_flag", False)
        # the same thread count as every Pyomo solve: HiGHS's thread pool is process-wide and
        # refuses a later run asking for a different size
        h.setOptionValue("threads", int(self.opts.threads))
        h.setOptionValue("mip_rel_gap", float(self.opts.mip_rel_gap))
        self._floor = GAP_FLOOR_YUAN
        self.build_seconds = time.perf_counter() - t0
        self._last: dict[str, np.ndarray] = {}
        self._check(p0)

    # ------------------------------------------------------------------ data -> arrays

    def _arrays(self, p: DispatchProblem) -> dict[str, np.ndarray | float]:
        """Every number of :class:`PersistentDispatch`'s update table for day ``p``."""
        dt, g, s = p.dt_h, p.grid, p.storage
        hi = _flow_bounds(p)
        rate = g.demand_rate_yuan_per_kw_month
        excess_so_far = 0.0
        if self.has_excess:
            excess_so_far = max(0.0, g.month_peak_kw - CONTRACT_TOLERANCE * g.contract_demand_kw)
        a: dict[str, np.ndarray | float] = {
            "hi_imp": hi["imp"], "hi_exp": hi["exp"], "pv": np.asarray(p.pv_kw, dtype=float),
            "load": np.asarray(p.load_kw, dtype=float),
            "cost_imp": dt * np.asarray(p.import_price_yuan_per_kwh, dtype=float),
            "cost_exp": -dt * np.asarray(p.export_price_yuan_per_kwh, dtype=float),
            "peak_lb": g.month_peak_kw, "excess_lb": excess_so_far,
            "offset": -rate * g.month_peak_kw - rate * excess_so_far,
        }
        if s is not None:
            a["hi_ch"], a["hi_dis"] = hi["ch"], hi["dis"]
            a["cost_dis"] = dt * (s.degradation_yuan_per_kwh
                                  - np.asarray(p.subsidy_yuan_per_kwh, dtype=float))
            a["soc0"], a["terminal"] = s.soc_initial_kwh, s.terminal_min_kwh
        return a

    def _check(self, p0: DispatchProblem) -> None:
        """The update arrays of ``p0`` must be what Pyomo wrote (see the module docstring)."""
        lp = self.h.getLp()
        a = self._arrays(p0)
        cl, cu = np.asarray(lp.col_lower_), np.asarray(lp.col_upper_)
        rl, ru = np.asarray(lp.row_lower_), np.asarray(lp.row_upper_)
        cost = np.asarray(lp.col_cost_)
        c = self.c
        checks = [
            ("import bound", cu[c.imp], a["hi_imp"]), ("export bound", cu[c.exp], a["hi_exp"]),
            ("PV bound", cu[c.pv], a["pv"]), ("balance rhs", rl[self.r_balance], a["load"]),
            ("balance rhs", ru[self.r_balance], a["load"]),
            ("import cost", cost[c.imp], a["cost_imp"]),
            ("export cost", cost[c.exp], a["cost_exp"]),
            ("peak bound", cl[self.c_peak], a["peak_lb"]), ("offset", lp.offset_, a["offset"]),
            ("import big-M", self._coeffs(self.r_imp_dir, c.y), -a["hi_imp"]),
            ("export big-M", self._coeffs(self.r_exp_dir, c.y), a["hi_exp"]),
            ("export big-M rhs", ru[self.r_exp_dir], a["hi_exp"]),
            ("export-source load", self._coeffs(self.r_source, c.y), -a["load"]),
            ("export-source rhs", ru[self.r_source], -a["load"]),
        ]
        if self.has_storage:
            checks += [
                ("charge bound", cu[c.ch], a["hi_ch"]), ("discharge bound", cu[c.dis], a["hi_dis"]),
                ("discharge cost", cost[c.dis], a["cost_dis"]),
                ("initial SOC rhs", rl[self.r_soc0], a["soc0"]),
                ("terminal SOC", rl[self.r_terminal], a["terminal"]),
                ("charge big-M", self._coeffs(self.r_ch_dir, c.z), -a["hi_ch"]),
                ("discharge big-M", self._coeffs(self.r_dis_dir, c.z), a["hi_dis"]),
            ]
        for name, got, want in checks:
            if not np.allclose(got, want, rtol=1e-9, atol=1e-9):
                raise RuntimeError(f"persistent model out of step with the formulation: {name}")

    def _coeffs(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Matrix coefficients at ``(rows[i], cols[i])`` (0 where Pyomo dropped a zero term)."""
        a = self.h.getLp().a_matrix_
        by_row = a.format_ == highspy.MatrixFormat.kRowwise
        start, index, value = (np.asarray(a.start_), np.asarray(a.index_),
                               np.asarray(a.value_))
        out = np.zeros(len(rows))
        for i, (r, c) in enumerate(zip(rows, cols, strict=True)):
            major, minor = (r, c) if by_row else (c, r)
            lo, up = start[major], start[major + 1]
            hit = np.flatnonzero(index[lo:up] == minor)
            if len(hit):
                out[i] = value[lo + hit[0]]
        return out

    def _coeff(self, name: str, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> None:
        """Set matrix coefficients ``(rows[i], cols[i])``, calling HiGHS only for those that
        changed since the last update (most big-Ms repeat from day to day)."""
        last = self._last.get(name)
        todo = np.arange(len(rows)) if last is None else np.flatnonzero(last != values)
        for i in todo:
            self.h.changeCoeff(int(rows[i]), int(cols[i]), float(values[i]))
        self._last[name] = np.array(values, dtype=float)

    def _update(self, p: DispatchProblem) -> None:
        h, c = self.h, self.c
        a = self._arrays(p)
        n = p.n
        zeros = np.zeros(n)

        def bounds(idx: np.ndarray, lo: np.ndarray, up: np.ndarray) -> None:
            h.changeColsBounds(len(idx), idx, lo, up)

        bounds(c.imp, zeros, a["hi_imp"])
        bounds(c.exp, zeros, a["hi_exp"])
        bounds(c.pv, zeros, a["pv"])
        h.changeRowsBounds(n, self.r_balance, a["load"], a["load"])
        costs = [(c.imp, a["cost_imp"]), (c.exp, a["cost_exp"])]
        h.changeColBounds(self.c_peak, float(a["peak_lb"]), highspy.kHighsInf)
        if self.c_excess is not None:
            h.changeColBounds(self.c_excess, float(a["excess_lb"]), highspy.kHighsInf)
        h.changeObjectiveOffset(float(a["offset"]))
        self._coeff("imp", self.r_imp_dir, c.y, -a["hi_imp"])
        self._coeff("exp", self.r_exp_dir, c.y, a["hi_exp"])
        h.changeRowsBounds(n, self.r_exp_dir, np.full(n, -highspy.kHighsInf), a["hi_exp"])
        self._coeff("source", self.r_source, c.y, -a["load"])
        h.changeRowsBounds(n, self.r_source, np.full(n, -highspy.kHighsInf), -a["load"])
        if self.has_storage:
            bounds(c.ch, zeros, a["hi_ch"])
            bounds(c.dis, zeros, a["hi_dis"])
            costs.append((c.dis, a["cost_dis"]))
            self._coeff("ch", self.r_ch_dir, c.z, -a["hi_ch"])
            self._coeff("dis", self.r_dis_dir, c.z, a["hi_dis"])
            h.changeRowsBounds(n, self.r_dis_dir, np.full(n, -highspy.kHighsInf), a["hi_dis"])
            h.changeRowBounds(int(self.r_soc0), float(a["soc0"]), float(a["soc0"]))
            h.changeRowBounds(int(self.r_terminal), float(a["terminal"]), highspy.kHighsInf)
        for idx, v in costs:
            h.changeColsCost(len(idx), idx, v)
        # directions continuous in [0, 1] again (undo the previous day's fixes and binaries)
        nd = len(self.dirs)
        h.changeColsIntegrality(nd, self.dirs, np.full(nd, highspy.HighsVarType.kContinuous))
        h.changeColsBounds(nd, self.dirs, np.zeros(nd), np.ones(nd))

    # ------------------------------------------------------------------ solving

    def _run(self, stats: dict) -> tuple[highspy.HighsModelStatus, float, float]:
        # HiGHS measures its time limit on the instance's cumulative run clock
        self.h.setOptionValue("time_limit", self.h.getRunTime() + self.opts.time_limit_s)
        t0 = time.perf_counter()
        self.h.run()
        stats["highs"] += time.perf_counter() - t0
        stats["solves"] += 1
        info = self.h.getInfo()
        status = self.h.getModelStatus()
        return status, float(info.objective_function_value), float(info.mip_dual_bound)

    def _values(self) -> np.ndarray:
        return np.asarray(self.h.getSolution().col_value, dtype=float)

    def _offending(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = self.c
        grid_bad = np.flatnonzero(np.minimum(x[c.imp], x[c.exp]) > POWER_TOL_KW)
        if not self.has_storage:
            return np.array([], dtype=int), grid_bad
        return np.flatnonzero(np.minimum(x[c.ch], x[c.dis]) > POWER_TOL_KW), grid_bad

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
        self._floor = max(float(gap_floor_yuan), GAP_FLOOR_YUAN)
        # HiGHS stops at either gap: its absolute one carries the floor
        self.h.setOptionValue("mip_abs_gap", max(1e-9, self.opts.mip_rel_gap * self._floor))
        t0 = time.perf_counter()
        self._update(p)
        stats = {"highs": 0.0, "solves": 0}
        update_s = time.perf_counter() - t0
        lower, upper, x, seen_z, seen_y, method = self._lp_repair(p, stats)
        notes = [self._repair_note(lower, upper, seen_z, seen_y)] if x is not None else []
        gap = self._gap(upper, lower)
        rate = p.grid.demand_rate_yuan_per_kw_month
        if gap > self.opts.mip_rel_gap and rate > 0 and x is not None:
            capped = self._cap_peak(p, upper, stats)
            if capped is not None:
                t0 = time.perf_counter()
                self._update(capped)
                update_s += time.perf_counter() - t0
                low2, up2, x2, z2, y2, method = self._lp_repair(capped, stats)
                notes.append(f"import capped at {capped.grid.import_limit_kw:.1f} kW by the "
                             "incumbent")
                lower = max(lower, low2)  # both bound the same optimum
                seen_z |= z2
                seen_y |= y2
                if x2 is not None and up2 <= upper:
                    upper, x = up2, x2
                p = capped
                gap = self._gap(upper, lower)
        if x is None or gap > self.opts.mip_rel_gap:
            x, upper, lower, gap = self._milp(p, x, seen_z, seen_y, lower, stats, strict)
            method = "milp"
        sol = self._solution(p, x, upper, lower, gap, method, stats, update_s)
        sol.notes = notes
        sol.binaries = stats.get("binaries", 0)
        return sol

    @staticmethod
    def _repair_note(lower: float, upper: float, seen_z: set[int], seen_y: set[int]) -> str:
        return (f"LP bound {lower:.4f} yuan, repaired plan {upper:.4f} yuan "
                f"({len(seen_z)} storage and {len(seen_y)} grid intervals fixed)")

    def _gap(self, upper: float, lower: float) -> float:
        if not np.isfinite(upper) or not np.isfinite(lower):
            return float("inf")
        return max(0.0, upper - lower) / max(abs(upper), self._floor)

    def _lp_repair(self, p: DispatchProblem, stats: dict):
        """LP relaxation (the bound), then fix the direction of intervals that use both
        until none does (the plan). Returns ``(lower, upper, x, seen_z, seen_y, method)``;
        ``x`` is None (``upper`` inf) when a repair step turns infeasible."""
        c, h = self.c, self.h
        status, obj, _ = self._run(stats)
        if status != _OPTIMAL:
            raise self._error(status, p, "LP relaxation")
        lower, method = obj, "lp"
        x = self._values()
        seen_z: set[int] = set()
        seen_y: set[int] = set()
        for _ in range(2 * p.n + 1):
            bz, by = self._offending(x)
            if len(bz) == 0 and len(by) == 0:
                break
            method = "lp+repair"
            seen_z.update(bz.tolist())
            seen_y.update(by.tolist())
            fix_cols, fix_vals = [], []
            if len(bz):
                fix_cols.append(c.z[bz])
                fix_vals.append((x[c.ch[bz]] >= x[c.dis[bz]]).astype(float))
            if len(by):
                fix_cols.append(c.y[by])
                fix_vals.append((x[c.imp[by]] >= x[c.exp[by]]).astype(float))
            idx, val = np.concatenate(fix_cols), np.concatenate(fix_vals)
            h.changeColsBounds(len(idx), idx, val, val)
            status, obj, _ = self._run(stats)
            if status != _OPTIMAL:
                x = None
                break
            x = self._values()
        upper = obj if x is not None else np.inf
        return lower, upper, x, seen_z, seen_y, method

    def _cap_peak(self, p: DispatchProblem, upper: float, stats: dict) -> DispatchProblem | None:
        """``p`` with the import limit capped at the highest peak a plan costing ``upper``
        can have (:func:`models.dispatch.peak_cap_kw`: same optimum, tighter relaxation),
        or None when that is no tighter. ``L`` is the LP optimum without the demand charge."""
        h = self.h
        nd = len(self.dirs)
        h.changeColsBounds(nd, self.dirs, np.zeros(nd), np.ones(nd))
        demand_cols = [self.c_peak] + ([self.c_excess] if self.c_excess is not None else [])
        idx = np.array(demand_cols, dtype=np.int32)
        rate = p.grid.demand_rate_yuan_per_kw_month
        offset = h.getLp().offset_
        h.changeColsCost(len(idx), idx, np.zeros(len(idx)))
        h.changeObjectiveOffset(0.0)
        try:
            status, other, _ = self._run(stats)
        finally:
            h.changeColsCost(len(idx), idx, np.full(len(idx), rate))
            h.changeObjectiveOffset(offset)
        if status != _OPTIMAL:
            return None
        cap = peak_cap_kw(p, upper, other)
        g = p.grid
        if cap >= g.import_limit_kw - POWER_TOL_KW:
            return None
        return replace(p, grid=replace(g, import_limit_kw=max(cap, g.month_peak_kw)))

    def _milp(self, p: DispatchProblem, start: np.ndarray | None, seen_z: set[int],
              seen_y: set[int], lower: float, stats: dict, strict: bool = True):
        """MILP with binaries where a simultaneous direction can pay (see ``solve_blocks``)."""
        h, c = self.h, self.c
        nd = len(self.dirs)
        h.changeColsBounds(nd, self.dirs, np.zeros(nd), np.ones(nd))
        cz = set(seen_z)
        cy = set(seen_y)
        if self.has_storage:
            cz |= set(np.flatnonzero(np.asarray(p.subsidy_yuan_per_kwh) > 0).tolist())
        if p.grid.export_limit_kw > 0:
            cy |= set(np.flatnonzero(np.asarray(p.export_price_yuan_per_kwh)
                                     >= np.asarray(p.import_price_yuan_per_kwh)).tolist())
        binaries = c.y[sorted(cy)]
        if self.has_storage:
            binaries = np.concatenate([binaries, c.z[sorted(cz)]])
        h.changeColsIntegrality(len(binaries), binaries,
                                np.full(len(binaries), highspy.HighsVarType.kInteger))
        stats["binaries"] = len(binaries)
        if start is not None:
            s = start.copy()
            s[c.y] = (s[c.imp] > POWER_TOL_KW).astype(float)
            if self.has_storage:
                s[c.z] = (s[c.ch] > POWER_TOL_KW).astype(float)
            h.setSolution(len(s), np.arange(len(s), dtype=np.int32), s)
        status, obj, bound = self._run(stats)
        if status != _OPTIMAL and not (status == highspy.HighsModelStatus.kTimeLimit
                                       and np.isfinite(obj)):
            raise self._error(status, p, "MILP")
        x = self._values()
        bz, by = self._offending(x)
        if len(bz) or len(by):  # a direction outside the candidates: all binary, once more
            h.changeColsIntegrality(nd, self.dirs, np.full(nd, highspy.HighsVarType.kInteger))
            stats["binaries"] = nd
            status, obj, bound = self._run(stats)
            if status != _OPTIMAL:
                raise self._error(status, p, "MILP")
            x = self._values()
        lower = max(lower, bound)
        gap = self._gap(obj, lower)
        if gap > self.opts.mip_rel_gap + 1e-9 and strict:
            raise InfeasiblePlanError(
                [f"HiGHS reached a certified gap of {gap:.3%} within "
                 f"{self.opts.time_limit_s:g} s, above the required "
                 f"{self.opts.mip_rel_gap:.3%}; raise time_limit_s"], status=str(status))
        return x, obj, lower, gap

    def _error(self, status, p: DispatchProblem, stage: str) -> InfeasiblePlanError:
        if status in _INFEASIBLE:
            floor = p.storage.terminal_min_kwh if p.storage else 0.0
            return InfeasiblePlanError(
                [f"{stage}: no dispatch meets the power balance, SOC window, terminal SOC "
                 f"(>= {floor:.1f} kWh), daily cycle cap, import/export limits and "
                 "shiftable-load energy together; relax one of them"], status=str(status))
        return InfeasiblePlanError(
            [f"{stage}: HiGHS stopped with {status} before proving optimality"],
            status=str(status))

    def _solution(self, p: DispatchProblem, x: np.ndarray, upper: float, lower: float,
                  gap: float, method: str, stats: dict, update_s: float) -> DaySolution:
        c, n = self.c, p.n

        def clean(a: np.ndarray) -> np.ndarray:
            return np.where(np.abs(a) < 1e-9, 0.0, a)

        flex = np.zeros(n)
        shift = {sh.name: np.zeros(n) for sh in p.shiftable}
        for k, t, col in c.flex:
            flex[t] += x[col]
            shift[p.shiftable[k].name][t] = x[col]
        zeros = np.zeros(n)
        return DaySolution(
            pv_used_kw=np.clip(x[c.pv], 0.0, p.pv_kw),
            grid_import_kw=clean(x[c.imp]), grid_export_kw=clean(x[c.exp]),
            charge_kw=clean(x[c.ch]) if self.has_storage else zeros,
            discharge_kw=clean(x[c.dis]) if self.has_storage else zeros,
            soc_kwh=x[c.soc] if self.has_storage else zeros,
            flexible_load_kw=clean(flex), objective_yuan=float(upper), bound_yuan=float(lower),
            gap=float(gap), method=method,
            relative_gap=float(_gap(upper, lower)), solves=stats["solves"],
            highs_seconds=stats["highs"], update_seconds=update_s,
            shiftable_kw={k: clean(v) for k, v in shift.items()},
        )
