"""Direction hold: the battery keeps a direction for a minimum time before it reverses.

The battery is on one *side* in each interval, ``z[t] = 1`` charging or ``z[t] = 0``
discharging (:mod:`models.components.storage`: ``ch[t] <= C[t] z[t]``,
``dis[t] <= D[t] (1 - z[t])``); resting is allowed on either side. With a hold of ``L``
intervals (``min_direction_hold_h / dt``, rounded up) the side changes at most once in any
``L`` consecutive intervals - after a change, the new side is held for at least ``L``::

    u[t] >= z[t] - z[t-1],  u[t] >= z[t-1] - z[t]          (hold_switch_up, hold_switch_down)
    sum_{tau = t}^{t + L - 1} u[tau] <= 1                   (hold_window[t])
    0 <= u[t] <= 1;  u[t] = 0 for t < L - held             (the hold carried into the horizon)

with ``z[-1]`` the side before the horizon (``direction_initial``; unknown: the two rows of
``t = 0`` are free) and ``held`` the intervals since its last change (``direction_held_h``).
With ``z`` binary, ``u[t]`` is 1 exactly where the side changes, so this is the rule itself,
not an approximation. In terms of power: two changes of direction are at least ``L`` apart,
where a change may fall anywhere in the rest between the last interval of one direction and
the first of the other (a battery that rested long enough may reverse at once). Charging
and discharging back and forth inside one tariff period - subsidy cycling - is what it
forbids.

Integer decisions: every ``z`` of the battery is binary in the MILP. A plan is integer-
feasible when its powers admit such a side sequence (checked greedily: each change as early
as its rest allows, :func:`hold_sides`); otherwise the repair fixes every ``z`` to the
sequence that keeps the hold and keeps most of the plan's power on its side
(:func:`best_sides`, dynamic programming). Columns
``u[t]``, rows ``hold_switch_up[t]``, ``hold_switch_down[t]``, ``hold_window[t]``.
"""

from __future__ import annotations

import math
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
from models.specs import POWER_TOL_KW, DispatchProblem


def hold_intervals(p: DispatchProblem) -> int:
    """The hold ``L`` in intervals (at least 1)."""
    return max(1, math.ceil(p.storage.min_direction_hold_h / p.dt_h - 1e-9))


def blocked_intervals(p: DispatchProblem) -> int:
    """Intervals at the start of the horizon in which the side may not change yet."""
    s = p.storage
    if s.direction_initial is None or s.direction_held_h is None:
        return 0
    held = math.floor(s.direction_held_h / p.dt_h + 1e-9)
    return max(0, hold_intervals(p) - held)


def hold_sides(p: DispatchProblem, ch: np.ndarray, dis: np.ndarray,
               ) -> tuple[np.ndarray, bool]:
    """A side sequence (1 charge, 0 discharge) for the powers ``ch``, ``dis`` [kW] that keeps
    the hold, and whether it follows them exactly.

    Each interval wants the side its net power points to (rest: no wish). A change is made
    at the earliest interval after the last one of the old side at which the hold allows
    it; where the hold forbids the wished side, the current side is kept (and the sequence
    no longer follows the powers).
    """
    s, n, hold = p.storage, p.n, hold_intervals(p)
    want = np.where(ch > dis + POWER_TOL_KW, 1, np.where(dis > ch + POWER_TOL_KW, 0, -1))
    side = np.zeros(n, dtype=int)
    follows = True
    current = s.direction_initial
    last_change = blocked_intervals(p) - hold if current is not None else -hold
    last_active = -1
    for t in range(n):
        w = int(want[t])
        if w >= 0 and current is None:
            current = w
            side[:t] = w  # the side before the first move is free: no change counted
        elif w >= 0 and w != current:
            earliest = max(last_active + 1, last_change + hold)
            if earliest <= t:
                side[max(earliest, 0):t] = w
                current, last_change = w, max(earliest, 0)
            else:
                follows = False
        if w >= 0:
            last_active = t if w == current else last_active
        side[t] = current if current is not None else 0
    return side, follows


