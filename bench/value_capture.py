"""Value capture of closed-loop control: realised savings against perfect foresight.

One run, the shipped error model and seeds, for each site (default the issue's three) over
``--months`` from ``--start``:

* **mpc**: the default operation (:mod:`vpp.control`, re-plans hourly and on deviations,
  peak margin), on forecasts; with ``compare_perfect`` for the per-day comparator below;
* **day-ahead**: one plan a day followed by the real-time rule (the operation before the
  closed loop), with ``compare_perfect``;
* **perfect**: the same closed loop fed the actual PV and load as its forecasts, from its own
  state throughout - what perfect forecasts would have saved.

Savings = net cost without storage - net cost [yuan] (energy, demand charge, wear, subsidy).
**Value capture** = savings(mpc) / savings(perfect). Beside it: the demand-charge cut
(1 - demand charge / demand charge without storage) of each run, and the per-day comparator
the simulation reports with ``--compare-perfect`` (each day re-planned on actual data from
the *operated run's* morning state, summed): that one moves with the run it is computed on
(a month peak set high early leaves later days' comparator free of demand charge), so it is
shown for both runs but is not the target's denominator.

``--scales 1,1.5,2`` repeats mpc and perfect with every forecast-error standard deviation of
the error model multiplied (larger errors also move the synthetic actual load, hence perfect
is re-run for each scale).

Runs are kept in ``--out`` (an interrupted bench resumes).

    python bench/value_capture.py [--sites CZ-MG-01,CZ-MG-05,CZ-MG-24] [--months 12]
        [--start 2025-07-01] [--scales 1,1.5,2] [--jobs 2] [--out bench-value]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import time
from pathlib import Path

import pandas as pd

from forecasts.synthetic import ErrorModel, load_error_model
from vpp.catalog import Catalog
from vpp.options import SimulationOptions
from vpp.simulation import simulate

SIGMAS = ("pv_daily_sigma", "pv_intraday_sigma", "load_daily_sigma", "load_intraday_sigma")


def scaled(errors: ErrorModel, k: float) -> ErrorModel:
    """``errors`` with every forecast-error standard deviation multiplied by ``k``."""
    return dataclasses.replace(errors, source=f"{errors.source} (forecast errors x{k:g})",
                               **{s: getattr(errors, s) * k for s in SIGMAS})


def totals(months: pd.DataFrame) -> pd.DataFrame:
    """Per site: savings, demand-charge cut and the per-day comparator's savings [yuan]."""
    g = months.groupby("site_id")
    base = g["net_cost_without_storage_yuan"].sum()
    out = pd.DataFrame({
        "savings_yuan": base - g["net_cost_yuan"].sum(),
        "demand_cut": 1.0 - g["demand_charge_yuan"].sum()
        / g["demand_charge_without_storage_yuan"].sum(),
        "demand_saving_yuan": g["demand_charge_without_storage_yuan"].sum()
        - g["demand_charge_yuan"].sum(),
        "per_day_perfect_savings_yuan": base - g["perfect_net_cost_yuan"].sum(min_count=1),
        "months": g.size(),
    })
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", default="CZ-MG-01,CZ-MG-05,CZ-MG-24")
    ap.add_argument("--start", default="2025-07-01")
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--scales", default="1")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="bench-value")
    a = ap.parse_args()
    cat = Catalog.load()
    ids = a.sites.split(",")
    base = SimulationOptions(start=dt.date.fromisoformat(a.start), months=a.months)
    shipped = load_error_model()
    out = Path(a.out)
    runs: dict[tuple[str, float], pd.DataFrame] = {}
    walls: dict[tuple[str, float], float] = {}

    def run(name: str, k: float, opts: SimulationOptions) -> None:
        t0 = time.perf_counter()
        res = simulate(cat, opts, ids, errors=scaled(shipped, k), jobs=a.jobs,
                       out=out / f"{name}-x{k:g}")
        if res.failures:
            raise SystemExit(f"{name} x{k:g}: {res.failures}")
        runs[(name, k)] = totals(res.months)
        walls[(name, k)] = time.perf_counter() - t0
        print(f"  {name} x{k:g}: {walls[(name, k)]:.0f} s", flush=True)

    scales = [float(s) for s in a.scales.split(",")]
    for k in scales:
        run("mpc", k, base.model_copy(update={"compare_perfect": k == 1.0}))
        run("perfect", k, base.model_copy(update={"foresight": "perfect"}))
        if k == 1.0:
            run("day-ahead", k, base.model_copy(update={"control": "day-ahead",
                                                        "compare_perfect": True}))

    print(f"\nValue capture, {a.months} months from {a.start}, shipped error model "
          f"({shipped.source}), seed {base.seed}\n")
    for k in scales:
        mpc, pf = runs[("mpc", k)], runs[("perfect", k)]
        da = runs.get(("day-ahead", k))
        print(f"forecast errors x{k:g}:\n")
        head = "| site | savings mpc [yuan] | savings perfect [yuan] | **capture mpc** |"
        rule = "|---|---:|---:|---:|"
        if da is not None:
            head += (" savings day-ahead [yuan] | capture day-ahead | demand cut mpc / "
                     "day-ahead / perfect | per-day comparator capture mpc / day-ahead |")
            rule += "---:|---:|---:|---:|"
        else:
            head += " demand cut mpc / perfect |"
            rule += "---:|"
        print(head + "\n" + rule)
        for sid in ids:
            m, p = mpc.loc[sid], pf.loc[sid]
            line = (f"| {sid} | {m.savings_yuan:,.0f} | {p.savings_yuan:,.0f} | "
                    f"**{m.savings_yuan / p.savings_yuan:.3f}** |")
            if da is not None:
                d = da.loc[sid]
                line += (f" {d.savings_yuan:,.0f} | {d.savings_yuan / p.savings_yuan:.3f} | "
                         f"{m.demand_cut:.1%} / {d.demand_cut:.1%} / {p.demand_cut:.1%} | "
                         f"{m.savings_yuan / m.per_day_perfect_savings_yuan:.3f} / "
                         f"{d.savings_yuan / d.per_day_perfect_savings_yuan:.3f} |")
            else:
                line += f" {m.demand_cut:.1%} / {p.demand_cut:.1%} |"
            print(line)
        print()
    print("wall [s]: " + ", ".join(f"{n} x{k:g} {w:.0f}" for (n, k), w in walls.items()))


if __name__ == "__main__":
    main()
