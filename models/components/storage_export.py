"""User-side storage does not feed the grid: no discharge while the site exports.

Unless a site declares that its storage may export, the battery discharges only in intervals
where the site imports or is balanced, so whatever the site exports is PV beyond its load
(export <= PV surplus). With ``y[t] = 1`` the grid direction of import
(:mod:`models.components.grid`) and ``D[t]`` the discharge bound::

    dis[t] <= D[t] * y[t]                                         (storage_no_export[t])

With ``y`` binary this is the rule; the repair of a relaxation that discharges and exports at
once keeps the larger of the two. Rows ``storage_no_export[t]``; only where the site can
export at all.
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
from models.specs import POWER_TOL_KW, DispatchProblem


class StorageNoExport(Component):
    name = "no storage export"

    def active(self, p: DispatchProblem) -> bool:
        return (p.storage is not None and not p.storage.export_allowed
                and p.grid.export_limit_kw > 0)

    def rows(self, ctx: Context, w: LPWriter) -> None:
        t, c = ctx.t, w.cols
        w.rows("storage_no_export", -np.inf, 0.0, ctx.n,
               [(t, c["dis"], 1.0), (t, c["y"], -ctx.hi["dis"])])

    def constraints(self, ctx: Context, m: Any) -> None:
        pyo, hi = pyomo_env(), ctx.hi
        m.storage_no_export = pyo.Constraint(
            m.T, rule=lambda m, t: m.dis[t] <= hi["dis"][t] * m.y[t])

    def candidates(self, p: DispatchProblem, cols: SiteCols) -> np.ndarray:
        """Where PV exceeds the load the site may export while the battery discharges."""
        return cols["y"][np.asarray(p.pv_kw) > np.asarray(p.load_kw)]

    def repairs(self, p: DispatchProblem, cols: SiteCols, x: np.ndarray,
                ) -> tuple[np.ndarray, np.ndarray]:
        dis, exp = x[cols["dis"]], x[cols["exp"]]
        bad = np.flatnonzero(np.minimum(dis, exp) > POWER_TOL_KW)
        return cols["y"][bad], (dis[bad] >= exp[bad]).astype(float)

    def start(self, p: DispatchProblem, cols: SiteCols, x: np.ndarray,
              ) -> tuple[np.ndarray, np.ndarray]:
        on = np.flatnonzero(x[cols["dis"]] > POWER_TOL_KW)
        return cols["y"][on], np.ones(len(on))

    def audit(self, p: DispatchProblem, f: Flows, tol: Tolerances) -> list[str]:
        both = np.minimum(np.asarray(f.discharge_kw, dtype=float),
                          np.asarray(f.grid_export_kw, dtype=float))
        return first_violation(both > tol.kw, "storage discharging while the site exports "
                               "(user-side storage may not feed the grid)", both, p.label)


COMPONENT = StorageNoExport()