def best_sides(p: DispatchProblem, ch: np.ndarray, dis: np.ndarray) -> np.ndarray:
    """The side sequence that keeps the hold and keeps most of the powers ``ch``, ``dis``
    [kW] on their side (dynamic programming over the side and the intervals since its last
    change): the repair of a plan that reverses too soon."""
    s, n, hold = p.storage, p.n, hold_intervals(p)
    # what an interval gains on each side: its net power that way (power moved both ways at
    # once nets out), a little of its gross power to break ties
    net = np.asarray(dis, dtype=float) - np.asarray(ch, dtype=float)
    gain = np.stack([np.clip(net, 0, None) + 1e-3 * np.asarray(dis, dtype=float),
                     np.clip(-net, 0, None) + 1e-3 * np.asarray(ch, dtype=float)])
    # value[side, c]: best kept power with the last change c intervals ago (c = hold: free)
    value = np.full((2, hold + 1), -np.inf)
    if s.direction_initial is None:
        value[:, hold] = 0.0
    else:
        held = min(hold, math.floor((s.direction_held_h or 0.0) / p.dt_h + 1e-9)
                   if s.direction_held_h is not None else hold)
        value[s.direction_initial, held] = 0.0
    back = np.zeros((n, 2, hold + 1, 2), dtype=np.int64)  # previous (side, c) of each state
    for t in range(n):
        new = np.full((2, hold + 1), -np.inf)
        for side in (0, 1):
            for c in range(hold + 1):
                v = value[side, c]
                if v == -np.inf:
                    continue
                stay = min(c + 1, hold)
                if v + gain[side, t] > new[side, stay]:
                    new[side, stay] = v + gain[side, t]
                    back[t, side, stay] = (side, c)
                if c >= hold:  # the hold allows a change now; it is 1 interval old after t
                    other = 1 - side
                    if v + gain[other, t] > new[other, 1]:
                        new[other, 1] = v + gain[other, t]
                        back[t, other, 1] = (side, c)
        value = new
    side, c = np.unravel_index(int(np.argmax(value)), value.shape)
    out = np.zeros(n, dtype=int)
    for t in range(n - 1, -1, -1):
        out[t] = side
        side, c = back[t, side, c]
    return out


