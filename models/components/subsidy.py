"""The storage subsidy: a reward per kWh of the discharge the counting rule pays for.

With ``rate[t]`` [yuan/kWh] (zero outside the subsidy window or in periods the rule does not
pay, and everywhere when planning subsidy-blind), one of three forms:

**discharge** (every discharged kWh earns its interval's rate; the literal rule, and the
peak/flat rule whose rate is zero elsewhere)::

    - sum_t dt * rate[t] * dis[t]                     (a cost on the discharge columns)

**discharge, with a budget** (an annual cap on rewarded energy: what is left of it is
``budget`` [kWh])::

    paid[t] <= dis[t]                                  (subsidy_paid[t])
    sum_t dt * paid[t] <= budget                       (subsidy_budget)
    - sum_t dt * rate[t] * paid[t]

**net of grid charging** (per calendar day ``d``, the discharge less the energy charged from
the grid; charging beyond the PV surplus over the inflexible load ``max(0, pv - load)``
counts as from the grid)::

    grid_ch[t] >= ch[t] - max(0, pv[t] - load[t]),  grid_ch[t] >= 0   (subsidy_grid_charge[t])
    paid_day[d] <= sum_{t in d} dt * (dis[t] - grid_ch[t]) + M[d] * (1 - on[d])
                                                                      (subsidy_net[d])
    paid_day[d] <= M[d] * on[d]                                       (subsidy_on[d])
    paid_day[d] <= sum_{t in d} dt * dis[t]                           (subsidy_dis[d])
    - sum_d rate[d] * paid_day[d]                        (rate[d]: the day's highest rate)

so ``paid_day = max(0, discharge - grid charging)``: a day that charges more from the grid
than it discharges (any grid-charged arbitrage, through the round-trip loss) is paid
nothing, not forbidden. ``on[d]`` is binary in the MILP (1: the day's net is paid) and
``M[d]`` the most the day can charge or discharge [kWh] (:func:`day_bounds_kwh`).

Because a subsidised kWh can be worth more than the round trip loses, a relaxation may charge
and discharge at once where it pays; those intervals get a binary direction from the start
(:meth:`models.components.storage.Storage.candidates`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.components.base import (
    EMPTY,
    Component,
    Context,
    Flows,
    LPWriter,
    SiteCols,
    pyomo_env,
)
from models.specs import DispatchProblem

RULES = ("discharge", "net_of_grid_charging")


def pv_surplus_kw(p: DispatchProblem) -> np.ndarray:
    """PV beyond the inflexible load, what may charge the battery without the grid [kW]."""
    return np.clip(np.asarray(p.pv_kw, dtype=float) - np.asarray(p.load_kw, dtype=float), 0.0,
                   None)


def day_rates(p: DispatchProblem) -> tuple[np.ndarray, np.ndarray]:
    """The horizon's days and each day's rate [yuan/kWh] (its highest)."""
    days = np.asarray(p.day_of_interval, dtype=np.int64)
    unique = np.unique(days)
    rate = np.asarray(p.subsidy_yuan_per_kwh, dtype=float)
    return unique, np.array([rate[days == d].max(initial=0.0) for d in unique])


def day_bounds_kwh(p: DispatchProblem, hi: dict[str, np.ndarray], days: np.ndarray,
                   ) -> np.ndarray:
    """The most each day can charge or discharge [kWh]: ``M[d]`` of the module docstring.
    Discharge: the flow bounds ``hi`` (:func:`models.components.coupling.flow_bounds`)
    summed over the day, and the day's cycle cap. Charge: the flow bounds, and what the SOC
    window plus that discharge can take (``(window + dis / eta_d) / eta_c``)."""
    from models.components.storage import day_budgets_kwh

    s, day = p.storage, np.asarray(p.day_of_interval)
    cap = dict(zip(*day_budgets_kwh(p), strict=True))
    out = []
    for d in days:
        sel = day == d
        dis = min(float(hi["dis"][sel].sum() * p.dt_h), float(cap.get(d, np.inf)))
        ch = min(float(hi["ch"][sel].sum() * p.dt_h),
                 (s.soc_max_kwh - s.soc_min_kwh + dis / s.eta_discharge) / s.eta_charge)
        out.append(max(dis, ch, 1.0))
    return np.array(out)


def paid_kwh(p: DispatchProblem, discharge_kw: np.ndarray, charge_kw: np.ndarray,
             ) -> tuple[np.ndarray, float]:
    """The rewarded discharge per interval [kWh] under the problem's rule (net of grid
    charging: per day, spread over the day's discharge) and the reward [yuan]."""
    dt, n = p.dt_h, p.n
    dis = np.clip(np.asarray(discharge_kw, dtype=float), 0.0, None)
    rate = np.asarray(p.subsidy_yuan_per_kwh, dtype=float)
    if p.subsidy_rule == "net_of_grid_charging":
        grid = np.clip(np.asarray(charge_kw, dtype=float) - pv_surplus_kw(p), 0.0, None)
        days = np.asarray(p.day_of_interval)
        out = np.zeros(n)
        money = 0.0
        for d, r in zip(*day_rates(p), strict=True):
            sel = days == d
            net = max(0.0, float(np.sum(dis[sel] - grid[sel]) * dt))
            total = float(dis[sel].sum() * dt)
            if total > 0:
                out[sel] = dis[sel] * dt * net / total
            money += r * net
        return out, money
    energy = dis * dt
    if p.subsidy_budget_kwh is None:
        return energy, float(np.sum(rate * energy))
    # the budget goes to the best-paid discharge first, as the plan places it
    out = np.zeros(n)
    left = p.subsidy_budget_kwh
    for t in np.argsort(-rate, kind="stable"):
        if left <= 0 or rate[t] <= 0:
            break
        out[t] = min(energy[t], left)
        left -= out[t]
    return out, float(np.sum(rate * out))


