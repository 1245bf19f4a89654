"""Solve one site's dispatch to a certified gap: the entry point of :mod:`models`.

``method="auto"`` (default): the strategy of :mod:`models.certified` on the array form of
the model - LP relaxation (a bound), repair (a plan), the incumbent's peak cap, the MILP only
when the gap demands it. ``method="milp"``: the Pyomo model of record straight as the MILP
(:mod:`models.reference`), slower and independent.
"""

from __future__ import annotations

from models.site import precheck, validate
from models.specs import DispatchProblem, DispatchResult, SolveOptions


def solve_dispatch(p: DispatchProblem, opts: SolveOptions | None = None) -> DispatchResult:
    """Solve a dispatch problem to a certified relative gap of at most ``opts.mip_rel_gap``
    within the time budget ``opts.time_limit_s``.

    When the budget runs out holding a plan, that plan comes back with ``status`` set to
    ``"time_limit"``, its proven gap (above the required one) and a note in ``log`` (also
    logged as a warning): a feasible plan, never passed off as a certified one.

    Raises
    ------
    InvalidInputError
        Inputs outside their ranges (all listed).
    InfeasiblePlanError
        No plan exists (the reason names the blocking constraint group), or the budget ran
        out before any plan was found.
    """
    opts = opts or SolveOptions()
    opts.validate()
    validate(p)
    precheck(p)
    if opts.method == "milp":
        from models.reference import solve_milp

        return solve_milp(p, opts)
    from models.persistent import solve_arrays

    return solve_arrays(p, opts)
