"""What coupling costs each site: every plan solved jointly (feeder re-plans, and with
``--events`` the demand-response fleet) against its own stand-alone plan.

    python bench/coupled_costs.py --dates 2026-07-15,2026-12-01 [--events FILE]

Per jointly solved site: stand-alone and joint objective [yuan], the difference and its
share, and the group's certified gap - the numbers each plan's ``coupling`` carries.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from vpp.catalog import Catalog
from vpp.coupled import plan_vpp
from vpp.network import load_events
from vpp.options import PlanOptions


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dates", default="2026-07-15,2026-12-01")
    ap.add_argument("--events", default=None)
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    cat = Catalog.load()
    events = load_events(args.events) if args.events else None
    print(f"{'day':<10} {'site':<9} {'stand-alone':>13} {'joint':>13} {'above':>10} "
          f"{'share':>8} {'group gap':>9}  reason")
    for d in args.dates.split(","):
        day = plan_vpp(cat, dt.date.fromisoformat(d), PlanOptions(), cat.feeder_caps, events,
                       None, args.jobs)
        for sid, p in day.plans.items():
            c = p.get("coupling")
            if c is None:
                continue
            print(f"{d:<10} {sid:<9} {c['standalone_objective_yuan']:13,.2f} "
                  f"{c['site_objective_yuan']:13,.2f} {c['cost_above_standalone_yuan']:+10.2f} "
                  f"{c['cost_above_standalone_share']:+8.3%} {c['group_optimality_gap']:9.3%}"
                  f"  {c['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
