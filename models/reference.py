"""The reference path: the Pyomo model of record handed to HiGHS and solved as a MILP.

Slower than the array path (:mod:`models.certified`) but independent of it: the model is
:func:`models.site.build_model`, solved through Pyomo's persistent HiGHS interface, with
binaries where the components say a relaxation may cheat (their :meth:`candidates`), and on
every further integer column a solution shows to be needed (their :meth:`repairs`), until
the plan needs none. Integer decisions are read and named through the array path's column
names (the two models name every variable alike), so the components' rules serve both.
"""

from __future__ import annotations

import time

import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import TerminationCondition

from models.certified import relative_gap
from models.errors import InfeasiblePlanError, gap_error, no_plan_error, time_limit_note
from models.site import build_model, extract, parts, site_lp
from models.specs import DispatchProblem, DispatchResult, SolveOptions

_ONLY_VARS = {
    "check_for_new_or_removed_constraints": False, "check_for_new_or_removed_vars": False,
    "check_for_new_or_removed_params": False, "check_for_new_objective": False,
    "update_constraints": False, "update_parameters": False,
    "update_named_expressions": False, "update_objective": False, "update_vars": True,
}


class HighsRun:
    """One persistent HiGHS instance for a Pyomo model, counting calls and time. The model
    must be complete when it is handed over: later solves push variable changes only."""

    def __init__(self, m: pyo.ConcreteModel, opts: SolveOptions) -> None:
        self.opt = SolverFactory("highs")
        if not self.opt.available():
            raise RuntimeError("HiGHS is not available: install the 'highspy' package")
        self.m = m
        self.opts = opts
        self.solves = 0
        self.highs_seconds = 0.0
        self.deadline = time.perf_counter() + opts.time_limit_s
        self.opt.set_instance(m)

    @property
    def version(self) -> str:
        return ".".join(str(v) for v in self.opt.version())

    def run(self, mip_gap: float | None = None, mip: bool = True):
        """Solve; return ``(termination, objective, bound)``, loading primals if any.

        Every call gets what is left of the solve's budget (``opts.time_limit_s`` from the
        instance's creation). HiGHS keeps one run clock per instance: an LP's time limit is
        set on it (what is left plus what earlier calls used), a MIP's counts from the MIP's
        start; this call's HiGHS time is the clock's increase (Pyomo reports the clock's
        total, which summed over calls counts early ones again).
        """
        clock = self.opt._solver_model.getRunTime()
        left = max(self.deadline - time.perf_counter(), 1e-3)
        res = self.opt.solve(
            self.m,
            load_solutions=False,
            raise_exception_on_nonoptimal_result=False,
            time_limit=left if mip else clock + left,
            threads=self.opts.threads,
            rel_gap=mip_gap,
            solver_options={"mip_abs_gap": 1e-9, "output_flag": False},
            # between solves only variables change (binaries): skip Pyomo's scan of every
            # constraint, parameter and the objective
            auto_updates=_ONLY_VARS,
        )
        self.solves += 1
        self.highs_seconds += self.opt._solver_model.getRunTime() - clock
        tc = res.termination_condition
        if res.incumbent_objective is not None:
            res.solution_loader.load_vars()
        return tc, res.incumbent_objective, res.objective_bound


def solve_milp(p: DispatchProblem, opts: SolveOptions, strict: bool = False,
               ) -> DispatchResult:
    """Solve ``p`` as the MILP on its Pyomo model to the certified gap (see the module
    docstring) within the budget ``opts.time_limit_s``; a plan the budget stops above the
    gap comes back with status ``"time_limit"`` (``strict``: an error). Raises
    :class:`models.errors.InfeasiblePlanError` without a plan."""
    t0 = time.perf_counter()
    m = build_model(p)
    lp = site_lp(p)
    names = lp.col_names()
    var = {v.name: v for v in m.component_data_objects(pyo.Var)}
    columns = [var.get(nm) for nm in names]  # None: a variable Pyomo's model lacks
    hs = HighsRun(m, opts)
    active = parts(p)
    binary = set(np.concatenate([c.candidates(p, lp.cols) for c in active]).tolist())
    for _ in range(len(names) + 1):
        for j in binary:
            columns[j].domain = pyo.Binary
        tc, obj, bound = hs.run(mip_gap=opts.mip_rel_gap, mip=bool(binary))
        if obj is None:
            if tc == TerminationCondition.maxTimeLimit:
                raise InfeasiblePlanError(
                    [f"MILP: the {opts.time_limit_s:g} s time budget ran out before any plan "
                     "was found; raise the time limit"], status="time_limit")
            infeasible = tc in (TerminationCondition.provenInfeasible,
                                TerminationCondition.infeasibleOrUnbounded)
            raise no_plan_error("MILP", str(tc.name), infeasible,
                                p.storage.terminal_min_kwh if p.storage else None)
        x = np.array([0.0 if v is None or v.value is None else float(v.value)
                      for v in columns])
        more = set(np.concatenate([c.repairs(p, lp.cols, x)[0] for c in active]).tolist())
        if more <= binary:
            break
        if hs.deadline <= time.perf_counter():
            raise InfeasiblePlanError(
                [f"the {opts.time_limit_s:g} s time budget ran out before any plan was found "
                 "(the MILP's plan still needs integer decisions); raise the time limit"],
                status="time_limit")
        binary |= more
    upper = float(obj)
    lower = float(bound) if bound is not None else -np.inf
    gap = relative_gap(upper, lower)
    status, log = "optimal", []
    if gap > opts.mip_rel_gap + 1e-9:
        if strict:
            raise gap_error("", gap, opts.mip_rel_gap, opts.time_limit_s, str(tc.name))
        status, log = "time_limit", [time_limit_note(gap, opts.mip_rel_gap, opts.time_limit_s)]
    return DispatchResult(
        **extract(p, lp.cols, x), objective_yuan=upper, objective_bound_yuan=lower,
        optimality_gap=gap, method="milp", solver_name="HiGHS", solver_version=hs.version,
        solve_seconds=time.perf_counter() - t0, highs_seconds=hs.highs_seconds,
        solves=hs.solves, binaries=len(binary), log=log, relative_gap=gap, status=status)