class DirectionHold(Component):
    name = "direction hold"

    def active(self, p: DispatchProblem) -> bool:
        return p.storage is not None and bool(p.storage.min_direction_hold_h)

    def validate(self, p: DispatchProblem) -> list[str]:
        s, out = p.storage, []
        if not 0 < s.min_direction_hold_h <= 24:
            out.append(f"storage.min_direction_hold_h={s.min_direction_hold_h}: allowed "
                       "range [0, 24] h (0: no rule)")
        if s.direction_initial not in (None, 0, 1):
            out.append(f"storage.direction_initial={s.direction_initial}: allowed 1 "
                       "(charging), 0 (discharging) or None (unknown)")
        if s.direction_held_h is not None and not s.direction_held_h >= 0:
            out.append(f"storage.direction_held_h={s.direction_held_h}: allowed range "
                       "[0, inf) h")
        return out

    def structure(self, p: DispatchProblem) -> tuple:
        return (hold_intervals(p),)

    # ------------------------------------------------------------------ arrays
    def columns(self, ctx: Context, w: LPWriter) -> None:
        upper = np.ones(ctx.n)
        upper[:blocked_intervals(ctx.p)] = 0.0
        w.columns("u", ctx.n, 0.0, upper)

    def rows(self, ctx: Context, w: LPWriter) -> None:
        n, t, c, p = ctx.n, ctx.t, w.cols, ctx.p
        z0 = p.storage.direction_initial
        # t = 0 against the side before the horizon (free rows when it is unknown)
        up_lo, down_lo = np.zeros(n), np.zeros(n)
        up_lo[0] = -np.inf if z0 is None else -z0
        down_lo[0] = -np.inf if z0 is None else z0
        w.rows("hold_switch_up", up_lo, np.inf, n,
               [(t, c["u"], 1.0), (t, c["z"], -1.0), (t[1:], c["z"][:-1], 1.0)])
        w.rows("hold_switch_down", down_lo, np.inf, n,
               [(t, c["u"], 1.0), (t, c["z"], 1.0), (t[1:], c["z"][:-1], -1.0)])
        hold = hold_intervals(p)
        rows = np.repeat(t, hold)
        taus = (rows + np.tile(np.arange(hold), n))
        keep = taus < n
        w.rows("hold_window", -np.inf, 1.0, n, [(rows[keep], c["u"][taus[keep]], 1.0)])

    # ------------------------------------------------------------------ Pyomo
    def variables(self, ctx: Context, m: Any) -> None:
        pyo, blocked = pyomo_env(), blocked_intervals(ctx.p)
        m.u = pyo.Var(m.T, bounds=lambda _, t: (0.0, 0.0 if t < blocked else 1.0))

    def constraints(self, ctx: Context, m: Any) -> None:
        pyo, p, n = pyomo_env(), ctx.p, ctx.n
        z0, hold = p.storage.direction_initial, hold_intervals(p)

        def before(m, t):
            return m.z[t - 1] if t > 0 else z0

        def up(m, t):
            if t == 0 and z0 is None:
                return pyo.Constraint.Skip
            return m.u[t] >= m.z[t] - before(m, t)

        def down(m, t):
            if t == 0 and z0 is None:
                return pyo.Constraint.Skip
            return m.u[t] >= before(m, t) - m.z[t]

        m.hold_switch_up = pyo.Constraint(m.T, rule=up)
        m.hold_switch_down = pyo.Constraint(m.T, rule=down)
        m.hold_window = pyo.Constraint(
            m.T, rule=lambda m, t: sum(m.u[tau] for tau in range(t, min(t + hold, n))) <= 1)

    # ------------------------------------------------------------------ integer decisions
    def candidates(self, p: DispatchProblem, cols: SiteCols) -> np.ndarray:
        return cols["z"]

    def repairs(self, p: DispatchProblem, cols: SiteCols, x: np.ndarray,
                ) -> tuple[np.ndarray, np.ndarray]:
        ch, dis = x[cols["ch"]], x[cols["dis"]]
        _, follows = hold_sides(p, ch, dis)
        if follows:  # a side sequence exists (simultaneous flows: the storage part repairs)
            return np.array([], dtype=np.int64), np.array([])
        side = best_sides(p, ch, dis)
        if np.all(np.abs(x[cols["z"]] - side) < 1e-9):  # already fixed to it
            return np.array([], dtype=np.int64), np.array([])
        return cols["z"], side.astype(float)

    def from_hint(self, p: DispatchProblem, cols: SiteCols, hint: Flows,
                  ) -> tuple[np.ndarray, np.ndarray]:
        side = best_sides(p, np.asarray(hint.charge_kw, float),
                          np.asarray(hint.discharge_kw, float))
        return cols["z"], side.astype(float)

    def start(self, p: DispatchProblem, cols: SiteCols, x: np.ndarray,
              ) -> tuple[np.ndarray, np.ndarray]:
        side, _ = hold_sides(p, x[cols["ch"]], x[cols["dis"]])
        return cols["z"], side.astype(float)

    # ------------------------------------------------------------------ results
    def audit(self, p: DispatchProblem, f: Flows, tol: Tolerances) -> list[str]:
        ch = np.where(np.asarray(f.charge_kw, float) > tol.kw, np.asarray(f.charge_kw, float), 0)
        dis = np.where(np.asarray(f.discharge_kw, float) > tol.kw,
                       np.asarray(f.discharge_kw, float), 0)
        side, follows = hold_sides(p, ch, dis)
        if follows:
            return []
        want = np.where(ch > dis, 1, np.where(dis > ch, 0, -1))
        t = int(np.flatnonzero((want >= 0) & (want != side))[0])
        return [f"direction reversed at {p.label(t)} less than "
                f"{p.storage.min_direction_hold_h:g} h after the previous change "
                "(minimum direction hold)"]


COMPONENT = DirectionHold()
