"""Load on a running service: N concurrent plan requests over loopback.

Starts ``vpp serve`` (uvicorn, SQLite file in a temporary folder, ``--workers`` processes),
creates a park key for every site, fires ``--requests`` POST /v1/plans at once from as many
client threads, and checks every answer: 201, a plan that passes the independent audit, and
the stored copy byte-identical. Reports requests/s and latency percentiles, and - the
baseline measured in the same run - the time the same plans take solved one after another
in-process.

    python bench/service_load.py --requests 50 --workers 2
"""

from __future__ import annotations

import argparse
import datetime as dt
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

from service.auth import create_key
from service.db import make_engine, migrate, session_factory
from vpp.audit import audit_plan
from vpp.catalog import Catalog
from vpp.planning import plan_site


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--date", default="2026-07-15")
    args = ap.parse_args(argv)
    cat = Catalog.load()
    sites = [s.id for s in cat.fleet.sites]
    jobs = [sites[i % len(sites)] for i in range(args.requests)]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'load.sqlite3'}"
        engine = make_engine(url)
        migrate(engine)
        with session_factory(engine)() as s:
            keys = {sid: create_key(s, "park", [sid]) for sid in sites}
        engine.dispose()
        port = free_port()
        log_path = Path(tmp) / "server.log"
        log_file = log_path.open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--db", url, "--port", str(port),
             "--workers", str(args.workers)], stdout=log_file, stderr=subprocess.STDOUT)
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

            def one(site_id: str) -> tuple[float, str | None]:
                t0 = time.perf_counter()
                r = httpx.post(f"{base}/v1/plans", timeout=600,
                               headers={"X-API-Key": keys[site_id]},
                               json={"site_id": site_id, "date": args.date})
                took = time.perf_counter() - t0
                if r.status_code != 201:
                    return took, f"{site_id}: HTTP {r.status_code} {r.text[:200]}"
                plan = r.json()
                problems = audit_plan(plan)
                back = httpx.get(f"{base}/v1/plans/{plan['id']}", timeout=60,
                                 headers={"X-API-Key": keys[site_id]})
                if problems or back.content != r.content:
                    return took, f"{site_id}: audit {problems[:2]} / stored copy differs"
                return took, None

            t0 = time.perf_counter()
            with ThreadPoolExecutor(len(jobs)) as pool:
                results = list(pool.map(one, jobs))
            wall = time.perf_counter() - t0
        finally:
            server.terminate()
            server.wait(30)
            log_file.close()
            server_log = log_path.read_text(errors="replace")
    lat = sorted(r[0] for r in results)
    errors = [r[1] for r in results if r[1]]
    t0 = time.perf_counter()
    day = dt.date.fromisoformat(args.date)
    for sid in jobs:
        plan_site(cat, sid, day)
    serial = time.perf_counter() - t0
    print(f"{len(jobs)} concurrent plan requests, {args.workers} server process(es):")
    print(f"  all correct: {not errors} ({len(jobs) - len(errors)}/{len(jobs)} 201, audited, "
          "stored copy byte-identical)")
    for e in errors[:5]:
        print(f"  ERROR {e}")
    if errors:
        print("server log (end):\n" + server_log[-3000:])
    print(f"  wall {wall:.2f} s, {len(jobs) / wall:.2f} requests/s")
    print(f"  latency p50 {statistics.median(lat):.2f} s, p95 "
          f"{lat[max(0, round(0.95 * len(lat)) - 1)]:.2f} s, max {lat[-1]:.2f} s")
    print(f"  baseline, same plans solved one after another in-process: {serial:.2f} s "
          f"-> service/serial = {wall / serial:.2f}")


if __name__ == "__main__":
    main()
