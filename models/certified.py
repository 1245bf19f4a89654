"""Sites as blocks of one HiGHS model, solved to a certified gap: the fast path of every plan.

Each block is one site's linear program (:func:`models.site.site_lp`); a fleet adds coupling
columns and rows (shared feeder limits, demand-response events, :mod:`models.fleet`) that
reference the blocks' columns. The model goes to HiGHS through ``highspy`` as arrays, and a
block's numbers can be rewritten for a new day (:meth:`BlockModel.set_block`): bounds, costs
and right-hand sides by index, matrix coefficients only where they changed.

Strategy. Integer decisions (the grid's and the battery's direction, and whatever a
component adds) are what the components say they are (:class:`models.components.base.
Component`): which columns are binary, which must be binary from the start, how to repair a
plan that is not integer-feasible, what a known plan sets them to.

1. LP relaxation with every integer column continuous: a valid lower bound. With hints (a
   fleet: the sites' plans without the coupling), their integer decisions are fixed and the
   LP solved again: a plan, often within the gap already.
2. Repair: fix the integer columns the components name as wrong for the plan (e.g. the
   direction of an interval that charges and discharges at once, to its larger side) and
   re-solve, until none is named: a plan, whose cost is an upper bound.
3. If the gap is open and a site pays a demand charge: every cost but the demand charges is
   at least the LP optimum without them, so a plan as cheap as the incumbent cannot raise a
   site's demand charge by more than the difference; the components cap the site's imports
   accordingly (valid for the whole model, since every demand charge is >= 0) and 1-2 run
   again on the tighter model.
4. If still open: the MILP with binaries on the candidate columns and every column a repair
   touched, started from the repaired plan.

The gap is ``(plan - bound) / max(|plan|, floor)``; a plan is returned only within it (or,
with ``strict=False``, a MILP stopped by its time limit returns its plan and its gap).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field

import highspy
import numpy as np

from models.components.base import Component, Flows, SiteCols, SiteLP
from models.errors import InfeasiblePlanError, gap_error, no_plan_error
from models.site import parts, site_lp
from models.specs import GAP_FLOOR_YUAN, DispatchProblem, SolveOptions

_OPTIMAL = highspy.HighsModelStatus.kOptimal
_INFEASIBLE = (highspy.HighsModelStatus.kInfeasible,
               highspy.HighsModelStatus.kUnboundedOrInfeasible)
_CONT, _INT = highspy.HighsVarType.kContinuous, highspy.HighsVarType.kInteger
_banner = threading.Lock()
_quiet = False


def new_highs() -> highspy.Highs:
    """A HiGHS instance; the copyright banner HiGHS writes to stdout when a process creates
    its first instance is discarded (it would land in CLI output and JSON on stdout)."""
    global _quiet
    with _banner:
        if _quiet:
            return highspy.Highs()
        sys.stdout.flush()
        saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        try:
            h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(null)
            _quiet = True
        return h


def relative_gap(upper: float, lower: float, floor: float = GAP_FLOOR_YUAN) -> float:
    """``(upper - lower) / max(|upper|, floor)``, inf when either is not finite."""
    if not np.isfinite(upper) or not np.isfinite(lower):
        return float("inf")
    return max(0.0, upper - lower) / max(abs(upper), floor)


@dataclass
class Block:
    """One site in the model: its problem, current arrays, components and global
    positions."""

    problem: DispatchProblem
    lp: SiteLP
    cols: SiteCols  # global column indices
    col0: int
    row0: int
    parts: list[Component]

    def integer_columns(self) -> np.ndarray:
        return _cat(c.integer_columns(self.problem, self.cols) for c in self.parts)

    def repairs(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integer columns the components want fixed for the plan ``x`` (first wins)."""
        return _fixes(c.repairs(self.problem, self.cols, x) for c in self.parts)


@dataclass(frozen=True)
class Directions:
    """Flows of a known plan of a site [kW] (e.g. its plan without the coupling), whose
    integer decisions :meth:`BlockModel.solve` tries as a second incumbent."""

    grid_import_kw: np.ndarray
    grid_export_kw: np.ndarray
    charge_kw: np.ndarray
    discharge_kw: np.ndarray


@dataclass
class Certified:
    """What :meth:`BlockModel.solve` proved: plan ``x`` costing ``upper``, bound ``lower``
    [yuan], the gap and how the plan was found."""

    x: np.ndarray
    upper: float
    lower: float
    gap: float
    relative_gap: float  # (upper - lower) / max(|upper|, 1 yuan), whatever the floor
    method: str
    binaries: int
    solves: int
    highs_seconds: float
    notes: list[str] = field(default_factory=list)


