"""Fleet day-ahead speed: where the time goes, against HiGHS alone on the same models.

One run, one machine, every number from this run:

* **inputs**: forecasts (pvlib PV P10/P50/P90, load), prices, subsidy rates per site;
* **solve**: :func:`models.dispatch.solve_dispatch` per site (Pyomo build, HiGHS calls,
  direction repair), with HiGHS's own time reported by the solver interface;
* **extract**: the plan documents;
* **HiGHS alone**: every site's LP relaxation exported to MPS and solved by ``highspy``
  directly - the floor any Pyomo-based path is compared with;
* **fleet wall**: ``plan_vpp`` as the CLI runs it (processes, feeders), and with ``--events``
  the demand-response joint solve.

    python bench/fleet.py --date 2026-07-15 [--events docs/events-example.json] [--jobs 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time

import highspy

from models.dispatch import build_model, solve_dispatch
from vpp.catalog import Catalog
from vpp.coupled import plan_vpp
from vpp.network import load_events
from vpp.planning import PlanOptions, build_inputs, describe_plan


def highs_alone(model, path: str) -> float:
    """Seconds highspy needs for a model written to MPS (read time excluded)."""
    model.write(path, io_options={"symbolic_solver_labels": False})
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.readModel(path)
    t0 = time.perf_counter()
    h.run()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--date", default="2026-07-15")
    ap.add_argument("--events", default=None)
    ap.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    args = ap.parse_args(argv)
    day = dt.date.fromisoformat(args.date)
    cat = Catalog.load()
    opts = PlanOptions()
    t_in = t_solve = t_highs = t_extract = t_alone = 0.0
    methods: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for site in cat.fleet.sites:
            t0 = time.perf_counter()
            si = build_inputs(cat, site, day, opts)
            t1 = time.perf_counter()
            r = solve_dispatch(si.problem, opts.solve_options())
            t2 = time.perf_counter()
            describe_plan(cat, si, r, opts)
            t3 = time.perf_counter()
            t_in += t1 - t0
            t_solve += t2 - t1
            t_extract += t3 - t2
            t_highs += r.highs_seconds
            methods[r.method] = methods.get(r.method, 0) + 1
            t_alone += highs_alone(build_model(si.problem), os.path.join(tmp, "m.mps"))
    print(f"fleet {args.date}, 30 sites, one process:")
    print(f"  inputs (forecasts, prices)      {t_in:7.2f} s")
    print(f"  solve_dispatch (all stages)     {t_solve:7.2f} s   methods {methods}")
    print(f"    of which HiGHS (in-process)   {t_highs:7.2f} s")
    print(f"    of which not HiGHS            {t_solve - t_highs:7.2f} s   "
          f"= {(t_solve - t_highs) / t_highs:.0%} of HiGHS (target <= 50 %)")
    print(f"  extract (plan documents)        {t_extract:7.2f} s")
    print(f"  HiGHS alone, LP relaxations     {t_alone:7.2f} s   (MPS + highspy)")
    t0 = time.perf_counter()
    plan_vpp(cat, day, opts, cat.feeder_caps, None, None, args.jobs)
    wall = time.perf_counter() - t0
    print(f"fleet wall, plan_vpp on {args.jobs} process(es), feeders: {wall:.2f} s "
          "(target <= 2.0 s)")
    if args.events:
        t0 = time.perf_counter()
        d = plan_vpp(cat, day, opts, cat.feeder_caps, load_events(args.events), None,
                     args.jobs)
        wall = time.perf_counter() - t0
        print(f"with events: {wall:.2f} s (target <= 4.0 s); joint model build "
              f"{d.timings['events_build_s']:.2f} s, solve {d.timings['events_solve_s']:.2f} s"
              f" of which HiGHS {d.timings['events_highs_s']:.2f} s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
