"""Rooftop PV: the part of the available power the site uses; the rest is curtailed.

    0 <= pv_used[t] <= pv[t]                   (column bounds)
    pv_curtailed[t] = pv[t] - pv_used[t]

``pv_used`` supplies the bus (sign +1 in the power balance). Columns ``pv_used[t]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.components.base import (
    Component,
    Context,
    Flows,
    LPWriter,
    SiteCols,
    Tolerances,
    first_violation,
    pyomo_env,
)
from models.specs import DispatchProblem


class PV(Component):
    name = "PV"

    def validate(self, p: DispatchProblem) -> list[str]:
        a = np.asarray(p.pv_kw, dtype=float)
        if a.shape == (p.n,) and np.nanmin(a, initial=0.0) < 0:
            return [f"pv_kw: minimum {np.nanmin(a):.6g}, allowed range [0, inf)"]
        return []

    def columns(self, ctx: Context, w: LPWriter) -> None:
        c = w.columns("pv_used", ctx.n, 0.0, np.asarray(ctx.p.pv_kw, dtype=float))
        ctx.balance.append((ctx.t, c, 1.0))

    def variables(self, ctx: Context, m: Any) -> None:
        pyo = pyomo_env()
        pv = [float(v) for v in ctx.p.pv_kw]
        m.pv_used = pyo.Var(m.T, bounds=lambda _, t: (0.0, pv[t]))
        ctx.pyomo_balance.append((1.0, lambda m, t: m.pv_used[t]))

    def extract(self, p: DispatchProblem, cols: SiteCols, x: np.ndarray,
                out: dict[str, Any]) -> None:
        used = np.clip(x[cols["pv_used"]], 0.0, p.pv_kw)
        used = np.where(np.abs(used) < 1e-9, 0.0, used)
        out["pv_used_kw"] = used
        out["pv_curtailed_kw"] = np.where(p.pv_kw - used < 1e-9, 0.0, p.pv_kw - used)

    def audit(self, p: DispatchProblem, f: Flows, tol: Tolerances) -> list[str]:
        used = np.asarray(f.pv_used_kw, dtype=float)
        curt = np.asarray(f.pv_curtailed_kw, dtype=float)
        total = used + curt
        return [
            *first_violation(np.abs(total - p.pv_kw) > tol.kw, "PV used + curtailed != "
                             "forecast", total - p.pv_kw, p.label),
            *first_violation(used < -tol.kw, "pv_used_kw negative", used, p.label),
            *first_violation(curt < -tol.kw, "pv_curtailed_kw negative", curt, p.label),
        ]


COMPONENT = PV()
