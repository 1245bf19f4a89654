"""How much a coarser re-plan horizon would buy: the closed loop's re-plans at 15 minutes
against the same horizons at one hour.

Runs a short mpc simulation per site and keeps every re-plan's problem, with the time the
controller took for it, then solves each one again at one hour on its own persistent model
(warm from the previous re-plan, the previous hourly plan moved along as the incumbent hint
when the re-plan starts on a whole hour later, as the controller does with its own):

* **15 min**: the controller's own re-plan (96+ intervals);
* **hourly**: the same horizon in hours - load, PV, prices and subsidy averaged per hour, the
  import limit its hour's lowest, and the hour's highest quarter-hour net load above its mean
  added to the peak margin (a constant set-point over the hour meets the quarter-hour peak).

A blocked horizon (15 minutes for the first hours, hourly after) lies between the two. Times
per re-plan [ms], the hourly/15-minute ratio, the share of re-plans certified only by the
MILP, and how much more the hourly plans cost on their own terms.

    python bench/horizon_resolution.py [--sites CZ-MG-01:2025-07-10,CZ-MG-05:2025-12-10,
        CZ-MG-24:2025-09-10] [--days 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import time

import numpy as np

from models import DispatchProblem, PersistentDispatch, structure_key
from vpp.catalog import default_catalog
from vpp.control import SiteController
from vpp.options import SimulationOptions
from vpp.simulation import simulate_site

PER_HOUR = 4


def _hours(a: np.ndarray, how=np.mean) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    n = len(a) // PER_HOUR * PER_HOUR
    return how(a[:n].reshape(-1, PER_HOUR), axis=1)


def hourly(p: DispatchProblem) -> DispatchProblem:
    """``p`` (15-minute intervals) at one-hour resolution (whole hours of it)."""
    g, net = p.grid, p.load_kw - p.pv_kw
    margin = g.peak_margin_kw
    margin = _hours(margin, np.max) if np.ndim(margin) else np.full(p.n // PER_HOUR, margin)
    limit = g.import_limit_kw
    grid = dataclasses.replace(
        g, peak_margin_kw=margin + _hours(net, np.max) - _hours(net),
        import_limit_kw=_hours(limit, np.min) if np.ndim(limit) else limit)
    first = slice(0, p.n // PER_HOUR * PER_HOUR, PER_HOUR)
    months = p.month_of_interval
    return dataclasses.replace(
        p, dt_h=p.dt_h * PER_HOUR, load_kw=_hours(p.load_kw), pv_kw=_hours(p.pv_kw),
        import_price_yuan_per_kwh=_hours(p.import_price_yuan_per_kwh),
        export_price_yuan_per_kwh=_hours(p.export_price_yuan_per_kwh),
        subsidy_yuan_per_kwh=_hours(p.subsidy_yuan_per_kwh),
        day_of_interval=np.asarray(p.day_of_interval)[first],
        month_of_interval=None if months is None else np.asarray(months)[first],
        grid=grid, interval_labels=None)


@dataclasses.dataclass
class Replan:
    start: int          # the re-plan's first interval (15-minute position)
    problem: DispatchProblem
    gap_floor_yuan: float
    seconds: float      # the controller's time for it
    method: str
    objective_yuan: float


def replans(site: str, start: dt.date, days: int) -> list[Replan]:
    """Every re-plan of a ``days``-day mpc run of ``site``."""
    kept: list[Replan] = []
    original = SiteController.replan

    def keep(self, at, p, gap_floor_yuan):
        t0 = time.perf_counter()
        plan = original(self, at, p, gap_floor_yuan)
        kept.append(Replan(at, p, gap_floor_yuan, time.perf_counter() - t0,
                           plan.result.method, plan.result.objective_yuan))
        return plan

    SiteController.replan = keep
    try:
        simulate_site(default_catalog(), site, SimulationOptions(start=start, days=days))
    finally:
        SiteController.replan = original
    return kept


def solve_hourly(runs: list[Replan], opts) -> list[tuple[float, str, float]]:
    """(seconds, method, objective [yuan]) of each re-plan at one hour, in order."""
    solvers: dict[tuple, PersistentDispatch] = {}
    out, last = [], None
    for run in runs:
        t0 = time.perf_counter()
        p = hourly(run.problem)
        key = structure_key(p)
        if key not in solvers:
            solvers[key] = PersistentDispatch(p, opts)
        hint, shift = None, 0
        if last is not None and (run.start - last[0]) % PER_HOUR == 0:
            shift = (run.start - last[0]) // PER_HOUR
            if 0 < shift < p.n:
                hint = dataclasses.replace(last[1], **{
                    f: np.roll(getattr(last[1], f), -shift) for f in (
                        "grid_import_kw", "grid_export_kw", "charge_kw", "discharge_kw")})
        r = solvers[key].solve(p, strict=False, gap_floor_yuan=run.gap_floor_yuan, hint=hint)
        last = (run.start, r)
        out.append((time.perf_counter() - t0, r.method, r.objective_yuan))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", default="CZ-MG-01:2025-07-10,CZ-MG-05:2025-12-10,"
                                       "CZ-MG-24:2025-09-10")
    ap.add_argument("--days", type=int, default=2)
    args = ap.parse_args()
    opts = SimulationOptions(start=dt.date(2025, 1, 1)).solve_options()
    print("| site | re-plans | 15 min: mean / p95 [ms] | hourly: mean / p95 [ms] | ratio | "
          "MILP 15 min / hourly | hourly plan cost, median [%] |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for item in args.sites.split(","):
        site, day = item.split(":")
        runs = replans(site, dt.date.fromisoformat(day), args.days)
        fine = [(r.seconds, r.method, r.objective_yuan) for r in runs]
        coarse = solve_hourly(runs, opts)
        tf, tc = (np.array([r[0] for r in rs]) * 1e3 for rs in (fine, coarse))
        more = [100 * (c[2] - f[2]) / abs(f[2]) for f, c in zip(fine, coarse, strict=True)
                if f[2]]
        milp = (sum(r[1] == "milp" for r in fine), sum(r[1] == "milp" for r in coarse))
        print(f"| {site} | {len(runs)} | {tf.mean():.0f} / {np.percentile(tf, 95):.0f} | "
              f"{tc.mean():.0f} / {np.percentile(tc, 95):.0f} | {tf.mean() / tc.mean():.1f}× | "
              f"{milp[0]} / {milp[1]} | {np.median(more):+.2f} |", flush=True)


if __name__ == "__main__":
    main()
