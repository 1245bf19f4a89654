"""The site formulation of :func:`models.dispatch.populate` as arrays, built with numpy.

:func:`models.dispatch.populate` is the formulation of record, written in Pyomo. Building it
costs ≈30 ms per site-day and handing it to HiGHS through Pyomo's persistent interface another
≈60 ms - more than HiGHS needs to solve it. :func:`site_lp` writes the *same* linear program
(the same variables, constraints, bounds, costs and objective offset; ``tests/test_lp.py``
compares the two coefficient by coefficient on every pilot site and on edge cases) directly
as column bounds, costs, row bounds and a coordinate-format matrix, in well under a
millisecond. :mod:`models.certified` solves it with ``highspy``.

Columns of one site (``n`` intervals, ``F`` shiftable-load intervals), in this order::

    pv_used[n] imp[n] exp[n] y[n] peak flex[F] | ch[n] dis[n] soc[n] z[n] | excess

(the storage group only with a battery, ``excess`` only with a billed contract demand).
Rows, each named as in the Pyomo model (``power_balance[t]`` ...), are listed in
:func:`site_lp`. The matrix *pattern* depends only on the structure
(:func:`models.persistent.structure_key`); a big-M that is zero stays in the pattern with the
value 0, so two days of one site differ in values only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from models.dispatch import CONTRACT_TOLERANCE, DispatchProblem, _flow_bounds

INF = float("inf")


@dataclass
class SiteCols:
    """Column indices of one site's variable families (one per interval unless noted)."""

    pv: np.ndarray
    imp: np.ndarray
    exp: np.ndarray
    y: np.ndarray
    peak: int
    flex: np.ndarray  # one per (load k, interval t) in ``flex_kt``
    flex_kt: np.ndarray  # shape (F, 2)
    ch: np.ndarray | None = None
    dis: np.ndarray | None = None
    soc: np.ndarray | None = None
    z: np.ndarray | None = None
    excess: int | None = None

    def shifted(self, offset: int) -> SiteCols:
        """The same columns ``offset`` further on (a block of a larger model)."""

        def sh(a):
            return None if a is None else a + offset

        return SiteCols(
            pv=self.pv + offset, imp=self.imp + offset, exp=self.exp + offset,
            y=self.y + offset, peak=self.peak + offset, flex=self.flex + offset,
            flex_kt=self.flex_kt, ch=sh(self.ch), dis=sh(self.dis), soc=sh(self.soc),
            z=sh(self.z), excess=sh(self.excess))

    @property
    def directions(self) -> np.ndarray:
        """The direction columns ``y`` (grid) and ``z`` (storage)."""
        return self.y if self.z is None else np.concatenate([self.y, self.z])

    @property
    def demand(self) -> np.ndarray:
        """The columns carrying the demand charge (``peak`` and ``excess``)."""
        return np.array([self.peak] + ([self.excess] if self.excess is not None else []),
                        dtype=np.int32)


