"""The battery: charge, discharge, state of charge, one direction per interval, wear, cycles.

For intervals ``t`` of length ``dt`` [h], rated power ``P`` [kW], efficiencies ``eta_c``,
``eta_d``, flow bounds ``C[t]``, ``D[t]`` from the balance
(:func:`models.components.coupling.flow_bounds`, at most ``P``)::

    0 <= ch[t] <= C[t],  0 <= dis[t] <= D[t],  soc_min <= soc[t] <= soc_max,  0 <= z[t] <= 1
    soc[t] == soc[t-1] + dt * (eta_c * ch[t] - dis[t] / eta_d),  soc[-1] = soc0
                                                                   (soc_recursion[t])
    soc[n-1] >= soc_terminal_min                                   (soc_terminal)
    ch[t] <= C[t] * z[t]                                           (charge_direction[t])
    dis[t] <= D[t] * (1 - z[t])                                    (discharge_direction[t])
    sum_{t in day d} dis[t] * dt <= cycles_max * energy - used[d]   (daily_cycles[d])

with ``used[0]`` the energy discharged on the first day before the horizon starts (a plan
made during the day) and 0 for later days. A ``daily_cycles`` row carries every discharge
column, with coefficient 0 outside its day (so the matrix pattern does not move with the day
boundary). ``z`` is binary in the MILP (1: charging). State of charge is a step-to-step recursion (a
running sum is much slower to solve). Wear costs ``dt * degradation * dis[t]`` [yuan]; a hold
value ``v`` [yuan/(kWh*h)] credits ``-dt * v * soc[t]`` (a tie-break towards keeping energy).
Discharge supplies the bus (+1 in the balance), charge draws from it (-1).
Columns ``ch[t] dis[t] soc[t] z[t]``.
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
    clean,
    first_violation,
    pyomo_env,
)
from models.components.coupling import import_limit
from models.components.shiftable import shiftable_range
from models.specs import POWER_TOL_KW, DispatchProblem, StorageSpec


def soc_after(s: StorageSpec, soc_kwh: float, b_kw: float, dt_h: float) -> float:
    """State of charge [kWh] after one interval at net battery power ``b_kw`` [kW]
    (positive discharges, negative charges): the recursion of the module docstring."""
    if b_kw >= 0:
        return soc_kwh - b_kw * dt_h / s.eta_discharge
    return soc_kwh - b_kw * dt_h * s.eta_charge


def power_room_kw(s: StorageSpec, soc_kwh: float, dt_h: float,
                  discharge_budget_kwh: float = np.inf) -> tuple[float, float]:
    """The most the battery can charge and discharge [kW] in one interval from ``soc_kwh``:
    rated power, the SOC window, and what is left of the day's cycle cap."""
    dis = min(s.power_kw, (soc_kwh - s.soc_min_kwh) * s.eta_discharge / dt_h,
              discharge_budget_kwh / dt_h)
    ch = min(s.power_kw, (s.soc_max_kwh - soc_kwh) / (s.eta_charge * dt_h))
    return max(ch, 0.0), max(dis, 0.0)


def cycle_budget_kwh(s: StorageSpec) -> float:
    """AC energy a calendar day may discharge under the cycle cap [kWh] (inf: no cap)."""
    return np.inf if s.max_cycles_per_day is None else s.max_cycles_per_day * s.energy_kwh


def day_budgets_kwh(p: DispatchProblem) -> tuple[np.ndarray, np.ndarray]:
    """The horizon's calendar days (their numbers) and what each may still discharge under
    the cycle cap [kWh]: the full budget, less on the first day what was used before."""
    days = np.unique(np.asarray(p.day_of_interval, dtype=np.int64))
    budget = np.full(len(days), cycle_budget_kwh(p.storage))
    budget[0] = max(0.0, budget[0] - p.storage.cycles_used_first_day_kwh)
    return days, budget


