"""Independent audit of a plan document: recompute physics and money from its own numbers.

The document is read back into the problem it describes (:func:`vpp.plan_io.
problem_from_plan`: its ``inputs`` and ``parameters``), its ``intervals`` are checked against
every part's equations (:func:`models.audit`: balance, PV, limits, directions, SOC, cycles,
shiftable energy, ...) and its ``kpis`` against the accounting (:func:`vpp.accounting.kpis`)
- no solver runs, so a plan produced elsewhere can be checked the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models import STATUSES, Tolerances, audit
from vpp.accounting import kpis
from vpp.plan_io import problem_from_plan

#: KPIs recomputed from the intervals and compared with the plan's.
CHECKED = ("energy_cost_yuan", "export_revenue_yuan", "discharge_kwh", "subsidy_yuan",
           "degradation_cost_yuan", "demand_charge_yuan", "net_cost_yuan", "baseline_cost_yuan",
           "savings_yuan")


def missing_numbers(plan: dict[str, Any]) -> list[str]:
    """The first null or non-finite entry of each numeric series in the plan's ``inputs`` and
    ``intervals``."""
    out = []
    for part in ("inputs", "intervals"):
        for key, values in plan.get(part, {}).items():
            if not isinstance(values, list) or all(isinstance(v, str) for v in values):
                continue  # not a list, or labels (timestamps, periods)
            text = [i for i, v in enumerate(values) if isinstance(v, str | bool)]
            if text:
                out.append(f"{part}.{key}[{text[0]}] is {values[text[0]]!r}, not a number")
                continue
            try:
                x = np.array([np.nan if v is None else v for v in values], dtype=float)
            except (TypeError, ValueError):
                out.append(f"{part}.{key} holds entries that are not numbers")
                continue
            bad = np.flatnonzero(~np.isfinite(x))
            if len(bad):
                i = int(bad[0])
                what = "null" if values[i] is None else f"{values[i]!r}, not a finite number"
                more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
                out.append(f"{part}.{key}[{i}] is {what}{more}")
    return out


def audit_plan(plan: dict[str, Any], tol: Tolerances | None = None) -> list[str]:
    """Every violation found in ``plan``; an empty list means the plan is consistent.

    A plan says whether it is certified (``status`` ``optimal``: gap within the required
    one) or the best plan a time budget allowed (``time_limit``: a finite gap above it); a
    gap that contradicts the status is a violation, and :func:`verdict` names how a
    consistent plan is accepted.

    Raises
    ------
    InvalidInputError
        The document is not a plan.
    """
    tol = tol or Tolerances()
    blank = missing_numbers(plan)
    if blank:  # nothing can be recomputed from a missing number
        return blank
    p, flows, rate = problem_from_plan(plan)
    out = audit(p, flows, tol)  # physics and limits; the money is checked as well
    k = plan["kpis"]
    again = kpis(p, flows, rate)
    for key in CHECKED:
        if key in k and abs(k[key] - again[key]) > tol.yuan + 1e-6 * abs(again[key]):
            out.append(f"kpis.{key}={k[key]:.6f} but recomputed {again[key]:.6f}")
    solver = plan["solver"]
    status, gap, required = plan["status"], solver["optimality_gap"], solver[
        "mip_rel_gap_required"]
    if status not in STATUSES:
        out.append(f"status {status!r}: allowed {', '.join(STATUSES)}")
    elif status == "optimal" and gap > required + 1e-9:
        out.append(f"optimality gap {gap:.3%} above the required {required:.3%} in a plan "
                   "whose status is optimal")
    elif status == "time_limit" and not (required + 1e-9 < gap < float("inf")):
        out.append(f"status time_limit with optimality gap {gap:.3%}: a plan stopped by "
                   f"the time limit proves a finite gap above the required {required:.3%}")
    if solver["objective_bound_yuan"] > solver["objective_yuan"] + tol.yuan:
        out.append("objective bound above the objective")
    net = again["net_cost_yuan"]
    slack = tol.yuan + 1e-6 * abs(net)
    provisioned = bool(np.any(np.asarray(p.grid.peak_margin_kw) > 0))
    if not plan["parameters"]["subsidy"]["counted_in_objective"]:
        pass
    elif provisioned and solver["objective_yuan"] < net - slack:
        # a peak margin's provision is in the objective, on top of the plan's own money
        out.append(f"objective {solver['objective_yuan']:.6f} below the recomputed net cost "
                   f"{net:.6f}")
    elif not provisioned and abs(solver["objective_yuan"] - net) > slack:
        out.append(f"objective {solver['objective_yuan']:.6f} != recomputed net cost "
                   f"{net:.6f}")
    return out


def verdict(plan: dict[str, Any]) -> str:
    """How an audited plan without problems is accepted: certified within its gap, or as
    the time-limited plan it says it is."""
    if plan["status"] == "optimal":
        return "ok"
    solver = plan["solver"]
    return (f"ok as {plan['status']}: gap {solver['optimality_gap']:.3%} above the required "
            f"{solver['mip_rel_gap_required']:.3%}, not certified")
