"""One site's model, assembled from the registered components (:mod:`models.components`).

Every step walks :data:`models.components.REGISTRY`, so a part's equations live in its own
module only:

* :func:`validate` / :func:`precheck` - every bad input, every nameable infeasibility;
* :func:`build_model` / :func:`populate` - the Pyomo formulation of record;
* :func:`site_lp` - the same linear program as numpy arrays for HiGHS (checked against the
  Pyomo model coefficient by coefficient in ``tests/test_lp.py``);
* :func:`structure_key` - what a persistent model cannot change between solves;
* :func:`extract` - a solution vector as result arrays;
* :func:`audit` and :func:`costs` - any plan's numbers checked against the equations, and
  its money by part.

The objective [yuan] is the sum of the parts' costs: energy cost - export revenue + demand
charge increase + battery wear - storage subsidy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.components import REGISTRY
from models.components.base import Component, Context, Flows, LPWriter, SiteLP, Tolerances
from models.components.coupling import flow_bounds
from models.errors import InfeasiblePlanError, InvalidInputError
from models.specs import DispatchProblem


def parts(p: DispatchProblem) -> list[Component]:
    """The registered components ``p`` has, in registry order."""
    return [c for c in REGISTRY if c.active(p)]


def validate(p: DispatchProblem) -> None:
    """Check every input against its documented range; one :class:`InvalidInputError`
    lists every problem."""
    problems = [msg for c in parts(p) for msg in c.validate(p)]
    if problems:
        raise InvalidInputError(problems, "invalid dispatch problem")


def precheck(p: DispatchProblem) -> None:
    """Raise :class:`InfeasiblePlanError` with one reason per blocking constraint group that
    can be named exactly before solving."""
    reasons = [msg for c in parts(p) for msg in c.precheck(p)]
    if reasons:
        raise InfeasiblePlanError(reasons, status="precheck")


def structure_key(p: DispatchProblem) -> tuple:
    """Everything about ``p`` that fixes the matrix pattern of its model: two problems with
    the same key differ in numbers only (bounds, costs, right-hand sides, coefficients)."""
    return tuple((c.name, c.structure(p)) for c in parts(p))


def context(p: DispatchProblem) -> Context:
    return Context(p, flow_bounds(p))


def site_lp(p: DispatchProblem) -> SiteLP:
    """The linear program of :func:`populate` for ``p`` as arrays (integer columns
    continuous in [0, 1]). The matrix *pattern* depends only on :func:`structure_key`: a
    coefficient that is zero stays in the pattern with the value 0."""
    ctx, w = context(p), LPWriter()
    active = parts(p)
    for c in active:
        c.columns(ctx, w)
    for c in active:
        c.rows(ctx, w)
    return w.finish()


def populate(m: Any, p: DispatchProblem) -> None:
    """Add one site's variables and constraints to the Pyomo block ``m``; its cost [yuan]
    becomes the expression ``m.site_cost`` (the caller builds the objective)."""
    import pyomo.environ as pyo

    ctx = context(p)
    m.T = pyo.RangeSet(0, p.n - 1)
    active = parts(p)
    for c in active:
        c.variables(ctx, m)
    for c in active:
        c.constraints(ctx, m)
    m.site_cost = pyo.Expression(expr=sum(ctx.pyomo_cost))


def build_model(p: DispatchProblem) -> Any:
    """The Pyomo model of ``p`` with objective ``cost`` (integer columns continuous)."""
    import pyomo.environ as pyo

    m = pyo.ConcreteModel(name="site_dispatch")
    populate(m, p)
    m.cost = pyo.Objective(expr=m.site_cost, sense=pyo.minimize)
    return m


def extract(p: DispatchProblem, cols: dict[str, np.ndarray], x: np.ndarray,
            ) -> dict[str, Any]:
    """The result arrays (:class:`models.specs.DispatchResult` names) of solution ``x``,
    whose site columns are ``cols``."""
    out: dict[str, Any] = {}
    for c in parts(p):
        c.extract(p, cols, x, out)
    return out


def audit(p: DispatchProblem, f: Flows, tol: Tolerances | None = None) -> list[str]:
    """Every violation of the site's equations by the plan ``f`` (balance, PV, limits,
    directions, SOC, cycles, shiftable energy, ...); empty when the plan is consistent."""
    tol = tol or Tolerances()
    n = p.n
    bad = [name for name in ("pv_used_kw", "pv_curtailed_kw", "charge_kw", "discharge_kw",
                             "soc_kwh", "grid_import_kw", "grid_export_kw", "flexible_load_kw")
           if np.shape(getattr(f, name)) != (n,)]
    if bad:
        return [f"{name}: {np.size(getattr(f, name))} values, expected {n}" for name in bad]
    return [msg for c in parts(p) for msg in c.audit(p, f, tol)]


#: Every money and energy figure :func:`costs` returns, zero where a part is absent.
COST_KEYS = ("energy_cost_yuan", "export_revenue_yuan", "demand_charge_yuan",
             "degradation_cost_yuan", "subsidy_yuan", "discharge_kwh")


def costs(p: DispatchProblem, f: Flows) -> dict[str, float]:
    """The plan's money by part [yuan] (and its discharge [kWh]); ``objective_yuan`` is
    what the model minimises for it: energy - export + demand + wear - subsidy (- the hold
    credit of a storage hold value, not money)."""
    out = dict.fromkeys(COST_KEYS, 0.0)
    for c in parts(p):
        out.update(c.costs(p, f))
    out["objective_yuan"] = (out["energy_cost_yuan"] - out["export_revenue_yuan"]
                             + out["demand_charge_yuan"] + out["degradation_cost_yuan"]
                             - out["subsidy_yuan"] - out.pop("hold_credit_yuan", 0.0))
    return out
