"""Do two revisions plan the same? Fleet plans of a base revision and of this tree, compared
site by site within their certified gaps.

The base revision is checked out into a temporary git worktree and run with the same Python;
this tree runs as it is. For every date and site both plans' objectives [yuan] must agree
within the sum of their certified absolute gaps (``gap x max(|objective|, 1 yuan)``): two
plans certified within their gaps of the same problem can differ by no more.

    python bench/compare_revisions.py --base 2676ae5 --dates 2026-07-15,2026-01-10,2026-04-08
    python bench/compare_revisions.py --base HEAD~3 --set min_direction_hold_h=0

``--set KEY=VALUE`` adds ``KEY = VALUE`` to every ``[sites.storage]`` table of the fleet this
tree plans (e.g. to switch a new rule off when comparing with a revision that lacks it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLEET = ROOT / "vpp" / "data" / "fleet" / "changzhou-pilots.toml"
RUN = "import sys; sys.path.insert(0, {root!r}); from service.cli import main; main()"


def plans(root: Path, day: str, out: Path, fleet: Path | None) -> dict[str, dict]:
    """``vpp plan --all`` of the tree at ``root`` for ``day``: the plans by site id."""
    args = [sys.executable, "-c", RUN.format(root=str(root))]
    if fleet is not None:
        args += ["--fleet", str(fleet), "--feeders", str(ROOT / "vpp" / "data" / "fleet"
                                                         / "changzhou-feeders.toml")]
    args += ["plan", "--all", "--date", day, "--out", str(out), "--jobs", "2"]
    subprocess.run(args, check=True, capture_output=True, cwd=root)
    found = {}
    for f in out.glob(f"*_{day}.json"):
        if f.name.startswith(("vpp_", "summary_")):
            continue
        p = json.loads(f.read_text("utf-8"))
        found[p["site_id"]] = p
    return found


def patched_fleet(settings: list[str], folder: Path) -> Path | None:
    if not settings:
        return None
    lines = [f"{kv.split('=', 1)[0].strip()} = {kv.split('=', 1)[1].strip()}"
             for kv in settings]
    text = FLEET.read_text("utf-8").replace("[sites.storage]\n",
                                            "[sites.storage]\n" + "\n".join(lines) + "\n")
    out = folder / "fleet.toml"
    out.write_text(text, "utf-8")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="git revision to compare with")
    ap.add_argument("--dates", default="2026-07-15,2026-01-10,2026-04-08")
    ap.add_argument("--set", dest="settings", action="append", default=[],
                    help="KEY=VALUE added to every [sites.storage] of this tree's fleet")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        base = tmp_path / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), args.base],
                       check=True, cwd=ROOT)
        try:
            fleet = patched_fleet(args.settings, tmp_path)
            worst, total = 0.0, 0
            for day in args.dates.split(","):
                old = plans(base, day, tmp_path / f"old-{day}", None)
                new = plans(ROOT, day, tmp_path / f"new-{day}", fleet)
                for sid in sorted(set(old) | set(new)):
                    if sid not in old or sid not in new:
                        print(f"{day} {sid}: planned by one revision only")
                        worst = float("inf")
                        continue
                    a, b = old[sid]["solver"], new[sid]["solver"]
                    diff = abs(a["objective_yuan"] - b["objective_yuan"])
                    allowed = (a["optimality_gap"] * max(abs(a["objective_yuan"]), 1.0)
                               + b["optimality_gap"] * max(abs(b["objective_yuan"]), 1.0)
                               + 1e-6)
                    worst = max(worst, diff / allowed)
                    total += 1
                    if diff > allowed:
                        print(f"{day} {sid}: objectives {a['objective_yuan']:.4f} vs "
                              f"{b['objective_yuan']:.4f} yuan differ by {diff:.4f} > "
                              f"{allowed:.4f} allowed by the gaps")
            print(f"{total} site-days compared against {args.base}: largest difference "
                  f"{worst:.3f} of what the two certified gaps allow "
                  f"({'all within' if worst <= 1 else 'NOT within'} the gaps)")
            return 0 if worst <= 1 else 1
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
