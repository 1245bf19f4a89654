"""Peak reserve: the battery keeps what it needs to hold the billed peak if the load comes in
high.

With a peak margin ``q[t]`` [kW] (:attr:`models.GridSpec.peak_margin_kw`, e.g. an upper
quantile of the load above its forecast), the demand charge is not provisioned for
``imp + q`` outright: in a high-load scenario the real-time rule answers the extra load with
extra battery power ``extra[t]`` (discharging more or charging less), within the converter's
rating, from the energy the battery still holds in that scenario::

    peak[m(t)] >= imp[t] + q[t] - extra[t]                   (term in grid's peak_demand[t])
    extra[t] + dis[t] - ch[t] <= P                           (reserve_power[t])
    deficit[t] >= deficit[t-1] + dt * extra[t] / eta_d,  deficit[-1] = 0
                                                             (reserve_energy[t])
    soc[t] - deficit[t] >= soc_min                           (reserve_soc[t])
    0 <= extra[t] <= q[t],  deficit[t] >= 0

``deficit`` is the energy the high scenario has drawn beyond the plan by the end of interval
``t`` (every interval high at once: conservative, and what a day-long forecast bias does).
The scenario ignores the direction hold and the daily cycle cap (a battery on its charging
side answers by charging less). Without a margin or a battery, the peak rows are
``peak >= imp`` as before. Columns ``extra[t] deficit[t]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.components.base import Component, Context, LPWriter, pyomo_env
from models.components.grid import margin
from models.specs import DispatchProblem


class PeakReserve(Component):
    name = "peak reserve"

    def active(self, p: DispatchProblem) -> bool:
        return p.storage is not None and bool(np.any(margin(p) > 0))

    def structure(self, p: DispatchProblem) -> tuple:
        return (True,)

    def columns(self, ctx: Context, w: LPWriter) -> None:
        n = ctx.n
        # never more than the margin: the plan's own import stays billed
        extra = w.columns("extra", n, 0.0, np.minimum(margin(ctx.p), ctx.p.storage.power_kw))
        w.columns("deficit", n, 0.0, np.inf)
        ctx.peak_terms.append((ctx.t, extra, 1.0))

    def rows(self, ctx: Context, w: LPWriter) -> None:
        p, s, n, t, c = ctx.p, ctx.p.storage, ctx.n, ctx.t, w.cols
        w.rows("reserve_power", -np.inf, s.power_kw, n,
               [(t, c["extra"], 1.0), (t, c["dis"], 1.0), (t, c["ch"], -1.0)])
        w.rows("reserve_energy", 0.0, np.inf, n,
               [(t, c["deficit"], 1.0), (t[1:], c["deficit"][:-1], -1.0),
                (t, c["extra"], -p.dt_h / s.eta_discharge)])
        w.rows("reserve_soc", s.soc_min_kwh, np.inf, n,
               [(t, c["soc"], 1.0), (t, c["deficit"], -1.0)])

    def variables(self, ctx: Context, m: Any) -> None:
        pyo, s = pyomo_env(), ctx.p.storage
        top = np.minimum(margin(ctx.p), s.power_kw)
        m.extra = pyo.Var(m.T, bounds=lambda _, t: (0.0, float(top[t])))
        m.deficit = pyo.Var(m.T, bounds=(0.0, None))
        ctx.pyomo_peak_terms.append((1.0, lambda m, t: m.extra[t]))

    def constraints(self, ctx: Context, m: Any) -> None:
        pyo, p, s = pyomo_env(), ctx.p, ctx.p.storage
        dt, eta = p.dt_h, s.eta_discharge
        m.reserve_power = pyo.Constraint(
            m.T, rule=lambda m, t: m.extra[t] + m.dis[t] - m.ch[t] <= s.power_kw)
        m.reserve_energy = pyo.Constraint(m.T, rule=lambda m, t: m.deficit[t] >= (
            m.deficit[t - 1] if t > 0 else 0.0) + dt * m.extra[t] / eta)
        m.reserve_soc = pyo.Constraint(
            m.T, rule=lambda m, t: m.soc[t] - m.deficit[t] >= s.soc_min_kwh)


COMPONENT = PeakReserve()
