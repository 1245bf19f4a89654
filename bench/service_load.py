"""Load on a running service: N concurrent plan requests, alone and beside a simulation.

Starts ``vpp serve`` (uvicorn, ``--workers`` processes) on a SQLite file in a temporary
folder or, with ``--db postgresql``, on a throw-away PostgreSQL server (tests/postgres.py),
creates a park key for every site, then

1. **baseline**: fires ``--requests`` POST /v1/plans at once from as many client threads
   (after one such round to warm the server up);
2. **beside a simulation**: submits a ``--sim-sites`` x ``--sim-months`` simulation, waits
   until it is computing, fires the same requests again, then waits for the simulation;
3. checks every plan (201, the independent audit, the stored copy byte-identical, the same
   objective as the same plan solved in this process) and the simulation's months against
   the same simulation run undisturbed in this process.

Reports p50/p95 latency of both rounds and their ratio (the target: p95 beside the
simulation at most 2x the baseline's, measured in the same run).

    python bench/service_load.py --requests 50 --sim-sites 30 --sim-months 12
    python bench/service_load.py --db postgresql
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from service.auth import create_key
from service.db import make_engine, migrate, session_factory
from vpp.audit import audit_plan
from vpp.catalog import Catalog
from vpp.planning import plan_site, usable_cores
from vpp.simulation import SimulationOptions, simulate

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database(kind: str, tmp: Path):
    """(URL, stop function) of an empty database of ``kind``."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'load.sqlite3'}", lambda: None
    sys.path.insert(0, str(ROOT / "tests"))
    import postgres

    server = postgres.start()
    if isinstance(server, str):
        raise SystemExit(f"no PostgreSQL server: {server}")
    return server.new_database(), server.stop


