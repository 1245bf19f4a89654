"""One site's dispatch model built once and re-solved for new days: the simulation hot path,
and the fast path of every single-site plan.

The first day's linear program (:func:`models.site.site_lp`) goes to HiGHS once. Every later
day of the same site has the same structure (:func:`models.site.structure_key`: the same
intervals, battery, limits and shiftable-load windows) and differs only in numbers, so
:meth:`PersistentDispatch.solve` writes those numbers into the HiGHS model by column and row
index (:meth:`models.certified.BlockModel.set_block`: bounds, costs and right-hand sides in
three vectorised calls, matrix coefficients only where they changed, which for the direction
big-Ms is a few dozen a day) and re-solves warm from the previous day's basis.

What a day may change: load and PV (balance right-hand sides, flow bounds and big-Ms, the
export-source cut), prices, subsidy and wear (costs), the month-to-date peak (bounds of the
demand columns, objective offset), the initial SOC (first SOC-recursion row), the terminal
SOC floor, the import limit (so the incumbent's peak cap is an update too). Everything else
is structure.
"""

from __future__ import annotations

import time

from models.certified import BlockModel, Certified
from models.components.base import Flows
from models.site import extract, structure_key, validate
from models.specs import GAP_FLOOR_YUAN, DispatchProblem, DispatchResult, SolveOptions


def block_result(model: BlockModel, k: int, cert: Certified, seconds: float,
                 problem: DispatchProblem | None = None, update_s: float = 0.0,
                 ) -> DispatchResult:
    """Block ``k``'s plan from a certified solve of ``model``, as a result of ``problem``
    (default the block's own; the block may carry an incumbent's import cap)."""
    b = model.blocks[k]
    p = problem or b.problem
    arrays = extract(p, b.cols, cert.x)
    return DispatchResult(
        **arrays, objective_yuan=cert.upper, objective_bound_yuan=cert.lower,
        optimality_gap=cert.gap, method=cert.method, solver_name="HiGHS",
        solver_version=model.version, solve_seconds=seconds,
        highs_seconds=cert.highs_seconds, solves=cert.solves, binaries=cert.binaries,
        log=list(cert.notes), relative_gap=cert.relative_gap, update_seconds=update_s,
        status=cert.status)


class PersistentDispatch:
    """A site's dispatch model in HiGHS, updated and re-solved for each new problem.

    Parameters
    ----------
    p0 : DispatchProblem
        The first problem; fixes the structure (:func:`models.site.structure_key`).
    opts : SolveOptions
        Certified gap, time limit and threads of every solve.
    """

    def __init__(self, p0: DispatchProblem, opts: SolveOptions | None = None) -> None:
        self.opts = opts or SolveOptions()
        self.opts.validate()
        validate(p0)
        self.key = structure_key(p0)
        t0 = time.perf_counter()
        self.model = BlockModel([p0], self.opts)
        self.version = self.model.version
        self.build_seconds = time.perf_counter() - t0
        self._first = True

    def solve(self, p: DispatchProblem, strict: bool = False,
              gap_floor_yuan: float = GAP_FLOOR_YUAN, hint: Flows | None = None,
              shift: int = 0) -> DispatchResult:
        """Plan ``p`` (same structure as the first problem) to the certified gap within the
        time budget.

        The gap is ``(plan - bound) / max(|plan|, gap_floor_yuan)``: the default floor
        (1 yuan) makes it the plain relative gap; a larger floor measures it against the
        money at stake on days whose net cost is near zero. A solve whose budget runs out
        holding a plan returns it with status ``"time_limit"`` and its (larger) proven gap;
        ``strict=True`` raises instead. ``hint``: a known plan whose integer decisions are
        tried as an incumbent (e.g. the previous re-plan's, moved on); ``shift``: ``p``
        starts that many intervals after the previous problem, whose basis is moved along as
        a warm start. Neither changes the certificate.

        Raises
        ------
        ValueError
            ``p`` differs from the first problem in structure.
        InfeasiblePlanError
            No plan exists, the budget ran out before any plan, or (``strict``) before the
            gap was certified.
        """
        t0 = time.perf_counter()
        if structure_key(p) != self.key:
            raise ValueError("problem differs in structure from the persistent model's "
                             "first problem; build a new PersistentDispatch")
        basis = self.model.rotate_basis(0, shift) if shift and not self._first else None
        if not self._first or p is not self.model.blocks[0].problem:
            self.model.set_block(0, p)
        if basis is not None:
            self.model.h.setBasis(basis)
        self._first = False
        update_s = time.perf_counter() - t0
        cert = self.model.solve(strict=strict, gap_floor_yuan=gap_floor_yuan,
                                hints=[hint] if hint is not None else None)
        return block_result(self.model, 0, cert, time.perf_counter() - t0, p, update_s)


def solve_arrays(p: DispatchProblem, opts: SolveOptions) -> DispatchResult:
    """One problem on the array path, from a model built for it."""
    t0 = time.perf_counter()
    solver = PersistentDispatch(p, opts)
    r = solver.solve(p)
    r.solve_seconds = time.perf_counter() - t0
    return r

