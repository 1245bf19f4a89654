"""Simulation speed: 30 sites x 24 months of daily re-planning, where the time goes, and the
HiGHS-only floor.

One run, one machine, every number from this run:

* **baseline** (same run): a sample of site-days planned the naive way - a fresh Pyomo model
  per day, handed to HiGHS through Pyomo and solved as the MILP
  (``solve_dispatch(method="milp")``) - and with a fresh array model per day
  (``solve_dispatch``), against the persistent model on the same site-days; the ratios are
  the speed-ups per site-day;
* **the full run**: :func:`vpp.simulation.simulate` for every site over the period on
  ``--jobs`` processes, wall time from start to the last month written;
* **where the CPU time went**, summed over sites: inputs (prices, synthetic weather, pvlib
  PV forecast and actuals, load), model build, updates, HiGHS, realisation and accounting;
* **HiGHS-only floor**: the time inside ``Highs.run`` for exactly the sequence of models
  the simulation solved, divided by the workers;
* the **certified gap** distribution of every daily plan and how each was certified.

* the **closed loop** (``--control mpc``, the default, or ``both``: day-ahead first, then
  mpc, and the ratio of their walls): re-plans per site-day and each re-plan's wall time
  (median, p95, max; the target is p95 <= 50 ms), re-plans not certified within the gap, and
  the wall extrapolated to 24 months when fewer were run.

    python bench/simulation.py [--months 24] [--jobs 2] [--start 2025-01-01]
        [--control mpc|day-ahead|both]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time

import numpy as np

from models import PersistentDispatch, SolveOptions, solve_dispatch
from vpp.catalog import Catalog
from vpp.options import PlanOptions, SimulationOptions
from vpp.planning import build_inputs
from vpp.simulation import simulate

SAMPLE_SITES = ("CZ-MG-01", "CZ-MG-06", "CZ-MG-15", "CZ-MG-25")


def baseline_ratio(cat: Catalog, start: dt.date, days: int = 10,
                   ) -> tuple[float, float, float]:
    """Seconds per site-day (0.5 % gap): fresh Pyomo model + MILP, fresh array model + the
    strategy, persistent update + the strategy."""
    opts = SolveOptions(mip_rel_gap=5e-3)
    naive_opts = SolveOptions(mip_rel_gap=5e-3, method="milp")
    problems = []
    for sid in SAMPLE_SITES:
        site = cat.fleet.site(sid)
        problems.append([build_inputs(cat, site, start + dt.timedelta(days=d),
                                      PlanOptions(mip_rel_gap=5e-3)).problem
                         for d in range(days)])
    per_day = []
    for o in (naive_opts, opts):
        t0 = time.perf_counter()
        for ps in problems:
            for p in ps:
                solve_dispatch(p, o)
        per_day.append((time.perf_counter() - t0) / (days * len(problems)))
    t0 = time.perf_counter()
    for ps in problems:
        solver = PersistentDispatch(ps[0], opts)
        for p in ps:
            solver.solve(p)
    persistent = (time.perf_counter() - t0) / (days * len(problems))
    return per_day[0], per_day[1], persistent


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--start", default="2025-01-01")
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--executor", default="local", choices=["local", "dask"])
    ap.add_argument("--control", default="mpc", choices=["mpc", "day-ahead", "both"])
    ap.add_argument("--skip-baseline", action="store_true",
                    help="skip the per-site-day formulation baseline")
    args = ap.parse_args(argv)
    cat = Catalog.load()
    start = dt.date.fromisoformat(args.start)

    if not args.skip_baseline:
        naive, fresh, persistent = baseline_ratio(cat, dt.date(2025, 7, 1))
        print(f"baseline, per site-day on {len(SAMPLE_SITES)} sites x 10 days: fresh Pyomo "
              f"model + MILP {naive * 1e3:.1f} ms, fresh array model {fresh * 1e3:.1f} ms, "
              f"persistent model {persistent * 1e3:.1f} ms (ratios "
              f"{naive / persistent:.1f}x, {fresh / persistent:.1f}x)")
    walls = {}
    for control in (["day-ahead", "mpc"] if args.control == "both" else [args.control]):
        walls[control] = full_run(cat, args, start, control)
    if len(walls) == 2:
        print(f"\nmpc / day-ahead wall: {walls['mpc'] / walls['day-ahead']:.2f}")


def full_run(cat: Catalog, args: argparse.Namespace, start: dt.date, control: str) -> float:
    """One full run of ``control``; prints its figures and returns its wall [s]."""
    opts = SimulationOptions(start=start, months=args.months, control=control)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = simulate(cat, opts, out=tmp, jobs=args.jobs, executor=args.executor)
        wall = time.perf_counter() - t0
    site_days = int(sum(t.days for t in res.timing.values()))
    parts = {k: sum(getattr(t, k) for t in res.timing.values())
             for k in ("inputs", "build", "update", "highs", "realise", "total")}
    other = parts["total"] - sum(parts[k] for k in ("inputs", "build", "update", "highs",
                                                     "realise"))
    print(f"\n{control}: {len(res.timing)} sites x {args.months} months = {site_days} "
          f"site-days on {args.jobs} {args.executor} workers: wall {wall:.1f} s; failures "
          f"{len(res.failures)}")
    if args.months < 24:
        print(f"  24 months at this pace: {wall * 24 / args.months:.0f} s "
              f"(closed-loop target <= 600 s, stretch 300 s)")
    print("CPU time summed over sites [s]: " + ", ".join(
        f"{k} {v:.1f}" for k, v in parts.items()) + f", other {other:.1f}")
    floor = parts["highs"] / args.jobs
    solves = sum(t.solves for t in res.timing.values())
    print(f"HiGHS-only floor (time inside Highs.run for the same {solves} solves / "
          f"{args.jobs} workers): {floor:.1f} s; wall / floor = {wall / floor:.2f}")
    print(f"per site-day: {parts['total'] / site_days * 1e3:.1f} ms CPU, of which HiGHS "
          f"{parts['highs'] / site_days * 1e3:.1f} ms, update "
          f"{parts['update'] / site_days * 1e3:.2f} ms")
    seconds = np.concatenate([np.asarray(t.replan_seconds, dtype=float)
                              for t in res.timing.values()] or [np.zeros(0)])
    if len(seconds):
        q = np.quantile(seconds, [0.5, 0.95, 1.0]) * 1e3
        print(f"re-plans: {len(seconds)} ({len(seconds) / site_days:.1f} per site-day), "
              f"wall per re-plan median {q[0]:.1f} ms, p95 {q[1]:.1f} ms (target <= 50 ms), "
              f"max {q[2]:.0f} ms; not certified within the gap "
              f"{int(res.months['replans_uncertified'].sum())}, largest gap "
              f"{res.months['gap_max'].max():.2e}")
    d = res.days
    counts = d["method"].value_counts().to_dict()
    q = np.quantile(d["gap"], [0.5, 0.9, 0.99, 1.0])
    print(f"daily plans by certification: {counts}; uncertified (time limit) "
          f"{int(res.months['plans_uncertified'].sum())}")
    print(f"certified gap (vs max(plan cost, day's load at grid prices)): median {q[0]:.2e}, "
          f"p90 {q[1]:.2e}, p99 {q[2]:.2e}, max {q[3]:.2e} (target <= 5.0e-03)")
    tot = res.fleet_totals()
    print(f"fleet: subsidy {tot['subsidy_yuan']:,.0f} yuan, savings {tot['savings_yuan']:,.0f} "
          f"yuan, discharge {tot['discharge_kwh']:,.0f} kWh")
    return wall


if __name__ == "__main__":
    main()