class Storage(Component):
    name = "storage"

    def active(self, p: DispatchProblem) -> bool:
        return p.storage is not None

    def validate(self, p: DispatchProblem) -> list[str]:
        s, out = p.storage, []
        for name, unit in (("power_kw", "kW"), ("energy_kwh", "kWh")):
            v = getattr(s, name)
            if not (np.isfinite(v) and v > 0):
                out.append(f"storage.{name}={v}: allowed range (0, inf) {unit}")
        for name in ("eta_charge", "eta_discharge"):
            v = getattr(s, name)
            if not 0.0 < v <= 1.0:
                out.append(f"storage.{name}={v}: allowed range (0, 1]")
        if not 0.0 <= s.soc_min_kwh <= s.soc_max_kwh <= s.energy_kwh:
            out.append(f"storage SOC window: need 0 <= soc_min_kwh ({s.soc_min_kwh}) <= "
                       f"soc_max_kwh ({s.soc_max_kwh}) <= energy_kwh ({s.energy_kwh})")
        if not s.soc_min_kwh <= s.soc_initial_kwh <= s.soc_max_kwh:
            out.append(f"storage.soc_initial_kwh={s.soc_initial_kwh}: allowed range "
                       f"[{s.soc_min_kwh}, {s.soc_max_kwh}] kWh")
        if s.soc_terminal_min_kwh is not None and not (
                s.soc_min_kwh <= s.soc_terminal_min_kwh <= s.soc_max_kwh):
            out.append(f"storage.soc_terminal_min_kwh={s.soc_terminal_min_kwh}: allowed range "
                       f"[{s.soc_min_kwh}, {s.soc_max_kwh}] kWh")
        if not (np.isfinite(s.degradation_yuan_per_kwh) and s.degradation_yuan_per_kwh >= 0):
            out.append(f"storage.degradation_yuan_per_kwh={s.degradation_yuan_per_kwh}: "
                       "allowed range [0, inf) yuan/kWh")
        if not (np.isfinite(s.hold_value_yuan_per_kwh_h) and s.hold_value_yuan_per_kwh_h >= 0):
            out.append(f"storage.hold_value_yuan_per_kwh_h={s.hold_value_yuan_per_kwh_h}: "
                       "allowed range [0, inf) yuan/(kWh*h)")
        if s.max_cycles_per_day is not None and not s.max_cycles_per_day >= 0:
            out.append(f"storage.max_cycles_per_day={s.max_cycles_per_day}: allowed range "
                       "[0, inf)")
        if not (np.isfinite(s.cycles_used_first_day_kwh) and s.cycles_used_first_day_kwh >= 0):
            out.append(f"storage.cycles_used_first_day_kwh={s.cycles_used_first_day_kwh}: "
                       "allowed range [0, inf) kWh")
        return out

    def precheck(self, p: DispatchProblem) -> list[str]:
        s = p.storage
        need = s.terminal_min_kwh - s.soc_initial_kwh
        min_flex, _ = shiftable_range(p)
        # charging is limited by the converter and by what the grid and PV can deliver
        headroom = np.clip(import_limit(p) + p.pv_kw - p.load_kw - min_flex, 0, None)
        can = float(np.minimum(s.power_kw, headroom).sum() * p.dt_h * s.eta_charge)
        if need <= can + 1e-6:
            return []
        return [f"terminal SOC {s.terminal_min_kwh:.1f} kWh unreachable from initial "
                f"{s.soc_initial_kwh:.1f} kWh: max charge {can:.1f} kWh in horizon "
                f"({s.power_kw:g} kW converter, charge efficiency {s.eta_charge:g}, grid and "
                "PV headroom)"]

    def structure(self, p: DispatchProblem) -> tuple:
        s = p.storage
        days = (len(np.unique(np.asarray(p.day_of_interval)))
                if s.max_cycles_per_day is not None else None)
        return (s.power_kw, s.energy_kwh, s.eta_charge, s.eta_discharge, s.soc_min_kwh,
                s.soc_max_kwh, days)

    # ------------------------------------------------------------------ arrays
    def columns(self, ctx: Context, w: LPWriter) -> None:
        s, n, dt = ctx.p.storage, ctx.n, ctx.p.dt_h
        ch = w.columns("ch", n, 0.0, ctx.hi["ch"])
        dis = w.columns("dis", n, 0.0, ctx.hi["dis"], dt * s.degradation_yuan_per_kwh)
        w.columns("soc", n, s.soc_min_kwh, s.soc_max_kwh, -dt * s.hold_value_yuan_per_kwh_h)
        w.columns("z", n, 0.0, 1.0)
        ctx.balance += [(ctx.t, dis, 1.0), (ctx.t, ch, -1.0)]

    def rows(self, ctx: Context, w: LPWriter) -> None:
        p, s, n, t, dt, c, hi = ctx.p, ctx.p.storage, ctx.n, ctx.t, ctx.p.dt_h, w.cols, ctx.hi
        rhs = np.zeros(n)
        rhs[0] = s.soc_initial_kwh
        w.rows("soc_recursion", rhs, rhs, n, [
            (t, c["soc"], 1.0), (t[1:], c["soc"][:-1], -1.0),
            (t, c["ch"], -dt * s.eta_charge), (t, c["dis"], dt / s.eta_discharge)])
        w.rows("soc_terminal", s.terminal_min_kwh, np.inf, 1, [([0], c["soc"][n - 1], 1.0)],
               labels=None)
        w.rows("charge_direction", -np.inf, 0.0, n, [(t, c["ch"], 1.0), (t, c["z"], -hi["ch"])])
        w.rows("discharge_direction", -np.inf, hi["dis"], n,
               [(t, c["dis"], 1.0), (t, c["z"], hi["dis"])])
        if s.max_cycles_per_day is not None:
            days, budget = day_budgets_kwh(p)
            member = np.asarray(p.day_of_interval)[None, :] == days[:, None]
            w.rows("daily_cycles", -np.inf, budget, len(days),
                   [(np.full(n, k), c["dis"], dt * member[k]) for k in range(len(days))],
                   labels=days.tolist())

    # ------------------------------------------------------------------ Pyomo
    def variables(self, ctx: Context, m: Any) -> None:
        pyo, s, hi = pyomo_env(), ctx.p.storage, ctx.hi
        m.ch = pyo.Var(m.T, bounds=lambda _, t: (0.0, hi["ch"][t]))
        m.dis = pyo.Var(m.T, bounds=lambda _, t: (0.0, hi["dis"][t]))
        m.soc = pyo.Var(m.T, bounds=(s.soc_min_kwh, s.soc_max_kwh))
        m.z = pyo.Var(m.T, bounds=(0.0, 1.0))
        ctx.pyomo_balance += [(1.0, lambda m, t: m.dis[t]), (-1.0, lambda m, t: m.ch[t])]

    def constraints(self, ctx: Context, m: Any) -> None:
        pyo, p, s, n, dt, hi = pyomo_env(), ctx.p, ctx.p.storage, ctx.n, ctx.p.dt_h, ctx.hi
        eta_c, eta_d = s.eta_charge, s.eta_discharge

        def soc_step(m, t):
            prev = m.soc[t - 1] if t > 0 else s.soc_initial_kwh
            return m.soc[t] == prev + dt * (eta_c * m.ch[t] - m.dis[t] / eta_d)

        m.soc_recursion = pyo.Constraint(m.T, rule=soc_step)
        m.soc_terminal = pyo.Constraint(expr=m.soc[n - 1] >= s.terminal_min_kwh)
        m.charge_direction = pyo.Constraint(m.T, rule=lambda m, t: m.ch[t] <= hi["ch"][t]
                                            * m.z[t])
        m.discharge_direction = pyo.Constraint(
            m.T, rule=lambda m, t: m.dis[t] <= hi["dis"][t] * (1 - m.z[t]))
        if s.max_cycles_per_day is not None:
            days, budget = day_budgets_kwh(p)
            members = {int(d): [t for t in range(n) if int(p.day_of_interval[t]) == d]
                       for d in days}
            cap = dict(zip(days.tolist(), budget.tolist(), strict=True))
            m.daily_cycles = pyo.Constraint(
                days.tolist(), rule=lambda m, d: sum(m.dis[t] for t in members[d]) * dt <= cap[d])
        ctx.pyomo_cost.append(sum(dt * s.degradation_yuan_per_kwh * m.dis[t] for t in range(n)))
        if s.hold_value_yuan_per_kwh_h:
            ctx.pyomo_cost.append(-sum(dt * s.hold_value_yuan_per_kwh_h * m.soc[t]
                                       for t in range(n)))

    # ------------------------------------------------------------------ integer decisions
    def integer_columns(self, p: DispatchProblem, cols: SiteCols) -> np.ndarray:
        return cols["z"]

    def candidates(self, p: DispatchProblem, cols: SiteCols) -> np.ndarray:
        """Subsidised discharge: a relaxation may charge and discharge at once."""
        return cols["z"][np.asarray(p.subsidy_yuan_per_kwh) > 0]

    def repairs(self, p: DispatchProblem, cols: SiteCols, x: np.ndarray,
                ) -> tuple[np.ndarray, np.ndarray]:
        ch, dis = x[cols["ch"]], x[cols["dis"]]
        bad = np.flatnonzero(np.minimum(ch, dis) > POWER_TOL_KW)
        return cols["z"][bad], (ch[bad] >= dis[bad]).astype(float)

    def from_hint(self, p: DispatchProblem, cols: SiteCols, hint: Flows,
                  ) -> tuple[np.ndarray, np.ndarray]:
        ch = np.asarray(hint.charge_kw, dtype=float)
        dis = np.asarray(hint.discharge_kw, dtype=float)
        on = (ch > POWER_TOL_KW) | (dis > POWER_TOL_KW)
        return cols["z"][on], (ch[on] > POWER_TOL_KW).astype(float)

    def start(self, p: DispatchProblem, cols: SiteCols, x: np.ndarray,
              ) -> tuple[np.ndarray, np.ndarray]:
        return cols["z"], (x[cols["ch"]] > POWER_TOL_KW).astype(float)

    # ------------------------------------------------------------------ results
    def extract(self, p: DispatchProblem, cols: SiteCols, x: np.ndarray,
                out: dict[str, Any]) -> None:
        out["charge_kw"] = clean(x[cols["ch"]])
        out["discharge_kw"] = clean(x[cols["dis"]])
        out["soc_kwh"] = x[cols["soc"]]

    def audit(self, p: DispatchProblem, f: Flows, tol: Tolerances) -> list[str]:
        s, lab, dt = p.storage, p.label, p.dt_h
        ch = np.asarray(f.charge_kw, dtype=float)
        dis = np.asarray(f.discharge_kw, dtype=float)
        soc = np.asarray(f.soc_kwh, dtype=float)
        prev = np.concatenate([[s.soc_initial_kwh], soc[:-1]])
        expect = prev + dt * (s.eta_charge * ch - dis / s.eta_discharge)
        both = np.minimum(ch, dis)
        out = [
            *first_violation(ch < -tol.kw, "charge_kw negative", ch, lab),
            *first_violation(dis < -tol.kw, "discharge_kw negative", dis, lab),
            *first_violation(ch > s.power_kw + tol.kw, "charge above rated power", ch, lab),
            *first_violation(dis > s.power_kw + tol.kw, "discharge above rated power", dis,
                             lab),
            *first_violation(both > tol.kw, "simultaneous charge and discharge", both, lab),
            *first_violation(np.abs(expect - soc) > tol.kwh, "SOC recursion off",
                             soc - expect, lab),
            *first_violation(soc < s.soc_min_kwh - tol.kwh, "SOC below minimum", soc, lab),
            *first_violation(soc > s.soc_max_kwh + tol.kwh, "SOC above maximum", soc, lab),
        ]
        if soc[-1] < s.terminal_min_kwh - tol.kwh:
            out.append(f"terminal SOC {soc[-1]:.3f} kWh below {s.terminal_min_kwh:.3f} kWh")
        if s.max_cycles_per_day is not None:
            days = np.asarray(p.day_of_interval)
            for d, cap in zip(*day_budgets_kwh(p), strict=True):
                used = float(dis[days == d].sum() * dt)
                if used > cap + tol.kwh:
                    first = int(np.flatnonzero(days == d)[0])
                    out.append(f"cycle cap: {used:.3f} kWh discharged on the day of "
                               f"{lab(first)} > {cap:.3f} kWh left of its cap")
        return out

    def costs(self, p: DispatchProblem, f: Flows) -> dict[str, float]:
        discharge = float(p.dt_h * np.sum(f.discharge_kw))
        held = float(p.dt_h * np.sum(f.soc_kwh)) * p.storage.hold_value_yuan_per_kwh_h
        return {"discharge_kwh": discharge,
                "degradation_cost_yuan": discharge * p.storage.degradation_yuan_per_kwh,
                "hold_credit_yuan": held}


class NoStorage(Component):
    """A site without a battery: no battery power may appear in its plans."""

    name = "no storage"

    def active(self, p: DispatchProblem) -> bool:
        return p.storage is None

    def extract(self, p: DispatchProblem, cols: SiteCols, x: np.ndarray,
                out: dict[str, Any]) -> None:
        out["charge_kw"] = out["discharge_kw"] = out["soc_kwh"] = np.zeros(p.n)

    def audit(self, p: DispatchProblem, f: Flows, tol: Tolerances) -> list[str]:
        power = np.abs(np.asarray(f.charge_kw)) + np.abs(np.asarray(f.discharge_kw))
        return first_violation(power > tol.kw, "storage power without storage",
                               np.asarray(f.charge_kw), p.label)

    def costs(self, p: DispatchProblem, f: Flows) -> dict[str, float]:
        return {"discharge_kwh": 0.0, "degradation_cost_yuan": 0.0}


COMPONENT = Storage()
NO_STORAGE = NoStorage()