@dataclass
class SiteLP:
    """One site's linear program: ``min cost·x + offset`` s.t. ``row_lower <= A x <=
    row_upper``, ``col_lower <= x <= col_upper``; ``A`` as triplets ``(a_row, a_col,
    a_val)``. Money in yuan, powers in kW, energy in kWh."""

    cols: SiteCols
    col_lower: np.ndarray
    col_upper: np.ndarray
    cost: np.ndarray
    offset: float
    row_lower: np.ndarray
    row_upper: np.ndarray
    a_row: np.ndarray
    a_col: np.ndarray
    a_val: np.ndarray
    #: (constraint name, first row, row count, index labels or None for a scalar constraint)
    row_groups: list[tuple[str, int, int, Sequence | None]] = field(default_factory=list)

    @property
    def num_col(self) -> int:
        return len(self.cost)

    @property
    def num_row(self) -> int:
        return len(self.row_lower)

    def col_names(self, p: DispatchProblem) -> list[str]:
        """Names of the columns as Pyomo names the variables (``imp[3]``, ``flex[0,40]``)."""
        c, n = self.cols, p.n
        names = [""] * self.num_col
        fams = [("pv_used", c.pv), ("imp", c.imp), ("exp", c.exp), ("y", c.y)]
        if c.ch is not None:
            fams += [("ch", c.ch), ("dis", c.dis), ("soc", c.soc), ("z", c.z)]
        for name, idx in fams:
            for t in range(n):
                names[idx[t]] = f"{name}[{t}]"
        names[c.peak] = "peak"
        if c.excess is not None:
            names[c.excess] = "excess"
        for (k, t), j in zip(c.flex_kt, c.flex, strict=True):
            names[j] = f"flex[{k},{t}]"
        return names

    def row_names(self) -> list[str]:
        """Names of the rows as Pyomo names the constraints (``power_balance[3]``)."""
        out = []
        for name, _first, _count, labels in self.row_groups:
            out += [name] if labels is None else [f"{name}[{i}]" for i in labels]
        return out


