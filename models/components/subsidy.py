"""The storage subsidy: a reward per kWh discharged, counted against the discharge's cost.

With ``rate[t]`` [yuan/kWh] (zero outside the subsidy window, or everywhere when planning
subsidy-blind) the objective earns::

    - sum_t dt * rate[t] * dis[t]

on the discharge columns of :mod:`models.components.storage`. Because a subsidised kWh can be
worth more than the round trip loses, a relaxation may charge and discharge at once where
the rate is positive; those intervals get a binary direction from the start
(:meth:`models.components.storage.Storage.candidates`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.components.base import Component, Context, Flows, LPWriter, pyomo_env
from models.specs import DispatchProblem


class Subsidy(Component):
    name = "storage subsidy"

    def active(self, p: DispatchProblem) -> bool:
        return p.storage is not None

    def validate(self, p: DispatchProblem) -> list[str]:
        a = np.asarray(p.subsidy_yuan_per_kwh, dtype=float)
        if a.shape == (p.n,) and np.nanmin(a, initial=0.0) < 0:
            return [f"subsidy_yuan_per_kwh: minimum {np.nanmin(a):.6g}, allowed range "
                    "[0, inf)"]
        return []

    def columns(self, ctx: Context, w: LPWriter) -> None:
        rate = np.asarray(ctx.p.subsidy_yuan_per_kwh, dtype=float)
        w.add_cost(w.cols["dis"], -ctx.p.dt_h * rate)

    def constraints(self, ctx: Context, m: Any) -> None:
        pyomo_env()
        rate = [float(v) for v in ctx.p.subsidy_yuan_per_kwh]
        dt = ctx.p.dt_h
        ctx.pyomo_cost.append(sum(-dt * rate[t] * m.dis[t] for t in range(ctx.n)))

    def costs(self, p: DispatchProblem, f: Flows) -> dict[str, float]:
        rate = np.asarray(p.subsidy_yuan_per_kwh, dtype=float)
        return {"subsidy_yuan": float(p.dt_h * np.sum(rate * np.asarray(f.discharge_kw)))}


COMPONENT = Subsidy()