def _cat(arrays) -> np.ndarray:
    arrays = [np.asarray(a, dtype=np.int64) for a in arrays]
    return np.concatenate(arrays) if arrays else np.array([], dtype=np.int64)


def _fixes(pairs) -> tuple[np.ndarray, np.ndarray]:
    """Columns and values of several ``(cols, vals)`` fixes, the first fix of a column
    kept."""
    cols, vals = [], []
    for c, v in pairs:
        cols.append(np.asarray(c, dtype=np.int64))
        vals.append(np.asarray(v, dtype=float))
    if not cols:
        return np.array([], dtype=np.int64), np.array([])
    c, v = np.concatenate(cols), np.concatenate(vals)
    c, first = np.unique(c, return_index=True)
    return c, v[first]


class BlockModel:
    """Site problems as blocks of one HiGHS model.

    Parameters
    ----------
    problems : list of DispatchProblem
        One block each, in this order.
    opts : SolveOptions
        Certified gap, time limit and threads of every HiGHS run.
    """

    def __init__(self, problems: list[DispatchProblem], opts: SolveOptions) -> None:
        self.opts = opts
        self.blocks: list[Block] = []
        col = row = 0
        lower, upper, cost, rlo, rup, ar, ac, av = ([] for _ in range(8))
        for p in problems:
            lp = site_lp(p)
            self.blocks.append(Block(p, lp, lp.cols.shifted(col), col, row, parts(p)))
            lower.append(lp.col_lower)
            upper.append(lp.col_upper)
            cost.append(lp.cost)
            rlo.append(lp.row_lower)
            rup.append(lp.row_upper)
            ar.append(lp.a_row + row)
            ac.append(lp.a_col + col)
            av.append(lp.a_val)
            col += lp.num_col
            row += lp.num_row
        a_row, a_col, a_val = np.concatenate(ar), np.concatenate(ac), np.concatenate(av)
        keep = a_val != 0  # a zero coefficient stays in the block's pattern, not in HiGHS
        a_row, a_col, a_val = a_row[keep], a_col[keep], a_val[keep]
        order = np.lexsort((a_row, a_col))
        m = highspy.HighsLp()
        m.num_col_, m.num_row_ = col, row
        m.col_cost_, m.col_lower_, m.col_upper_ = (np.concatenate(cost), np.concatenate(lower),
                                                   np.concatenate(upper))
        m.row_lower_, m.row_upper_ = np.concatenate(rlo), np.concatenate(rup)
        self.offset = float(sum(b.lp.offset for b in self.blocks))
        m.offset_ = self.offset
        m.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        m.a_matrix_.start_ = np.searchsorted(a_col[order], np.arange(col + 1)).astype(np.int32)
        m.a_matrix_.index_ = a_row[order].astype(np.int32)
        m.a_matrix_.value_ = a_val[order]
        h = new_highs()
        h.setOptionValue("output_flag", False)
        # HiGHS's thread pool is process-wide: every instance must ask for the same size
        h.setOptionValue("threads", int(opts.threads))
        h.setOptionValue("mip_rel_gap", float(opts.mip_rel_gap))
        h.passModel(m)
        self.h = h
        self.num_col = col
        self.version = str(h.version())
        self.integers = _cat(b.integer_columns() for b in self.blocks)
        self._floor = GAP_FLOOR_YUAN

    # ------------------------------------------------------------------ the model

    def add_columns(self, lower: np.ndarray, upper: np.ndarray, cost: np.ndarray) -> np.ndarray:
        """Append coupling columns (no matrix entries yet); their global indices."""
        k = len(cost)
        self.h.addCols(k, np.asarray(cost, float), np.asarray(lower, float),
                       np.asarray(upper, float), 0, np.zeros(k, np.int32),
                       np.array([], np.int32), np.array([], float))
        idx = np.arange(self.num_col, self.num_col + k, dtype=np.int32)
        self.num_col += k
        return idx

    def add_rows(self, lower: np.ndarray, upper: np.ndarray, a_row: np.ndarray,
                 a_col: np.ndarray, a_val: np.ndarray) -> None:
        """Append coupling rows ``lower <= A x <= upper``; ``a_row`` counts from 0 for the
        first new row, ``a_col`` are global column indices."""
        k = len(lower)
        order = np.lexsort((a_col, a_row))
        a_row, a_col, a_val = a_row[order], a_col[order], a_val[order]
        start = np.searchsorted(a_row, np.arange(k)).astype(np.int32)
        self.h.addRows(k, np.asarray(lower, float), np.asarray(upper, float), len(a_val),
                       start, a_col.astype(np.int32), np.asarray(a_val, float))

    def set_block(self, k: int, p: DispatchProblem) -> None:
        """Rewrite block ``k``'s numbers for ``p``, which must have the block's structure
        (the same matrix pattern). Also makes its integer columns continuous again."""
        b, h = self.blocks[k], self.h
        new = site_lp(p)
        old = b.lp
        if (len(new.a_val) != len(old.a_val) or new.num_col != old.num_col
                or new.num_row != old.num_row or not np.array_equal(new.a_col, old.a_col)
                or not np.array_equal(new.a_row, old.a_row)):
            raise ValueError("problem differs in structure from the block it replaces")
        cols = np.arange(b.col0, b.col0 + new.num_col, dtype=np.int32)
        rows = np.arange(b.row0, b.row0 + new.num_row, dtype=np.int32)
        h.changeColsBounds(len(cols), cols, new.col_lower, new.col_upper)
        h.changeColsCost(len(cols), cols, new.cost)
        h.changeRowsBounds(len(rows), rows, new.row_lower, new.row_upper)
        for i in np.flatnonzero(new.a_val != old.a_val):
            h.changeCoeff(int(new.a_row[i] + b.row0), int(new.a_col[i] + b.col0),
                          float(new.a_val[i]))
        d = b.integer_columns().astype(np.int32)
        h.changeColsIntegrality(len(d), d, np.full(len(d), _CONT))
        if new.offset != old.offset:
            self.offset += new.offset - old.offset
            h.changeObjectiveOffset(self.offset)
        b.lp, b.problem = new, p

    def rotate_basis(self, k: int, shift: int) -> highspy.HighsBasis | None:
        """HiGHS's current basis with block ``k``'s per-interval columns and rows moved
        ``shift`` intervals earlier (those that fall off the front come back at the end):
        a warm start for the same site ``shift`` intervals later, when a day looks much like
        the one before. None without a valid basis."""
        basis = self.h.getBasis()
        if not basis.valid or shift == 0:
            return None
        b = self.blocks[k]
        n = b.problem.n
        cs, rs = list(basis.col_status), list(basis.row_status)
        for idx in b.lp.cols.values():
            if len(idx) == n:
                g = [cs[b.col0 + i] for i in idx]
                for i, v in zip(idx, g[shift:] + g[:shift], strict=True):
                    cs[b.col0 + i] = v
        for _, first, count, _labels in b.lp.row_groups:
            if count == n:
                lo = b.row0 + first
                g = rs[lo:lo + n]
                rs[lo:lo + n] = g[shift:] + g[:shift]
        out = highspy.HighsBasis()
        out.col_status, out.row_status, out.valid = cs, rs, True
        return out

    def block_cost(self, k: int, x: np.ndarray) -> float:
        """Site ``k``'s own cost [yuan] at ``x`` (its energy, wear, subsidy and demand)."""
        b = self.blocks[k]
        return float(b.lp.cost @ x[b.col0:b.col0 + b.lp.num_col] + b.lp.offset)

    # ------------------------------------------------------------------ solving

    def solve(self, strict: bool = True, gap_floor_yuan: float = GAP_FLOOR_YUAN,
              stage: str = "", hints: list[Flows | None] | None = None) -> Certified:
        """Plan every block (and the coupling) to the certified gap ``opts.mip_rel_gap``.

        The gap is ``(plan - bound) / max(|plan|, gap_floor_yuan)``. With ``strict=False`` a
        MILP that hits the time limit with a plan returns it with its (larger) gap.
        ``hints`` (one per block or None): plans whose integer decisions are tried right
        after the LP bound when the relaxation is not integer-feasible - for a fleet, the
        sites' own plans without the coupling, which usually need only small changes
        (measured on the Jingkai feeder of 2026-07-15: gap 0.12 % after the repair,
        0.026 % from the sites' own directions, where the MILP took 2 s). If that plan
        closes the gap it is returned (method ``lp+hint``); otherwise the strategy goes on
        and keeps the better plan.

        Raises
        ------
        InfeasiblePlanError
            No plan exists, or HiGHS stopped before certifying the gap.
        """
        self._floor = max(float(gap_floor_yuan), GAP_FLOOR_YUAN)
        # HiGHS stops at either gap: its absolute one carries the floor
        self.h.setOptionValue("mip_abs_gap", max(1e-9, self.opts.mip_rel_gap * self._floor))
        stats = {"highs": 0.0, "solves": 0, "binaries": 0}
        status, lower, _ = self._run(stats)
        if status != _OPTIMAL:
            raise self._error(status, stage + "LP relaxation")
        x_lp = self._values()
        hinted: tuple[float, np.ndarray | None] = (np.inf, None)
        if (hints and any(h is not None for h in hints)
                and any(len(b.repairs(x_lp)[0]) for b in self.blocks)):
            hinted = self._try_hints(hints, stats)
            if self._gap(hinted[0], lower) <= self.opts.mip_rel_gap:
                return Certified(
                    hinted[1], float(hinted[0]), float(lower), self._gap(hinted[0], lower),
                    relative_gap(hinted[0], lower), "lp+hint", 0, stats["solves"],
                    stats["highs"], [f"LP bound {lower:.4f} yuan, plan {hinted[0]:.4f} yuan "
                                     "from the given directions"])
        lower, upper, x, seen, method = self._lp_repair(stats, stage, (lower, x_lp))
        notes = [self._repair_note(lower, upper, seen)] if x is not None else []
        if hinted[1] is not None and hinted[0] < upper:
            notes.append(f"plan {hinted[0]:.4f} yuan from the given directions")
            upper, x, method = hinted[0], hinted[1], "lp+hint"
        gap = self._gap(upper, lower)
        capped = []
        if gap > self.opts.mip_rel_gap and x is not None:
            capped = self._cap_peaks(upper, stats)
        if capped:
            low2, up2, x2, seen2, method2 = self._lp_repair(stats, stage)
            notes.append("import capped at " + ", ".join(f"{c:.1f}" for c in capped)
                         + " kW by the incumbent")
            lower = max(lower, low2)  # both bound the same optimum
            for s1, s2 in zip(seen, seen2, strict=True):
                s1 |= s2
            if x2 is not None and up2 <= upper:
                upper, x, method = up2, x2, method2
            gap = self._gap(upper, lower)
        if x is None or gap > self.opts.mip_rel_gap:
            x, upper, lower, gap = self._milp(x, seen, lower, stats, strict, stage)
            method = "milp"
        return Certified(x, float(upper), float(lower), float(gap), relative_gap(upper, lower),
                         method, stats["binaries"], stats["solves"], stats["highs"], notes)

    def _run(self, stats: dict) -> tuple[highspy.HighsModelStatus, float, float]:
        # HiGHS measures its time limit on the instance's cumulative run clock
        self.h.setOptionValue("time_limit", self.h.getRunTime() + self.opts.time_limit_s)
        t0 = time.perf_counter()
        self.h.run()
        stats["highs"] += time.perf_counter() - t0
        stats["solves"] += 1
        info = self.h.getInfo()
        return (self.h.getModelStatus(), float(info.objective_function_value),
                float(info.mip_dual_bound))

    def _values(self) -> np.ndarray:
        return np.asarray(self.h.getSolution().col_value, dtype=float)

    def _gap(self, upper: float, lower: float) -> float:
        return relative_gap(upper, lower, self._floor)

    @staticmethod
    def _repair_note(lower: float, upper: float, seen: list[set[int]]) -> str:
        return (f"LP bound {lower:.4f} yuan, repaired plan {upper:.4f} yuan "
                f"({sum(len(s) for s in seen)} integer decisions fixed)")

    def _fix(self, cols: np.ndarray, vals: np.ndarray) -> None:
        self.h.changeColsBounds(len(cols), cols.astype(np.int32), vals, vals)

    def _lp_repair(self, stats: dict, stage: str,
                   relaxed: tuple[float, np.ndarray] | None = None):
        """LP relaxation (the bound; ``relaxed``: its objective and solution, already
        solved), then fix what the components name until they name nothing (the plan).
        Returns ``(lower, upper, x, seen, method)``: ``seen`` the integer columns fixed per
        block; ``x`` is None (``upper`` inf) when a repair step turns infeasible."""
        if relaxed is None:
            status, obj, _ = self._run(stats)
            if status != _OPTIMAL:
                raise self._error(status, stage + "LP relaxation")
            x = self._values()
        else:
            obj, x = relaxed
        lower, method = obj, "lp"
        seen: list[set[int]] = [set() for _ in self.blocks]
        for _ in range(len(self.integers) + 1):
            fixes = [b.repairs(x) for b in self.blocks]
            for s, (cols, _v) in zip(seen, fixes, strict=True):
                s.update(cols.tolist())
            cols, vals = _fixes(fixes)
            if not len(cols):
                break
            method = "lp+repair"
            self._fix(cols, vals)
            status, obj, _ = self._run(stats)
            if status != _OPTIMAL:
                x = None
                break
            x = self._values()
        upper = obj if x is not None else np.inf
        return lower, upper, x, seen, method

    def _try_hints(self, hints: list[Flows | None], stats: dict,
                   ) -> tuple[float, np.ndarray | None]:
        """Fix each block's integer decisions as its hint sets them, solve the LP and repair
        what is left: a plan and its cost."""
        self._free_integers()
        cols, vals = _fixes(c.from_hint(b.problem, b.cols, h)
                            for b, h in zip(self.blocks, hints, strict=True) if h is not None
                            for c in b.parts)
        self._fix(cols, vals)
        try:
            # the LP with fixed decisions bounds nothing: only its plan is used
            _, upper, x, _, _ = self._lp_repair(stats, "")
        except InfeasiblePlanError:
            return np.inf, None
        finally:
            self._free_integers()
        return upper, x

    def _free_integers(self) -> None:
        """Every integer column free in [0, 1] again (binaries' bounds)."""
        nd = len(self.integers)
        self.h.changeColsBounds(nd, self.integers.astype(np.int32), np.zeros(nd), np.ones(nd))

    def _cap_peaks(self, upper: float, stats: dict) -> list[float]:
        """Let every demand-charged site's components cap its imports at what a plan
        costing ``upper`` can use; the caps [kW] that change something."""
        demand = [(k, c, *c.demand_columns(b.problem, b.lp)) for k, b in enumerate(self.blocks)
                  for c in b.parts]
        demand = [(k, c, cols + self.blocks[k].col0, off) for k, c, cols, off in demand
                  if len(cols)]
        if not demand:
            return []
        h = self.h
        self._free_integers()
        idx = _cat(cols for _, _, cols, _ in demand).astype(np.int32)
        saved = np.concatenate([self.blocks[k].lp.cost[cols - self.blocks[k].col0]
                                for k, _, cols, _ in demand])
        demand_offset = sum(off for *_, off in demand)
        h.changeColsCost(len(idx), idx, np.zeros(len(idx)))
        h.changeObjectiveOffset(self.offset - demand_offset)
        try:
            status, other, _ = self._run(stats)
        finally:
            h.changeColsCost(len(idx), idx, saved)
            h.changeObjectiveOffset(self.offset)
        if status != _OPTIMAL:
            return []
        caps = []
        for k, c, _, _ in demand:
            new = c.cap(self.blocks[k].problem, upper - other)
            if new is not None:
                caps.append(float(np.max(new.grid.import_limit_kw)))
                self.set_block(k, new)
        if caps:
            self._free_integers()
        return caps

    def _milp(self, start: np.ndarray | None, seen: list[set[int]], lower: float,
              stats: dict, strict: bool, stage: str):
        """The MILP with binaries on the candidates and on every column a repair fixed."""
        h = self.h
        self._free_integers()
        binaries = _cat([*(c.candidates(b.problem, b.cols) for b in self.blocks
                           for c in b.parts), *(sorted(s) for s in seen)])
        binaries = np.unique(binaries).astype(np.int32)
        h.changeColsIntegrality(len(binaries), binaries, np.full(len(binaries), _INT))
        stats["binaries"] = len(binaries)
        if start is not None:
            s = start.copy()
            cols, vals = _fixes(c.start(b.problem, b.cols, start)
                                for b in self.blocks for c in b.parts)
            s[cols] = vals
            h.setSolution(len(s), np.arange(len(s), dtype=np.int32), s)
        status, obj, bound = self._run(stats)
        if status != _OPTIMAL and not (status == highspy.HighsModelStatus.kTimeLimit
                                       and np.isfinite(obj)):
            raise self._error(status, stage + "MILP")
        x = self._values()
        if any(len(b.repairs(x)[0]) for b in self.blocks):
            # a decision outside the candidates: every integer column binary, once more
            nd = len(self.integers)
            h.changeColsIntegrality(nd, self.integers.astype(np.int32), np.full(nd, _INT))
            stats["binaries"] = nd
            status, obj, bound = self._run(stats)
            if status != _OPTIMAL:
                raise self._error(status, stage + "MILP")
            x = self._values()
        lower = max(lower, bound)
        gap = self._gap(obj, lower)
        if gap > self.opts.mip_rel_gap + 1e-9 and strict:
            raise gap_error(stage, gap, self.opts.mip_rel_gap, self.opts.time_limit_s,
                            str(status))
        return x, obj, lower, gap

    def _error(self, status, stage: str) -> InfeasiblePlanError:
        floors = [b.problem.storage.terminal_min_kwh for b in self.blocks
                  if b.problem.storage is not None]
        return no_plan_error(stage, str(status), status in _INFEASIBLE,
                             floors[0] if len(floors) == 1 else None)
