"""Shiftable loads: energy that must be delivered inside a window, at any power in a range.

For load ``k`` with window ``[start_k, end_k)``, bounds ``p_min_k <= flex_k[t] <= p_max_k``
and energy ``E_k`` [kWh]::

    sum_{t in window} flex_k[t] * dt == E_k                     (shift_energy[k])

``flex_k[t]`` exists only inside the window and draws power from the site's bus (it enters
the power balance with sign -1). Columns ``flex[k,t]``, rows ``shift_energy[k]``.
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
    pyomo_env,
)
from models.specs import DispatchProblem


def shiftable_range(p: DispatchProblem) -> tuple[np.ndarray, np.ndarray]:
    """Least and most power all shiftable loads together can draw in each interval [kW]."""
    lo, hi = np.zeros(p.n), np.zeros(p.n)
    for sh in p.shiftable:
        lo[sh.start : sh.end] += sh.p_min_kw
        hi[sh.start : sh.end] += sh.p_max_kw
    return lo, hi


def _pairs(p: DispatchProblem) -> np.ndarray:
    """``(load k, interval t)`` of every flexible-load column, shape (F, 2)."""
    return np.array([(k, t) for k, sh in enumerate(p.shiftable) for t in range(sh.start, sh.end)],
                    dtype=np.int64).reshape(-1, 2)


class Shiftable(Component):
    name = "shiftable loads"

    def validate(self, p: DispatchProblem) -> list[str]:
        problems = []
        names = [sh.name for sh in p.shiftable]
        if len(set(names)) != len(names):
            problems.append(f"shiftable loads: names must be unique, got {names}")
        for sh in p.shiftable:
            where = f"shiftable load {sh.name!r}"
            if not 0 <= sh.start < sh.end <= p.n:
                problems.append(f"{where}: window [{sh.start}, {sh.end}) must lie inside "
                                f"[0, {p.n})")
                continue
            if not 0.0 <= sh.p_min_kw <= sh.p_max_kw:
                problems.append(
                    f"{where}: need 0 <= p_min_kw ({sh.p_min_kw}) <= p_max_kw ({sh.p_max_kw})")
                continue
            hours = (sh.end - sh.start) * p.dt_h
            lo, hi = sh.p_min_kw * hours, sh.p_max_kw * hours
            if not lo - 1e-9 <= sh.energy_kwh <= hi + 1e-9:
                problems.append(
                    f"{where}: energy_kwh={sh.energy_kwh} outside what its window can take, "
                    f"[{lo:.6g}, {hi:.6g}] kWh ({hours:g} h at {sh.p_min_kw:g}-"
                    f"{sh.p_max_kw:g} kW)")
        return problems

    def structure(self, p: DispatchProblem) -> tuple:
        return (tuple(p.shiftable),)

    def columns(self, ctx: Context, w: LPWriter) -> None:
        p = ctx.p
        kt = _pairs(p)
        shl = p.shiftable
        c = w.columns("flex", len(kt), [shl[k].p_min_kw for k in kt[:, 0]],
                      [shl[k].p_max_kw for k in kt[:, 0]],
                      labels=[(int(k), int(t)) for k, t in kt])
        ctx.balance.append((kt[:, 1], c, -1.0))

    def rows(self, ctx: Context, w: LPWriter) -> None:
        p = ctx.p
        kt = _pairs(p)
        energy = np.array([sh.energy_kwh for sh in p.shiftable], dtype=float)
        w.rows("shift_energy", energy, energy, len(p.shiftable),
               [(kt[:, 0], w.cols["flex"], p.dt_h)])

    def variables(self, ctx: Context, m: Any) -> None:
        pyo, p = pyomo_env(), ctx.p
        m.F = pyo.Set(dimen=2, initialize=[tuple(map(int, kt)) for kt in _pairs(p)])
        m.flex = pyo.Var(m.F, bounds=lambda _, k, t: (p.shiftable[k].p_min_kw,
                                                      p.shiftable[k].p_max_kw))
        flex_at: list[list[tuple[int, int]]] = [[] for _ in range(p.n)]
        for k, t in m.F:
            flex_at[t].append((k, t))
        ctx.pyomo_balance.append((-1.0, lambda m, t: sum(m.flex[kt] for kt in flex_at[t])))

    def constraints(self, ctx: Context, m: Any) -> None:
        pyo, p = pyomo_env(), ctx.p
        m.shift_energy = pyo.Constraint(
            range(len(p.shiftable)),
            rule=lambda m, k: sum(m.flex[k, t] for t in range(p.shiftable[k].start,
                                                              p.shiftable[k].end))
            * p.dt_h == p.shiftable[k].energy_kwh)

    def extract(self, p: DispatchProblem, cols: SiteCols, x: np.ndarray,
                out: dict[str, Any]) -> None:
        flex = np.zeros(p.n)
        shift = {sh.name: np.zeros(p.n) for sh in p.shiftable}
        for (k, t), col in zip(_pairs(p), cols["flex"], strict=True):
            flex[t] += x[col]
            shift[p.shiftable[k].name][t] = x[col]
        out["flexible_load_kw"] = flex
        out["shiftable_kw"] = shift

    def audit(self, p: DispatchProblem, f: Flows, tol: Tolerances) -> list[str]:
        out = []
        flex = np.asarray(f.flexible_load_kw, dtype=float)
        need = sum(sh.energy_kwh for sh in p.shiftable)
        if abs(flex.sum() * p.dt_h - need) > tol.kwh:
            out.append(f"flexible load energy {flex.sum() * p.dt_h:.3f} kWh != {need:.3f} kWh "
                       "required")
        inside = np.zeros(p.n, dtype=bool)
        for sh in p.shiftable:
            inside[sh.start:sh.end] = True
        bad = np.flatnonzero(~inside & (flex > tol.kw))
        if bad.size:
            out.append(f"flexible load outside its window at {p.label(int(bad[0]))} "
                       f"({bad.size} intervals), value {flex[bad[0]]:.6g}")
        bad = np.flatnonzero(flex < -tol.kw)
        if bad.size:
            out.append(f"flexible_load_kw negative at {p.label(int(bad[0]))} "
                       f"({bad.size} intervals), value {flex[bad[0]]:.6g}")
        return out


COMPONENT = Shiftable()
