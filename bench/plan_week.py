"""Week-long plans of every pilot site: gap reached and wall time, this tree against a base
revision, in one run on one machine.

Each site's horizon (``--days`` from ``--date``) is planned with the certified strategy
(:class:`models.certified.BlockModel`, the path of ``vpp plan``) by two worker processes: one
importing this tree, one importing the base revision (``git archive`` of ``--base`` into a
temporary folder; no worktree is touched). The parent sends them the sites one at a time,
alternating, so both see the same machine load. Per site: method, certified gap and wall
time [s] of the solve (the model build included, the forecasts not), and whether the gap is
within ``--gap`` (certified) in ``--budget`` seconds.

The base's ``time_limit_s`` is the limit of each HiGHS call (it may run several); this
tree's is the budget of the whole solve. Both are given ``--budget``.

    python bench/plan_week.py --date 2026-07-13 --days 7 --budget 10 [--base REV]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r'''
import datetime as dt, json, sys, time
sys.path.insert(0, {root!r})
import models.certified as certified
from models import SolveOptions
from vpp.catalog import Catalog
from vpp.options import PlanOptions
from vpp.planning import build_inputs
assert certified.__file__.startswith({root!r}), certified.__file__
cat = Catalog.load()
day, days = dt.date.fromisoformat({date!r}), {days}
opts = SolveOptions(mip_rel_gap={gap}, time_limit_s={budget})
print("ready", flush=True)
for line in sys.stdin:
    site = line.strip()
    si = build_inputs(cat, cat.fleet.site(site), day, PlanOptions(days=days))
    t0 = time.perf_counter()
    try:
        c = certified.BlockModel([si.problem], opts).solve(strict=False)
        out = {{"method": c.method, "gap": c.gap, "upper": c.upper, "lower": c.lower}}
    except Exception as exc:  # a plan the revision could not make is a result too
        out = {{"method": "error", "gap": float("inf"), "error": str(exc)[:200]}}
    out["seconds"] = time.perf_counter() - t0
    print(json.dumps(out), flush=True)
'''


def worker(root: Path, args: argparse.Namespace) -> subprocess.Popen:
    code = WORKER.format(root=str(root), date=args.date, days=args.days, gap=args.gap,
                         budget=args.budget)
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, cwd=root)
    assert p.stdout.readline().strip() == "ready"
    return p


def ask(p: subprocess.Popen, site: str) -> dict:
    p.stdin.write(site + "\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())


def merge_base() -> str:
    return subprocess.run(["git", "merge-base", "HEAD", "main"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--date", default="2026-07-13")
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--budget", type=float, default=10.0, help="[s] per plan")
    ap.add_argument("--gap", type=float, default=1e-3)
    ap.add_argument("--base", default=None, help="git revision (default: merge-base with "
                                                 "main)")
    ap.add_argument("--sites", default=None, help="comma-separated ids (default: all)")
    args = ap.parse_args()
    base = args.base or merge_base()
    sys.path.insert(0, str(ROOT))
    from vpp.catalog import Catalog

    sites = args.sites.split(",") if args.sites else [s.id for s in Catalog.load().fleet.sites]
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", base], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        old, new = worker(Path(tmp), args), worker(ROOT, args)
        print(f"{args.days}-day plans from {args.date}, required gap {args.gap:.2%}, budget "
              f"{args.budget:g} s; base {base[:10]} vs this tree, alternating per site")
        print(f"{'site':<9} {'base method':>11} {'gap':>8} {'wall':>7}   {'new method':>10} "
              f"{'gap':>8} {'wall':>7}   wall ratio")
        rows = []
        for site in sites:
            a, b = ask(old, site), ask(new, site)
            rows.append((site, a, b))
            print(f"{site:<9} {a['method']:>11} {a['gap']:8.3%} {a['seconds']:6.2f}s   "
                  f"{b['method']:>10} {b['gap']:8.3%} {b['seconds']:6.2f}s   "
                  f"{a['seconds'] / b['seconds']:6.2f}", flush=True)
        for p in (old, new):
            p.stdin.close()
            p.wait()

    def ok(r: dict) -> bool:
        return r["gap"] <= args.gap + 1e-9 and r["seconds"] <= args.budget

    for name, i in (("base", 1), ("this tree", 2)):
        good = [r[0] for r in rows if ok(r[i])]
        print(f"{name}: {len(good)}/{len(rows)} sites certified within {args.gap:.2%} in "
              f"<= {args.budget:g} s; total wall {sum(r[i]['seconds'] for r in rows):.1f} s")
    missed = [r for r in rows if not ok(r[2])]
    if missed:
        print("not certified in the budget (this tree): " + ", ".join(
            f"{s} {b['gap']:.3%}" for s, _, b in missed))
    hard = [r for r in rows if not (ok(r[1]) and r[1]["seconds"] < 1)]
    if hard:
        ratios = [a["seconds"] / b["seconds"] for _, a, b in hard]
        print(f"sites the base did not plan in < 1 s: wall ratio base/this tree median "
              f"{statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
