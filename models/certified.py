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
   at least the LP optimum without them (``other``), so a plan as cheap as the incumbent
   cannot raise a site's demand charge by more than ``upper - other``; the components cap
   the site's imports accordingly (valid for the whole model, since every demand charge is
   >= 0) and 1-2 run again on the tighter model.
4. If still open and exactly one site pays a demand charge: the demand charge a better plan
   can have, ``[0, upper - other]`` [yuan], is split into ranges, each bounded by its own LP
   - imports capped for the range's top by the site's components (:meth:`Component.cap`,
   which also tightens every big-M the import limit enters), the charge held at the
   range's bottom by one row over the demand columns. The relaxation's worst cheat is a
   battery that charges and discharges at once with no import headroom to do it for real;
   a narrow range takes that headroom away, so the ranges' bounds rise well above the LP
   bound (CZ-MG-24, 2026-07-13, one day: LP 444,788, ranges 445,613, optimum 445,976
   yuan). The lowest range is split (at its LP's demand charge) and its LP solution
   repaired into a plan, until the gap closes, the split stalls, or ``MAX_RANGE_LPS`` LPs
   are spent (work, not time: see below). The bound is the lowest range's.
5. If still open: the MILP with binaries on the candidate columns and every column a repair
   touched, started from the best plan - on the ranges still open (their hull) when the
   ranges closed a good share of the gap, else on the whole model - in what is left of the
   budget.

The gap is ``(plan - bound) / max(|plan|, floor)``. The whole solve has one time budget
(``SolveOptions.time_limit_s``): each HiGHS call gets what is left of it. A plan is
certified when the gap is within ``mip_rel_gap``; when the budget runs out first, the best
plan is returned with status ``"time_limit"``, its proven gap and a note (``strict=True``:
an error), and without any plan the solve raises. Every other stopping rule counts work
(LPs, splits), never seconds, so a solve that does not run out of its budget gives the same
plan on a busy machine as on an idle one.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field

import highspy
import numpy as np

from models.components.base import Component, Flows, SiteCols, SiteLP
from models.errors import InfeasiblePlanError, gap_error, no_plan_error, time_limit_note
from models.site import parts, site_lp
from models.specs import GAP_FLOOR_YUAN, DispatchProblem, SolveOptions

_OPTIMAL = highspy.HighsModelStatus.kOptimal
_INFEASIBLE = (highspy.HighsModelStatus.kInfeasible,
               highspy.HighsModelStatus.kUnboundedOrInfeasible)
_CONT, _INT = highspy.HighsVarType.kContinuous, highspy.HighsVarType.kInteger
_banner = threading.Lock()
_quiet = False
log = logging.getLogger(__name__)

#: Demand-charge ranges (step 4): at most this many LPs,
MAX_RANGE_LPS = 60
#: no range narrower than this [yuan] is split,
MIN_RANGE_YUAN = 1.0
#: and the splitting stops after MAX_STALLS splits in a row that each close less than
#: STALL_SHARE of the gap left (the bound is then not held down by the demand charge).
STALL_SHARE = 0.05
MAX_STALLS = 3
#: The MILP (step 5) runs on the open ranges only when they closed at least this share of
#: the gap, else on the whole model: confined to uninformative ranges it searched worse
#: (CZ-MG-05, 3 days from 2026-07-13: certified in 5.3 s on the whole model, 0.18 % after
#: 10 s on ranges that had raised the bound by 4 of 1,700 yuan).
USEFUL_SHARE = 0.25


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
    status: str = "optimal"  # or "time_limit": the budget ran out above the gap


@dataclass
class DemandRange:
    """Plans whose demand charge lies in ``[a, b]`` [yuan], and what bounds their cost
    [yuan]; ``money`` is the demand charge of the range's LP solution ``x``."""

    a: float
    b: float
    bound: float
    money: float | None = None
    x: np.ndarray | None = None


@dataclass
class DemandRanges:
    """The demand charges a better plan can have, as ranges, and the best plan found
    ``(cost [yuan], x)``."""

    items: list[DemandRange]
    best: tuple[float, np.ndarray | None]
    useful: bool = False  # the ranges raised the bound enough to confine the MILP to them

    def lowest(self) -> DemandRange | None:
        return min(self.items, key=lambda r: r.bound) if self.items else None

    def lower(self, upper: float) -> float:
        """The bound over every range: no range left means no plan beats ``upper``."""
        return min((r.bound for r in self.items), default=upper)

    def replace(self, r: DemandRange, children: list[DemandRange]) -> None:
        i = self.items.index(r)
        self.items[i:i + 1] = children

    def prune(self, upper: float | None = None) -> None:
        """Drop the ranges that hold no plan cheaper than the best (or ``upper``)."""
        up = self.best[0] if upper is None else upper
        self.items = [r for r in self.items if r.bound < up]


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
        self._deadline = float("inf")
        self._floor_row: int | None = None  # the demand-charge floor row of _branch_peak
        self._range_site: tuple[int, Component, np.ndarray, float] | None = None
        self._range_base: DispatchProblem | None = None

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

    def solve(self, strict: bool = False, gap_floor_yuan: float = GAP_FLOOR_YUAN,
              stage: str = "", hints: list[Flows | None] | None = None) -> Certified:
        """Plan every block (and the coupling) to the certified gap ``opts.mip_rel_gap``
        within the time budget ``opts.time_limit_s`` (every HiGHS call of the solve
        together).

        The gap is ``(plan - bound) / max(|plan|, gap_floor_yuan)``. When the budget runs out
        holding a plan, that plan is returned with status ``"time_limit"``, its proven (larger)
        gap and a note saying so; with ``strict=True`` that raises instead.
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
            No plan exists, the budget ran out before any plan was found, or (``strict``)
            before the gap was certified.
        """
        self._floor = max(float(gap_floor_yuan), GAP_FLOOR_YUAN)
        self._deadline = time.perf_counter() + self.opts.time_limit_s
        # HiGHS stops at either gap: its absolute one carries the floor
        self.h.setOptionValue("mip_abs_gap", max(1e-9, self.opts.mip_rel_gap * self._floor))
        stats = {"highs": 0.0, "solves": 0, "binaries": 0}
        self._range_site = self._range_base = None
        try:
            return self._solve(strict, stage, hints, stats)
        finally:
            self._release_floor()

    def _solve(self, strict: bool, stage: str, hints: list[Flows | None] | None,
               stats: dict) -> Certified:
        target = self.opts.mip_rel_gap
        status, lower, _ = self._run(stats)
        if status != _OPTIMAL:
            raise self._error(status, stage + "LP relaxation")
        x_lp = self._values()
        hinted: tuple[float, np.ndarray | None] = (np.inf, None)
        if (hints and any(h is not None for h in hints)
                and any(len(b.repairs(x_lp)[0]) for b in self.blocks)):
            hinted = self._try_hints(hints, stats)
            if self._gap(hinted[0], lower) <= target:
                return self._certified(
                    hinted[1], hinted[0], lower, "lp+hint", stats,
                    [f"LP bound {lower:.4f} yuan, plan {hinted[0]:.4f} yuan from the given "
                     "directions"], strict, stage)
        base = [b.problem for b in self.blocks]
        lower, upper, x, seen, method = self._lp_repair(stats, stage, (lower, x_lp))
        notes = [self._repair_note(lower, upper, seen)] if x is not None else []
        if hinted[1] is not None and hinted[0] < upper:
            notes.append(f"plan {hinted[0]:.4f} yuan from the given directions")
            upper, x, method = hinted[0], hinted[1], "lp+hint"
        if x is not None and self._gap(upper, lower) > target and self._time_left():
            caps, other = self._cap_peaks(upper, stats)
            if caps:
                low2, up2, x2, seen2, method2 = self._lp_repair(stats, stage)
                notes.append("import capped at " + ", ".join(f"{c:.1f}" for c in caps)
                             + " kW by the incumbent")
                lower = max(lower, low2)  # both bound the same optimum
                for s1, s2 in zip(seen, seen2, strict=True):
                    s1 |= s2
                if x2 is not None and up2 <= upper:
                    upper, x, method = up2, x2, method2
            ranges = None
            if (other is not None and self._gap(upper, lower) > target
                    and self._time_left()):
                ranges = self._branch_peak(base, upper, x, lower, other, seen, stats, notes)
                if ranges.best[1] is not None and ranges.best[0] < upper:
                    upper, x, method = ranges.best[0], ranges.best[1], "lp+repair"
                lower = max(lower, ranges.lower(upper))
            if self._gap(upper, lower) > target and self._time_left():
                upper, x, lower, method = self._milp_stage(
                    ranges, x, upper, lower, method, seen, stats, stage, notes)
        elif x is None and self._time_left():
            x, upper, lower, status = self._milp(None, seen, lower, stats, stage)
            method = "milp"
            if x is None and status in _INFEASIBLE:
                raise self._error(status, stage + "MILP")
        if x is None:
            raise self._error(highspy.HighsModelStatus.kTimeLimit, stage + "repair")
        return self._certified(x, upper, lower, method, stats, notes, strict, stage)

    def _certified(self, x: np.ndarray, upper: float, lower: float, method: str,
                   stats: dict, notes: list[str], strict: bool, stage: str) -> Certified:
        """The result, with status ``time_limit`` (or, ``strict``, an error) above the
        gap."""
        gap = self._gap(upper, lower)
        status = "optimal"
        if gap > self.opts.mip_rel_gap + 1e-9:
            if strict:
                raise gap_error(stage, gap, self.opts.mip_rel_gap, self.opts.time_limit_s,
                                "time_limit")
            status = "time_limit"
            notes = [*notes, time_limit_note(gap, self.opts.mip_rel_gap,
                                             self.opts.time_limit_s)]
            log.warning("%s%s", stage, notes[-1])
        return Certified(x, float(upper), float(lower), float(gap), relative_gap(upper, lower),
                         method, stats["binaries"], stats["solves"], stats["highs"], notes,
                         status)

    def _time_left(self) -> float:
        """Seconds left of the solve's budget (0 when it is spent)."""
        return max(0.0, self._deadline - time.perf_counter())

    def _run(self, stats: dict, mip: bool = False,
             ) -> tuple[highspy.HighsModelStatus, float, float]:
        # each call gets what is left of the solve's budget; HiGHS measures an LP's time
        # limit on the instance's cumulative run clock, a MIP's from the MIP's start
        # (measured with highspy 1.x: a MIP given clock + 2 s ran clock + 2 s)
        left = max(self._time_left(), 1e-3)
        self.h.setOptionValue("time_limit", left if mip else self.h.getRunTime() + left)
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
        block; ``x`` is None (``upper`` inf) when the repair turns infeasible.

        Repairs one part names can clash with another part's rows (e.g. single directions
        fixed against the direction hold); when a step turns infeasible, every integer column
        is fixed at once as the components set it for the last plan (:meth:`Component.
        start`, the hold's side sequence first) and solved once more."""
        if relaxed is None:
            status, obj, _ = self._run(stats)
            if status != _OPTIMAL:
                raise self._error(status, stage + "LP relaxation")
            x = self._values()
        else:
            obj, x = relaxed
        lower, method = obj, "lp"
        seen: list[set[int]] = [set() for _ in self.blocks]
        fallback = False
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
            if status in _INFEASIBLE and not fallback:
                fallback = True
                self._free_integers()
                cols, vals = _fixes(c.start(b.problem, b.cols, x)
                                    for b in self.blocks for c in b.parts)
                self._fix(cols, vals)
                for s, b in zip(seen, self.blocks, strict=True):
                    s.update(b.integer_columns().tolist())
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

    def _demand(self) -> list[tuple[int, Component, np.ndarray, float]]:
        """Per demand-charged part: its block, the part, its demand columns (global) and
        its share of the objective offset [yuan]."""
        out = []
        for k, b in enumerate(self.blocks):
            for c in b.parts:
                cols, off = c.demand_columns(b.problem, b.lp)
                if len(cols):
                    out.append((k, c, np.asarray(cols, dtype=np.int64) + b.col0, float(off)))
        return out

    def _cap_peaks(self, upper: float, stats: dict) -> tuple[list[float], float | None]:
        """Let every demand-charged site's components cap its imports at what a plan
        costing ``upper`` can use; the caps [kW] that change something, and the least every
        cost but the demand charges can be [yuan] (None without a demand charge)."""
        demand = self._demand()
        if not demand:
            return [], None
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
            return [], None
        caps = []
        for k, c, _, _ in demand:
            new = c.cap(self.blocks[k].problem, upper - other)
            if new is not None:
                caps.append(float(np.max(new.grid.import_limit_kw)))
                self.set_block(k, new)
        if caps:
            self._free_integers()
        return caps, float(other)

    # ------------------------------------------------------------------ demand ranges

    def _set_floor(self, cols: np.ndarray, coef: np.ndarray, lower: float) -> None:
        """The row ``sum coef * x[cols] >= lower`` (one row, rewritten on each call)."""
        h = self.h
        if self._floor_row is None:
            self._floor_row = h.getNumRow()
            self.add_rows(np.array([-np.inf]), np.array([np.inf]),
                          np.zeros(len(cols), dtype=np.int64), cols.astype(np.int64),
                          np.asarray(coef, float))
        for j, v in zip(cols, coef, strict=True):
            h.changeCoeff(self._floor_row, int(j), float(v))
        h.changeRowBounds(self._floor_row, float(lower), np.inf)

    def _release_floor(self) -> None:
        if self._floor_row is not None:
            self.h.changeRowBounds(self._floor_row, -np.inf, np.inf)

    def _apply_range(self, r: DemandRange) -> None:
        """Restrict the model to plans whose demand charge lies in ``[r.a, r.b]`` [yuan]:
        imports capped for ``r.b`` by the site's parts, the charge held at ``r.a`` or more by
        the floor row."""
        k, comp, cols, off = self._range_site
        base = self._range_base
        self.set_block(k, comp.cap(base, r.b) or base)
        self._free_integers()
        self._set_floor(cols, self.blocks[k].lp.cost[cols - self.blocks[k].col0], r.a - off)

    def _range_lp(self, r: DemandRange, stats: dict) -> tuple[float, np.ndarray | None]:
        """The LP bound of the plans of range ``r`` [yuan] and its solution; infeasible:
        ``inf``; out of time: ``nan``."""
        k, _, cols, off = self._range_site
        self._apply_range(r)
        status, obj, _ = self._run(stats)
        if status in _INFEASIBLE:
            return np.inf, None
        if status != _OPTIMAL:
            return np.nan, None
        x = self._values()
        r.money = float(self.blocks[k].lp.cost[cols - self.blocks[k].col0] @ x[cols] + off)
        return float(obj), x

    def _branch_peak(self, base: list[DispatchProblem], upper: float, x: np.ndarray,
                     lower: float, other: float, seen: list[set[int]], stats: dict,
                     notes: list[str]) -> DemandRanges:
        """Split the demand charge a better plan can have into ranges and bound each by its
        own LP (one site with a demand charge; see the module docstring, step 4)."""
        demand = self._demand()
        ranges = DemandRanges([DemandRange(0.0, max(0.0, upper - other), lower)], (upper, x))
        if len(demand) != 1:
            return ranges
        k = demand[0][0]
        self._range_site, self._range_base = demand[0], base[k]
        capped = self.blocks[k].problem  # as the incumbent capped it (step 3)
        first, start_upper, lps = lower, upper, 0
        stall = 0
        # bounded by work, not by the clock: a plan is then the same on a busy machine
        # unless a solve runs out of its whole budget (and says so)
        while lps < MAX_RANGE_LPS and self._time_left():
            up = ranges.best[0]
            r = ranges.lowest()
            if r is None or self._gap(up, r.bound) <= self.opts.mip_rel_gap:
                break
            width = r.b - r.a
            if width <= max(MIN_RANGE_YUAN, 1e-6 * abs(up)):
                break
            mid = r.money if r.money is not None and (
                r.a + 0.1 * width < r.money < r.b - 0.1 * width) else r.a + width / 2
            children = [DemandRange(r.a, mid, r.bound), DemandRange(mid, r.b, r.bound)]
            timed_out = False
            for c in children:
                obj, xc = self._range_lp(c, stats)
                lps += 1
                if np.isnan(obj):
                    timed_out = True
                    break
                c.bound = max(c.bound, obj)
                c.x = xc
            if timed_out:
                break
            before = r.bound
            ranges.replace(r, children)
            # a plan from the more promising range: repair its LP solution
            c = min(children, key=lambda c: c.bound)
            if c.x is not None and np.isfinite(c.bound) and self._gap(up, c.bound) > \
                    self.opts.mip_rel_gap:
                if c is not children[-1]:
                    self._apply_range(c)
                _, up2, x2, seen2, _ = self._lp_repair(stats, "", (c.bound, c.x))
                lps += 1
                for s1, s2 in zip(seen, seen2, strict=True):
                    s1 |= s2
                if x2 is not None and up2 < up:
                    ranges.best = (up2, x2)
            ranges.prune()
            low = ranges.lower(ranges.best[0])
            stall = stall + 1 if low - before < STALL_SHARE * (ranges.best[0] - before) else 0
            if stall >= MAX_STALLS:
                break
        for r in ranges.items:
            r.x = None
        self.set_block(k, capped)
        self._free_integers()
        self._release_floor()
        ranges.useful = (ranges.lower(ranges.best[0]) - first
                         >= USEFUL_SHARE * (start_upper - first))
        notes.append(f"demand charges split into ranges by {lps} LPs, {len(ranges.items)} "
                     f"left open: bound {first:.4f} -> {ranges.lower(ranges.best[0]):.4f} "
                     "yuan")
        return ranges

    def _milp_stage(self, ranges: DemandRanges | None,
                    x: np.ndarray, upper: float, lower: float, method: str,
                    seen: list[set[int]], stats: dict, stage: str, notes: list[str]):
        """The MILP (step 5): on the demand-charge ranges still open, or on the whole model;
        ``(upper, x, lower, method)``."""
        if ranges is None or not ranges.items or not ranges.useful:
            x2, up2, low2, _ = self._milp(x, seen, lower, stats, stage)
            lower = max(lower, low2)
            if x2 is not None and up2 <= upper:
                upper, x, method = up2, x2, "milp"
            return upper, x, lower, method
        while self._time_left():
            open_ = [r for r in ranges.items
                     if self._gap(upper, r.bound) > self.opts.mip_rel_gap]
            if not open_:
                break
            a, b = min(r.a for r in open_), max(r.b for r in open_)
            k, comp, cols, off = self._range_site
            self.set_block(k, comp.cap(self._range_base, b) or self._range_base)
            self._free_integers()
            self._set_floor(cols, self.blocks[k].lp.cost[cols - self.blocks[k].col0],
                            a - off)
            x2, up2, bound, _ = self._milp(x, seen, -np.inf, stats, stage)
            for r in ranges.items:
                if a - 1e-9 <= r.a and r.b <= b + 1e-9:
                    r.bound = max(r.bound, bound)
            if x2 is not None and up2 < upper:
                upper, x, method = up2, x2, "milp"
            ranges.prune(upper)
            notes.append(f"MILP on demand charges {a:.2f}-{b:.2f} yuan: bound {bound:.4f} "
                         "yuan")
            if self._gap(upper, bound) > self.opts.mip_rel_gap:
                break  # the MILP ran out of time on that range
        return upper, x, max(lower, ranges.lower(upper)), method

    def _milp(self, start: np.ndarray | None, seen: list[set[int]], lower: float,
              stats: dict, stage: str):
        """The MILP with binaries on the candidates and on every column a repair fixed,
        started from ``start``, in what is left of the budget. Returns ``(x, upper, lower,
        status)``; ``x`` is None (``upper`` inf) without a plan, ``lower`` is inf when the
        model has none."""
        h = self.h
        self._free_integers()
        binaries = _cat([*(c.candidates(b.problem, b.cols) for b in self.blocks
                           for c in b.parts), *(sorted(s) for s in seen)])
        binaries = np.unique(binaries).astype(np.int32)
        h.changeColsIntegrality(len(binaries), binaries, np.full(len(binaries), _INT))
        stats["binaries"] = max(stats["binaries"], len(binaries))
        try:
            if start is not None:
                s = start.copy()
                cols, vals = _fixes(c.start(b.problem, b.cols, start)
                                    for b in self.blocks for c in b.parts)
                s[cols] = vals
                h.setSolution(len(s), np.arange(len(s), dtype=np.int32), s)
            status, obj, bound = self._run(stats, mip=True)
            if status in _INFEASIBLE:
                return None, np.inf, np.inf, status
            if not np.isfinite(obj):
                if status == _OPTIMAL or status == highspy.HighsModelStatus.kTimeLimit:
                    return None, np.inf, max(lower, bound), status
                raise self._error(status, stage + "MILP")
            x = self._values()
            if any(len(b.repairs(x)[0]) for b in self.blocks) and self._time_left():
                # a decision outside the candidates: every integer column binary, once more
                nd = len(self.integers)
                h.changeColsIntegrality(nd, self.integers.astype(np.int32),
                                        np.full(nd, _INT))
                stats["binaries"] = nd
                h.setSolution(len(x), np.arange(len(x), dtype=np.int32), x)
                status, obj2, bound = self._run(stats, mip=True)
                if status in _INFEASIBLE:
                    return None, np.inf, np.inf, status
                if np.isfinite(obj2):
                    x, obj = self._values(), obj2
        finally:
            nd = len(self.integers)
            h.changeColsIntegrality(nd, self.integers.astype(np.int32), np.full(nd, _CONT))
        if any(len(b.repairs(x)[0]) for b in self.blocks):
            # out of time with a plan that still needs a decision: fix them as it sets them
            cols, vals = _fixes(c.start(b.problem, b.cols, x)
                                for b in self.blocks for c in b.parts)
            self._fix(cols, vals)
            try:
                _, obj, x, _, _ = self._lp_repair(stats, stage)
            except InfeasiblePlanError:
                x, obj = None, np.inf
            self._free_integers()
        return x, obj, max(lower, bound), status

    def _error(self, status, stage: str) -> InfeasiblePlanError:
        if status == highspy.HighsModelStatus.kTimeLimit:
            return InfeasiblePlanError(
                [f"{stage}: the {self.opts.time_limit_s:g} s time budget ran out before any "
                 "plan was found; raise the time limit"], status="time_limit")
        floors = [b.problem.storage.terminal_min_kwh for b in self.blocks
                  if b.problem.storage is not None]
        return no_plan_error(stage, str(status), status in _INFEASIBLE,
                             floors[0] if len(floors) == 1 else None)
