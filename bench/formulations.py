"""Single-site dispatch formulations compared on the 30 pilot sites, in one run.

For every site-day it solves the same problem four ways and reports wall time, HiGHS time and
the certified gap:

* ``lp``     the LP relaxation alone (a lower bound; *not* a valid plan when it charges and
             discharges, or imports and exports, in the same interval) - the speed floor;
* ``auto``   the shipped method: LP, direction repair, MILP only when the gap demands it;
* ``milp``   binaries on candidate intervals, straight to the MILP;
* ``milp-all`` per-interval binaries on every interval (the textbook formulation) - baseline.

Ratios are against ``milp-all`` measured in the same run, so machine noise cancels.

    python bench/formulations.py --date 2026-07-15 [--sites CZ-MG-01,CZ-MG-10] [--gap 1e-3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time

import pyomo.environ as pyo
from pyomo.contrib.solver.common.factory import SolverFactory

from models import SolveOptions, solve_dispatch
from models.site import build_model
from vpp.catalog import Catalog
from vpp.options import PlanOptions
from vpp.planning import build_inputs


def highs_run(m: pyo.ConcreteModel, gap: float) -> tuple[float, float, float]:
    opt = SolverFactory("highs")
    t0 = time.perf_counter()
    res = opt.solve(m, load_solutions=False, raise_exception_on_nonoptimal_result=False,
                    rel_gap=gap, time_limit=600, solver_options={"output_flag": False})
    return time.perf_counter() - t0, float(res.timing_info.highs_time), res.incumbent_objective


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--date", default="2026-07-15")
    ap.add_argument("--sites", default=None, help="comma-separated ids (default: all 30)")
    ap.add_argument("--gap", type=float, default=1e-3)
    ap.add_argument("--skip-all-binaries", action="store_true",
                    help="skip the slow milp-all baseline")
    args = ap.parse_args(argv)
    cat = Catalog.load()
    day = dt.date.fromisoformat(args.date)
    ids = args.sites.split(",") if args.sites else [s.id for s in cat.fleet.sites]
    rows = []
    print(f"{'site':<9} {'lp [s]':>7} {'auto [s]':>8} {'method':>9} {'gap':>8} "
          f"{'milp [s]':>8} {'milp-all [s]':>12} {'auto obj':>12} {'all obj':>12}",
          file=sys.stderr)
    for sid in ids:
        si = build_inputs(cat, cat.fleet.site(sid), day, PlanOptions())
        p = si.problem
        lp_wall, _, lp_obj = highs_run(build_model(p), args.gap)
        t0 = time.perf_counter()
        auto = solve_dispatch(p, SolveOptions(mip_rel_gap=args.gap))
        auto_wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        milp = solve_dispatch(p, SolveOptions(mip_rel_gap=args.gap, method="milp"))
        milp_wall = time.perf_counter() - t0
        all_wall, all_obj = float("nan"), float("nan")
        if not args.skip_all_binaries:
            m = build_model(p)
            for t in range(p.n):
                m.y[t].domain = pyo.Binary
                if p.storage is not None:
                    m.z[t].domain = pyo.Binary
            all_wall, _, all_obj = highs_run(m, args.gap)
        rows.append((sid, lp_wall, auto_wall, auto.method, auto.optimality_gap, milp_wall,
                     all_wall, auto.objective_yuan, all_obj, lp_obj, milp.objective_yuan))
        print(f"{sid:<9} {lp_wall:7.3f} {auto_wall:8.3f} {auto.method:>9} "
              f"{auto.optimality_gap:8.2e} {milp_wall:8.3f} {all_wall:12.3f} "
              f"{auto.objective_yuan:12.2f} {all_obj:12.2f}", file=sys.stderr)
    tot = {k: sum(r[i] for r in rows) for k, i in
           (("lp", 1), ("auto", 2), ("milp", 5), ("milp-all", 6))}
    gaps = [r[4] for r in rows]
    methods = {m: sum(r[3] == m for r in rows) for m in ("lp", "lp+repair", "milp")}
    print(f"\n{len(rows)} site-days on {args.date}, required gap {args.gap:.2%}")
    print(f"total wall [s]: lp {tot['lp']:.2f} (bound only), auto {tot['auto']:.2f}, "
          f"milp {tot['milp']:.2f}, milp-all {tot['milp-all']:.2f}")
    if not args.skip_all_binaries:
        print(f"ratio to milp-all: auto {tot['auto'] / tot['milp-all']:.3f}, "
              f"milp {tot['milp'] / tot['milp-all']:.3f}, lp {tot['lp'] / tot['milp-all']:.3f}")
    print(f"auto methods: {methods}; certified gap median {statistics.median(gaps):.2e}, "
          f"max {max(gaps):.2e}")
    worst = max(rows, key=lambda r: r[2])
    print(f"slowest auto: {worst[0]} {worst[2]:.2f} s ({worst[3]})")
    diffs = [abs(r[7] - r[10]) / abs(r[10]) for r in rows]
    print(f"largest relative difference of auto and milp objectives: {max(diffs):.2e} "
          f"(both certified within {args.gap:.2%})")


if __name__ == "__main__":
    main()