def site_lp(p: DispatchProblem) -> SiteLP:
    """The linear program of :func:`models.dispatch.populate` for ``p`` (directions
    continuous in [0, 1])."""
    n, dt, g, s = p.n, p.dt_h, p.grid, p.storage
    hi = _flow_bounds(p)
    load = np.asarray(p.load_kw, dtype=float)
    pv = np.asarray(p.pv_kw, dtype=float)
    t = np.arange(n)
    # ---- columns
    kt = np.array([(k, tt) for k, sh in enumerate(p.shiftable) for tt in range(sh.start, sh.end)],
                  dtype=np.int64).reshape(-1, 2)
    nf = len(kt)
    c_pv, c_imp, c_exp, c_y = t, n + t, 2 * n + t, 3 * n + t
    c_peak = 4 * n
    c_flex = 4 * n + 1 + np.arange(nf)
    ncol = 4 * n + 1 + nf
    cols = SiteCols(pv=c_pv, imp=c_imp, exp=c_exp, y=c_y, peak=c_peak, flex=c_flex, flex_kt=kt)
    if s is not None:
        cols.ch, cols.dis, cols.soc, cols.z = (ncol + t, ncol + n + t, ncol + 2 * n + t,
                                               ncol + 3 * n + t)
        ncol += 4 * n
    rate = g.demand_rate_yuan_per_kw_month
    has_excess = g.contract_demand_kw is not None and rate > 0
    excess_so_far = 0.0
    if has_excess:
        threshold = CONTRACT_TOLERANCE * g.contract_demand_kw
        excess_so_far = max(0.0, g.month_peak_kw - threshold)
        cols.excess = ncol
        ncol += 1
    lo, up, cost = np.zeros(ncol), np.zeros(ncol), np.zeros(ncol)
    up[c_pv], up[c_imp], up[c_exp], up[c_y] = pv, hi["imp"], hi["exp"], 1.0
    lo[c_peak], up[c_peak], cost[c_peak] = g.month_peak_kw, INF, rate
    if nf:
        shl = p.shiftable
        lo[c_flex] = [shl[k].p_min_kw for k in kt[:, 0]]
        up[c_flex] = [shl[k].p_max_kw for k in kt[:, 0]]
    cost[c_imp] = dt * np.asarray(p.import_price_yuan_per_kwh, dtype=float)
    cost[c_exp] = -dt * np.asarray(p.export_price_yuan_per_kwh, dtype=float)
    offset = -rate * g.month_peak_kw
    if s is not None:
        up[cols.ch], up[cols.dis] = hi["ch"], hi["dis"]
        lo[cols.soc], up[cols.soc] = s.soc_min_kwh, s.soc_max_kwh
        up[cols.z] = 1.0
        cost[cols.dis] = dt * (s.degradation_yuan_per_kwh
                               - np.asarray(p.subsidy_yuan_per_kwh, dtype=float))
    if has_excess:
        lo[cols.excess], up[cols.excess], cost[cols.excess] = excess_so_far, INF, rate
        offset -= rate * excess_so_far

    # ---- rows: (name, lower, upper, [(row offsets within group, columns, values)])
    rl: list[np.ndarray] = []
    ru: list[np.ndarray] = []
    ar: list[np.ndarray] = []
    ac: list[np.ndarray] = []
    av: list[np.ndarray] = []
    groups: list[tuple[str, int, int, Sequence | None]] = []
    nrow = 0

    def full(v, k: int, dtype) -> np.ndarray:
        return np.full(k, v, dtype=dtype) if np.isscalar(v) else np.asarray(v, dtype=dtype)

    def group(name: str, lower, upper, count: int, terms, labels=range) -> None:
        nonlocal nrow
        rl.append(full(lower, count, float))
        ru.append(full(upper, count, float))
        for r, c, v in terms:
            r = np.asarray(r, dtype=np.int64)
            ar.append(nrow + r)
            ac.append(full(c, len(r), np.int64))
            av.append(full(v, len(r), float))
        groups.append((name, nrow, count, range(count) if labels is range else labels))
        nrow += count

    bal = [(t, c_pv, 1.0), (t, c_imp, 1.0), (t, c_exp, -1.0)]
    if nf:
        bal.append((kt[:, 1], c_flex, -1.0))
    if s is not None:
        bal += [(t, cols.dis, 1.0), (t, cols.ch, -1.0)]
    group("power_balance", load, load, n, bal)
    group("import_direction", -INF, 0.0, n, [(t, c_imp, 1.0), (t, c_y, -hi["imp"])])
    group("export_direction", -INF, hi["exp"], n, [(t, c_exp, 1.0), (t, c_y, hi["exp"])])
    group("peak_demand", 0.0, INF, n, [(t, c_peak, 1.0), (t, c_imp, -1.0)])
    src = [(t, c_exp, 1.0), (t, c_pv, -1.0), (t, c_y, -load)]
    if s is not None:
        src.append((t, cols.dis, -1.0))
    group("export_source", -INF, -load, n, src)
    if has_excess:
        group("contract_excess", -threshold, INF, 1,
              [([0], cols.excess, 1.0), ([0], c_peak, -1.0)], labels=None)
    energy = np.array([sh.energy_kwh for sh in p.shiftable], dtype=float)
    group("shift_energy", energy, energy, len(p.shiftable), [(kt[:, 0], c_flex, dt)])
    if s is not None:
        rhs = np.zeros(n)
        rhs[0] = s.soc_initial_kwh
        group("soc_recursion", rhs, rhs, n, [
            (t, cols.soc, 1.0), (t[1:], cols.soc[:-1], -1.0),
            (t, cols.ch, -dt * s.eta_charge), (t, cols.dis, dt / s.eta_discharge)])
        group("soc_terminal", s.terminal_min_kwh, INF, 1, [([0], cols.soc[n - 1], 1.0)],
              labels=None)
        group("charge_direction", -INF, 0.0, n, [(t, cols.ch, 1.0), (t, cols.z, -hi["ch"])])
        group("discharge_direction", -INF, hi["dis"], n,
              [(t, cols.dis, 1.0), (t, cols.z, hi["dis"])])
        if s.max_cycles_per_day is not None:
            days, which = np.unique(np.asarray(p.day_of_interval, dtype=np.int64),
                                    return_inverse=True)
            cap = s.max_cycles_per_day * s.energy_kwh
            group("daily_cycles", -INF, cap, len(days), [(which, cols.dis, dt)],
                  labels=days.tolist())
    return SiteLP(
        cols=cols, col_lower=lo, col_upper=up, cost=cost, offset=float(offset),
        row_lower=np.concatenate(rl), row_upper=np.concatenate(ru),
        a_row=np.concatenate(ar), a_col=np.concatenate(ac), a_val=np.concatenate(av),
        row_groups=groups)