def p95(values: list[float]) -> float:
    s = sorted(values)
    return s[max(0, round(0.95 * len(s)) - 1)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--date", default="2026-07-15")
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--sim-sites", type=int, default=30)
    ap.add_argument("--sim-months", type=int, default=12)
    ap.add_argument("--sim-start", default="2025-01-01")
    args = ap.parse_args(argv)
    cat = Catalog.load()
    sites = [s.id for s in cat.fleet.sites]
    jobs = [sites[i % len(sites)] for i in range(args.requests)]
    sim_sites = sites[:args.sim_sites]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url, stop_db = database(args.db, tmp)
        engine = make_engine(url)
        migrate(engine)
        with session_factory(engine)() as s:
            keys = {sid: create_key(s, "park", [sid]) for sid in sites}
            evaluator = create_key(s, "evaluator")
        engine.dispose()
        port = free_port()
        log_path = tmp / "server.log"
        log_file = log_path.open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--db", url, "--port", str(port),
             "--workers", str(args.workers)], stdout=log_file, stderr=subprocess.STDOUT,
            env={**os.environ, "VPP_SIMULATIONS_DIR": str(tmp / "sims")})
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            else:
                raise SystemExit("the server did not start: "
                                 + log_path.read_text(errors="replace")[-2000:])

            def one(site_id: str) -> tuple[float, str | None, dict | None]:
                t0 = time.perf_counter()
                r = httpx.post(f"{base}/v1/plans", timeout=600,
                               headers={"X-API-Key": keys[site_id]},
                               json={"site_id": site_id, "date": args.date})
                took = time.perf_counter() - t0
                if r.status_code != 201:
                    return took, f"{site_id}: HTTP {r.status_code} {r.text[:200]}", None
                plan = r.json()
                problems = audit_plan(plan)
                back = httpx.get(f"{base}/v1/plans/{plan['id']}", timeout=60,
                                 headers={"X-API-Key": keys[site_id]})
                if problems or back.content != r.content:
                    return took, f"{site_id}: audit {problems[:2]} / stored copy differs", None
                return took, None, plan

            def burst() -> tuple[list, float]:
                t0 = time.perf_counter()
                with ThreadPoolExecutor(len(jobs)) as pool:
                    out = list(pool.map(one, jobs))
                return out, time.perf_counter() - t0

            burst()  # warm-up: first solver instance, caches; not measured
            alone, wall_alone = burst()
            ev = {"X-API-Key": evaluator}
            r = httpx.post(f"{base}/v1/simulations", headers=ev, timeout=60, json={
                "start": args.sim_start, "months": args.sim_months, "sites": sim_sites})
            assert r.status_code == 202, r.text
            sim_url = base + r.json()["url"]
            while True:
                job = httpx.get(sim_url, headers=ev, timeout=60).json()
                if job["status"] == "running" and job["progress"][:1] in "123456789":
                    break
                if job["status"] not in ("queued", "running"):
                    raise SystemExit(f"simulation ended early: {job}")
                time.sleep(0.2)
            progress_at_start = job["progress"]
            beside, wall_beside = burst()
            job = httpx.get(sim_url, headers=ev, timeout=60).json()
            still_running = job["status"] == "running"
            progress_at_end = job["progress"]
            while job["status"] in ("queued", "running"):
                time.sleep(1)
                job = httpx.get(sim_url, headers=ev, timeout=60).json()
            sim_months = None
            if job["status"] == "done":
                sim_months = pd.read_csv(io.StringIO(httpx.get(
                    f"{sim_url}/months.csv", headers=ev, timeout=60).text))
        finally:
            server.terminate()
            server.wait(60)
            log_file.close()
            server_log = log_path.read_text(errors="replace")
            stop_db()
    day = dt.date.fromisoformat(args.date)
    reference = {sid: plan_site(cat, sid, day)["solver"]["objective_yuan"] for sid in set(jobs)}
    errors = []
    for round_ in (alone, beside):
        for _, err, plan in round_:
            if err:
                errors.append(err)
            elif plan["solver"]["objective_yuan"] != reference[plan["site_id"]]:
                errors.append(f"{plan['site_id']}: objective {plan['solver']['objective_yuan']}"
                              f" != {reference[plan['site_id']]} solved in-process")
    t0 = time.perf_counter()
    ref = simulate(cat, SimulationOptions(start=dt.date.fromisoformat(args.sim_start),
                                          months=args.sim_months), sim_sites,
                   jobs=usable_cores())
    ref_wall = time.perf_counter() - t0
    lat_a = [x[0] for x in alone]
    lat_b = [x[0] for x in beside]
    print(f"{args.db}, {args.workers} server process(es), {len(jobs)} concurrent plan requests "
          f"per round, {usable_cores()} cores")
    print(f"  plans correct: {not errors} ({2 * len(jobs) - len(errors)}/{2 * len(jobs)}: 201, "
          "audited, stored copy byte-identical, objective = in-process solve)")
    for e in errors[:5]:
        print(f"  ERROR {e}")
    print(f"  alone:             wall {wall_alone:6.2f} s, p50 {statistics.median(lat_a):6.2f} s,"
          f" p95 {p95(lat_a):6.2f} s")
    print(f"  beside simulation: wall {wall_beside:6.2f} s, p50 {statistics.median(lat_b):6.2f} s,"
          f" p95 {p95(lat_b):6.2f} s  (simulation {progress_at_start} -> {progress_at_end}, "
          f"still running after the round: {still_running})")
    print(f"  p95 ratio beside/alone: {p95(lat_b) / p95(lat_a):.2f} (target <= 2)")
    print(f"  simulation {len(sim_sites)} sites x {args.sim_months} months: {job['status']}, "
          f"{job.get('progress')}; undisturbed in-process run {ref_wall:.0f} s")
    if sim_months is not None:
        cols = [c for c in ref.months.columns if c not in ("site_id", "month")]
        same_rows = (sim_months[["site_id", "month"]].values.tolist()
                     == ref.months[["site_id", "month"]].values.tolist())
        a = sim_months[cols].to_numpy(float)
        b = ref.months[cols].to_numpy(float)
        identical = same_rows and np.array_equal(a, b, equal_nan=True)
        print(f"  simulation months identical to the undisturbed run: {identical} "
              f"({len(sim_months)} site-months x {len(cols)} columns, max |diff| "
              f"{np.nanmax(np.abs(a - b)) if same_rows else 'rows differ'})")
    elif job["status"] != "done":
        print("server log (end):\n" + server_log[-3000:])


if __name__ == "__main__":
    main()
