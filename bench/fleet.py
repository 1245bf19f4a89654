"""Fleet day-ahead speed: where the time goes, against HiGHS alone on the same models.

One run, one machine, every number from this run:

* **one process**, the 30 sites one after another: inputs (forecasts, prices), model build
  (:func:`models.site.site_lp` + hand-over to HiGHS), HiGHS (time inside ``Highs.run``), the
  rest of the solve (bound/cost updates, repair bookkeeping), extraction (plan documents);
* **HiGHS alone on the identical models**: every HiGHS run of every plan (LP relaxation,
  repair LPs, MILP) written to MPS as it was about to run, read into a fresh ``highspy``
  instance and solved cold - the issue's reference for "not HiGHS";
* **baseline**, same run: the naive path - each site's Pyomo model built and handed to HiGHS
  through Pyomo's persistent interface, its LP relaxation solved (no repair, no MILP);
* **fleet wall**: ``plan_vpp`` as the CLI runs it (processes, feeder re-plans), and with
  ``--events`` the demand-response joint solve, with build, solve and extraction separately.

    python bench/fleet.py --date 2026-07-15 [--events docs/events-example.json] [--jobs 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time

import models.certified as certified
from models import PersistentDispatch, SolveOptions
from models.reference import HighsRun
from models.site import build_model
from vpp.catalog import Catalog
from vpp.coupled import plan_vpp
from vpp.network import load_events
from vpp.options import PlanOptions
from vpp.planning import build_inputs, describe_plan


def serial(cat: Catalog, day: dt.date, opts: PlanOptions,
           ) -> tuple[dict[str, float], dict[str, int]]:
    """The 30 plans in this process: seconds per phase, plans per method."""
    t = dict.fromkeys(("inputs", "build", "highs", "solve", "extract"), 0.0)
    methods: dict[str, int] = {}
    for site in cat.fleet.sites:
        t0 = time.perf_counter()
        si = build_inputs(cat, site, day, opts)
        t1 = time.perf_counter()
        solver = PersistentDispatch(si.problem, opts.solve_options())
        t2 = time.perf_counter()
        sol = solver.solve(si.problem)
        t3 = time.perf_counter()
        describe_plan(cat, si, sol, opts)
        t4 = time.perf_counter()
        t["inputs"] += t1 - t0
        t["build"] += t2 - t1
        t["solve"] += t3 - t2
        t["highs"] += sol.highs_seconds
        t["extract"] += t4 - t3
        methods[sol.method] = methods.get(sol.method, 0) + 1
    return t, methods


def highs_alone(cat: Catalog, day: dt.date, opts: PlanOptions, tmp: str) -> tuple[float, int]:
    """Seconds a fresh highspy needs for every HiGHS run of the 30 plans, read from MPS."""
    files: list[str] = []
    run = certified.BlockModel._run

    def capture(self, stats):
        path = os.path.join(tmp, f"m{len(files)}.mps")
        self.h.writeModel(path)
        files.append(path)
        return run(self, stats)

    certified.BlockModel._run = capture
    try:
        for site in cat.fleet.sites:
            si = build_inputs(cat, site, day, opts)
            PersistentDispatch(si.problem, opts.solve_options()).solve(si.problem)
    finally:
        certified.BlockModel._run = run
    total = 0.0
    for path in files:
        h = certified.new_highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
        h.setOptionValue("mip_rel_gap", opts.mip_rel_gap)
        h.readModel(path)
        t0 = time.perf_counter()
        h.run()
        total += time.perf_counter() - t0
    return total, len(files)


def baseline(cat: Catalog, day: dt.date, opts: PlanOptions) -> tuple[float, float]:
    """Naive Pyomo path: build + persistent hand-over + LP relaxation per site; (wall, HiGHS)."""
    inputs = [build_inputs(cat, s, day, opts).problem for s in cat.fleet.sites]
    so = SolveOptions(threads=1)
    t0 = time.perf_counter()
    highs = 0.0
    for p in inputs:
        hs = HighsRun(build_model(p), so)
        hs.run()
        highs += hs.highs_seconds
    return time.perf_counter() - t0, highs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--date", default="2026-07-15")
    ap.add_argument("--events", default=None)
    ap.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--repeat", type=int, default=3, help="fleet wall runs (median shown)")
    args = ap.parse_args(argv)
    day = dt.date.fromisoformat(args.date)
    cat = Catalog.load()
    opts = PlanOptions()
    s, methods = serial(cat, day, opts)
    rest = s["solve"] - s["highs"]
    not_highs = s["build"] + rest + s["extract"]
    with tempfile.TemporaryDirectory() as tmp:
        alone, runs = highs_alone(cat, day, opts, tmp)
    base_wall, base_highs = baseline(cat, day, opts)
    print(f"fleet {args.date}, 30 sites x 96 intervals, one process:")
    print(f"  inputs (forecasts, prices)       {s['inputs']:6.2f} s")
    print(f"  model build (arrays -> HiGHS)    {s['build']:6.2f} s")
    print(f"  HiGHS (inside Highs.run)         {s['highs']:6.2f} s   methods {methods}")
    print(f"  updates, repair bookkeeping      {rest:6.2f} s")
    print(f"  extraction (plan documents)      {s['extract']:6.2f} s")
    print(f"  not HiGHS (build+rest+extract)   {not_highs:6.2f} s = {not_highs / s['highs']:.0%} "
          f"of HiGHS in-process, {not_highs / alone:.0%} of HiGHS alone (target <= 50 %)")
    print(f"  HiGHS alone, the same {runs} runs from MPS, cold: {alone:.2f} s")
    print(f"  baseline (Pyomo build + hand-over + LP relaxation only): {base_wall:.2f} s, "
          f"of which HiGHS {base_highs:.2f} s")
    walls = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        d = plan_vpp(cat, day, opts, cat.feeder_caps, None, None, args.jobs)
        walls.append(time.perf_counter() - t0)
    wall = statistics.median(walls)
    print(f"fleet wall, plan_vpp on {args.jobs} process(es) incl. forecasts and feeder re-plans: "
          f"median {wall:.2f} s of {', '.join(f'{w:.2f}' for w in walls)} (target <= 2.0 s, "
          f"stretch 1.0 s); {wall / base_wall:.2f} x the baseline; independent "
          f"{d.timings['independent_s']:.2f} s, feeders {d.timings['feeders_s']:.2f} s")
    if args.events:
        events = load_events(args.events)
        walls, runs_ = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            d = plan_vpp(cat, day, opts, cat.feeder_caps, events, None, args.jobs)
            walls.append(time.perf_counter() - t0)
            runs_.append(d.timings)
        wall = statistics.median(walls)
        tm = runs_[walls.index(wall)]
        print(f"with events: median {wall:.2f} s of {', '.join(f'{w:.2f}' for w in walls)} "
              f"(target <= 4.0 s); {wall / base_wall:.2f} x the baseline; the DR joint model "
              f"(30 sites): build {tm['events_build_s']:.2f} s, solve "
              f"{tm['events_solve_s']:.2f} s of which HiGHS {tm['events_highs_s']:.2f} s, "
              f"extraction {tm['events_extract_s']:.2f} s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
