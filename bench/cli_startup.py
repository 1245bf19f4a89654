"""CLI start-up and fleet planning wall time from the shell, before and after, in one run.

The base revision (default ``2676ae5``, before the lazy imports and the one-room redesign) is
unpacked from git into a temporary folder and run with the same interpreter and packages
(``PYTHONPATH`` first, so its own code and data are imported); base and this checkout run
alternately, each command ``--repeat`` times, and the median wall time [s] of each is
reported with the ratio this/base. Commands, as a user types them:

* ``vpp --help``
* ``vpp sites``
* ``vpp plan --all --date D`` (30 sites, the shipped feeders, ``--jobs 0`` = every core)
* ``vpp plan --all --date D --no-feeders`` on 30 sites and on a 300-site fleet (the 30
  replicated under new ids): the growth factor 300/30 is reported for each revision.

    python bench/cli_startup.py [--base 2676ae5] [--repeat 3] [--date 2026-07-15]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the console script as pyproject.toml names it (``console``; ``main`` in revisions before it)
ENTRY = ("import sys, service.cli as c; "
         "sys.exit(getattr(c, 'console', c.main)())")


def unpack(rev: str, into: Path) -> Path:
    """The tree of ``rev`` in ``into`` (``git archive``)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def replicated_fleet(tree: Path, copies: int, out: Path) -> Path:
    """The tree's shipped fleet file with its sites repeated ``copies`` times under new ids
    (``CZ-MG-01-r2``, ...)."""
    text = (tree / "vpp/data/fleet/changzhou-pilots.toml").read_text(encoding="utf-8")
    head, sep, body = text.partition("[[sites]]")
    body = sep + body
    parts = [body] + [re.sub(r'^id = "([^"]+)"', rf'id = "\1-r{k}"', body, flags=re.M)
                      for k in range(2, copies + 1)]
    out.write_text(head + "\n".join(parts), encoding="utf-8")
    return out


def wall(tree: Path, args: list[str], work: Path) -> float:
    """Seconds from start to exit of ``vpp args`` run from ``tree``'s code."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("VPP_DATA_DIR", None)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", ENTRY, *args], cwd=work, env=env,
                       capture_output=True, text=True)
    dt_s = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{tree.name}: vpp {' '.join(args)} failed:\n{r.stderr[-2000:]}")
    return dt_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="2676ae5")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--date", default="2026-07-15")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        trees = {"base": unpack(a.base, tmpdir / "base"), "this": ROOT}
        fleets = {k: replicated_fleet(t, 10, tmpdir / f"fleet300-{k}.toml")
                  for k, t in trees.items()}
        out = tmpdir / "plans"
        commands = {
            "vpp --help": lambda k: ["--help"],
            "vpp sites": lambda k: ["sites"],
            "vpp plan --all (30 sites)": lambda k: ["plan", "--all", "--date", a.date,
                                                    "--out", str(out / k)],
            "--no-feeders, 30 sites": lambda k: ["plan", "--all", "--date", a.date,
                                                 "--no-feeders", "--out", str(out / k)],
            "--no-feeders, 300 sites": lambda k: ["--fleet", str(fleets[k]), "plan", "--all",
                                                  "--date", a.date, "--no-feeders",
                                                  "--out", str(out / k)],
        }
        for k, t in trees.items():  # warm the file cache and byte-compile every module
            wall(t, ["--help"], tmpdir)
            wall(t, commands["vpp plan --all (30 sites)"](k), tmpdir)
        times: dict[tuple[str, str], list[float]] = {}
        for name, cmd in commands.items():
            for _ in range(a.repeat):
                for k, t in trees.items():
                    times.setdefault((name, k), []).append(wall(t, cmd(k), tmpdir))
            print(f"  {name}: done", file=sys.stderr)
    med = {key: statistics.median(v) for key, v in times.items()}
    print(f"CLI wall time from the shell [s], median of {a.repeat}, base {a.base} vs this "
          f"checkout, {os.cpu_count()} cores, date {a.date}\n")
    print("| command | base [s] | this [s] | this/base |\n|---|---:|---:|---:|")
    for name in commands:
        b, n = med[(name, "base")], med[(name, "this")]
        print(f"| {name} | {b:.2f} | {n:.2f} | {n / b:.2f} |")
    for k in trees:
        g = med[("--no-feeders, 300 sites", k)] / med[("--no-feeders, 30 sites", k)]
        print(f"\n{k}: 300 sites / 30 sites = {g:.1f}x", end="")
    print()


if __name__ == "__main__":
    main()