class Subsidy(Component):
    name = "storage subsidy"

    def active(self, p: DispatchProblem) -> bool:
        return p.storage is not None

    def validate(self, p: DispatchProblem) -> list[str]:
        out = []
        a = np.asarray(p.subsidy_yuan_per_kwh, dtype=float)
        if a.shape == (p.n,) and np.nanmin(a, initial=0.0) < 0:
            out.append(f"subsidy_yuan_per_kwh: minimum {np.nanmin(a):.6g}, allowed range "
                       "[0, inf)")
        if p.subsidy_rule not in RULES:
            out.append(f"subsidy_rule={p.subsidy_rule!r}: allowed {', '.join(RULES)}")
        b = p.subsidy_budget_kwh
        if b is not None and not (np.isfinite(b) and b >= 0):
            out.append(f"subsidy_budget_kwh={b}: allowed range [0, inf) kWh")
        if b is not None and p.subsidy_rule != "discharge":
            out.append("subsidy_budget_kwh: only with subsidy_rule 'discharge'")
        return out

    def structure(self, p: DispatchProblem) -> tuple:
        days = (len(np.unique(np.asarray(p.day_of_interval)))
                if p.subsidy_rule == "net_of_grid_charging" else None)
        return (p.subsidy_rule, p.subsidy_budget_kwh is not None, days)

    # ------------------------------------------------------------------ arrays
    def columns(self, ctx: Context, w: LPWriter) -> None:
        p, n, dt = ctx.p, ctx.n, ctx.p.dt_h
        rate = np.asarray(p.subsidy_yuan_per_kwh, dtype=float)
        if p.subsidy_rule == "net_of_grid_charging":
            w.columns("grid_ch", n, 0.0, np.inf)
            days, rates = day_rates(p)
            w.columns("paid_day", len(days), 0.0, np.inf, -rates, labels=days.tolist())
            w.columns("paid_on", len(days), 0.0, 1.0, labels=days.tolist())
        elif p.subsidy_budget_kwh is not None:
            w.columns("paid", n, 0.0, np.inf, -dt * rate)
        else:
            w.add_cost(w.cols["dis"], -dt * rate)

    def rows(self, ctx: Context, w: LPWriter) -> None:
        p, n, t, dt, c = ctx.p, ctx.n, ctx.t, ctx.p.dt_h, w.cols
        if p.subsidy_rule == "net_of_grid_charging":
            surplus = pv_surplus_kw(p)
            w.rows("subsidy_grid_charge", -surplus, np.inf, n,
                   [(t, c["grid_ch"], 1.0), (t, c["ch"], -1.0)])
            days, _ = day_rates(p)
            member = np.asarray(p.day_of_interval)[None, :] == days[:, None]
            big = day_bounds_kwh(ctx.p, ctx.hi, days)
            net, dis = [], []
            for k in range(len(days)):
                row = np.full(n, k)
                net += [(row, c["dis"], -dt * member[k]), (row, c["grid_ch"], dt * member[k])]
                dis.append((row, c["dis"], -dt * member[k]))
            k, labels = np.arange(len(days)), days.tolist()
            w.rows("subsidy_net", -np.inf, big, len(days),
                   [(k, c["paid_day"], 1.0), (k, c["paid_on"], big), *net], labels=labels)
            w.rows("subsidy_on", -np.inf, 0.0, len(days),
                   [(k, c["paid_day"], 1.0), (k, c["paid_on"], -big)], labels=labels)
            w.rows("subsidy_dis", -np.inf, 0.0, len(days),
                   [(k, c["paid_day"], 1.0), *dis], labels=labels)
        elif p.subsidy_budget_kwh is not None:
            w.rows("subsidy_paid", -np.inf, 0.0, n, [(t, c["paid"], 1.0), (t, c["dis"], -1.0)])
            w.rows("subsidy_budget", -np.inf, p.subsidy_budget_kwh, 1,
                   [(np.zeros(n, dtype=int), c["paid"], dt)], labels=None)

    # ------------------------------------------------------------------ Pyomo
    def variables(self, ctx: Context, m: Any) -> None:
        pyo, p = pyomo_env(), ctx.p
        if p.subsidy_rule == "net_of_grid_charging":
            m.grid_ch = pyo.Var(m.T, bounds=(0.0, None))
            m.paid_day = pyo.Var(day_rates(p)[0].tolist(), bounds=(0.0, None))
            m.paid_on = pyo.Var(day_rates(p)[0].tolist(), bounds=(0.0, 1.0))
        elif p.subsidy_budget_kwh is not None:
            m.paid = pyo.Var(m.T, bounds=(0.0, None))

    def constraints(self, ctx: Context, m: Any) -> None:
        pyo, p, n, dt = pyomo_env(), ctx.p, ctx.n, ctx.p.dt_h
        rate = [float(v) for v in p.subsidy_yuan_per_kwh]
        if p.subsidy_rule == "net_of_grid_charging":
            surplus = pv_surplus_kw(p)
            m.subsidy_grid_charge = pyo.Constraint(
                m.T, rule=lambda m, t: m.grid_ch[t] >= m.ch[t] - float(surplus[t]))
            days, rates = day_rates(p)
            member = {int(d): [t for t in range(n) if int(p.day_of_interval[t]) == d]
                      for d in days}
            big = dict(zip(days.tolist(), day_bounds_kwh(p, ctx.hi, days).tolist(), strict=True))
            m.subsidy_net = pyo.Constraint(days.tolist(), rule=lambda m, d: m.paid_day[d] <= sum(
                dt * (m.dis[t] - m.grid_ch[t]) for t in member[d]) + big[d] * (1 - m.paid_on[d]))
            m.subsidy_on = pyo.Constraint(
                days.tolist(), rule=lambda m, d: m.paid_day[d] <= big[d] * m.paid_on[d])
            m.subsidy_dis = pyo.Constraint(days.tolist(), rule=lambda m, d: m.paid_day[d] <= sum(
                dt * m.dis[t] for t in member[d]))
            ctx.pyomo_cost.append(sum(-float(r) * m.paid_day[int(d)]
                                      for d, r in zip(days, rates, strict=True)))
        elif p.subsidy_budget_kwh is not None:
            m.subsidy_paid = pyo.Constraint(m.T, rule=lambda m, t: m.paid[t] <= m.dis[t])
            m.subsidy_budget = pyo.Constraint(
                expr=sum(dt * m.paid[t] for t in range(n)) <= p.subsidy_budget_kwh)
            ctx.pyomo_cost.append(sum(-dt * rate[t] * m.paid[t] for t in range(n)))
        else:
            ctx.pyomo_cost.append(sum(-dt * rate[t] * m.dis[t] for t in range(n)))

    # ------------------------------------------------------------------ integer decisions
    def integer_columns(self, p: DispatchProblem, cols: SiteCols) -> np.ndarray:
        return cols.get_cols("paid_on")

    def candidates(self, p: DispatchProblem, cols: SiteCols) -> np.ndarray:
        """One per day: binary from the start costs a few LPs at most."""
        return cols.get_cols("paid_on")

    def repairs(self, p: DispatchProblem, cols: SiteCols, x: np.ndarray,
                ) -> tuple[np.ndarray, np.ndarray]:
        on = cols.get_cols("paid_on")
        if not len(on):
            return EMPTY, np.array([])
        bad = np.flatnonzero(np.abs(x[on] - np.round(x[on])) > 1e-6)
        return on[bad], self._net_paid(p, x[cols["dis"]], x[cols["ch"]])[bad]

    def from_hint(self, p: DispatchProblem, cols: SiteCols, hint: Flows,
                  ) -> tuple[np.ndarray, np.ndarray]:
        on = cols.get_cols("paid_on")
        if not len(on):
            return EMPTY, np.array([])
        return on, self._net_paid(p, hint.discharge_kw, hint.charge_kw)

    def start(self, p: DispatchProblem, cols: SiteCols, x: np.ndarray,
              ) -> tuple[np.ndarray, np.ndarray]:
        on = cols.get_cols("paid_on")
        if not len(on):
            return EMPTY, np.array([])
        return on, self._net_paid(p, x[cols["dis"]], x[cols["ch"]])

    @staticmethod
    def _net_paid(p: DispatchProblem, dis: Any, ch: Any) -> np.ndarray:
        """1.0 for each day whose discharge exceeds its grid charging (its net is paid)."""
        grid = np.clip(np.asarray(ch, dtype=float) - pv_surplus_kw(p), 0.0, None)
        net = np.asarray(dis, dtype=float) - grid
        days = np.asarray(p.day_of_interval)
        return np.array([float(net[days == d].sum() * p.dt_h > 1e-6) for d in day_rates(p)[0]])

    def costs(self, p: DispatchProblem, f: Flows) -> dict[str, float]:
        _, money = paid_kwh(p, f.discharge_kw, f.charge_kw)
        return {"subsidy_yuan": money}


COMPONENT = Subsidy()
