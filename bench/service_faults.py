"""Faults on a running service, on SQLite or PostgreSQL (``--db``), with figures.

1. **kill -9 mid-job**: ``vpp serve`` runs a simulation; it is killed with SIGKILL; the
   seconds until its job processes are gone, until a new server answers on the same port,
   and until the job reads ``interrupted``; every plan stored before is read back
   byte-identical; the job is resumed and the site-months it starts from are reported;
   its months are compared with an undisturbed in-process run (a resumed site may pick
   another of equally good plans: equal within the certified gap, docs/simulation.md).
2. **database down**: PostgreSQL stopped for ``--outage`` seconds (SQLite: a second writer
   holding the write lock that long): every answer during the outage (503 + Retry-After,
   never a 500), and the seconds until the first 201 after it, without a restart.

    python bench/service_faults.py --db sqlite
    python bench/service_faults.py --db postgresql
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import io
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_service_faults import alive, descendants, free_port  # noqa: E402

from service.auth import create_key  # noqa: E402
from service.db import make_engine, migrate, session_factory  # noqa: E402
from vpp.catalog import Catalog  # noqa: E402
from vpp.planning import usable_cores  # noqa: E402
from vpp.simulation import SimulationOptions, simulate  # noqa: E402

DATE = "2026-07-15"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--sim-sites", type=int, default=4)
    ap.add_argument("--sim-months", type=int, default=6)
    ap.add_argument("--outage", type=float, default=15.0, help="[s]")
    args = ap.parse_args(argv)
    cat = Catalog.load()
    sites = [s.id for s in cat.fleet.sites][:args.sim_sites]
    pg = None
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.db == "sqlite":
            path = tmp / "vpp.sqlite3"
            url = f"sqlite:///{path}"
        else:
            import postgres

            pg = postgres.start()
            if isinstance(pg, str):
                raise SystemExit(f"no PostgreSQL server: {pg}")
            url = pg.new_database()
        engine = make_engine(url)
        migrate(engine)
        with session_factory(engine)() as s:
            key = create_key(s, "admin")
        engine.dispose()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = (tmp / "server.log").open("ab")
        env = {**os.environ, "VPP_SIMULATIONS_DIR": str(tmp / "sims")}
        hdr = {"X-API-Key": key}

        def start() -> subprocess.Popen:
            return subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--db", url,
                                     "--port", str(port)], stdout=log,
                                    stderr=subprocess.STDOUT, env=env)

        def healthy(deadline_s: float = 120) -> float:
            t0 = time.monotonic()
            while time.monotonic() - t0 < deadline_s:
                try:
                    if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                        return time.monotonic()
                except httpx.HTTPError:
                    time.sleep(0.02)
            raise SystemExit("no answer: " + (tmp / "server.log").read_text()[-3000:])

        def job(url_: str) -> dict:
            return httpx.get(base + url_, headers=hdr, timeout=60).json()

        server = start()
        try:
            healthy()
            plans = [httpx.post(f"{base}/v1/plans", headers=hdr, timeout=120,
                                json={"site_id": sid, "date": DATE}) for sid in sites]
            assert all(p.status_code == 201 for p in plans)
            r = httpx.post(f"{base}/v1/simulations", headers=hdr, timeout=60, json={
                "start": "2025-01-01", "months": args.sim_months, "sites": sites})
            sim = r.json()
            while (j := job(sim["url"]))["progress"][:1] not in "123456789":
                time.sleep(0.2)
            before_kill = j["progress"]
            below = descendants(server.pid)
            t_kill = time.monotonic()
            server.send_signal(signal.SIGKILL)
            server.wait()
            while any(alive(p) for p in below):
                time.sleep(0.01)
            t_gone = time.monotonic()
            server = start()
            t_up = healthy()
            while (j := job(sim["url"]))["status"] == "running":
                time.sleep(0.05)
            t_interrupted = time.monotonic()
            state_after = j["status"]
            same = sum(httpx.get(f"{base}/v1/plans/{p.json()['id']}", headers=hdr,
                                 timeout=60).content == p.content for p in plans)
            httpx.post(f"{base}/v1/jobs/{sim['id']}/resume", headers=hdr, timeout=60)
            while (j := job(sim["url"]))["progress"][:1] not in "123456789d":
                time.sleep(0.05)
            resumed_from = j["progress"]
            while (j := job(sim["url"]))["status"] in ("queued", "running"):
                time.sleep(0.5)
            months = pd.read_csv(io.StringIO(httpx.get(
                base + sim["url"] + "/months.csv", headers=hdr, timeout=60).text))

            # ---------------------------------------------------------- database down
            answers: collections.Counter = collections.Counter()
            retry_after = set()
            stop = threading.Event()

            def outage() -> None:
                if pg is not None:
                    pg.pause()
                    stop.wait(args.outage)
                    pg.resume()
                else:
                    other = sqlite3.connect(path, isolation_level=None)
                    other.execute("BEGIN IMMEDIATE")
                    stop.wait(args.outage)
                    other.execute("ROLLBACK")
                    other.close()

            th = threading.Thread(target=outage)
            th.start()
            time.sleep(0.5)
            t_out = time.monotonic()
            while th.is_alive():
                for method, path, body in (("GET", "/v1/health", None),
                                           ("POST", "/v1/plans", {"site_id": sites[0],
                                                                  "date": DATE})):
                    rr = httpx.request(method, base + path, headers=hdr, json=body, timeout=60)
                    answers[f"{method} {path} {rr.status_code}"] += 1
                    if rr.status_code == 503:
                        retry_after.add(rr.headers.get("retry-after"))
            t_back = time.monotonic()
            while httpx.post(f"{base}/v1/plans", headers=hdr, timeout=60, json={
                    "site_id": sites[0], "date": DATE}).status_code != 201:
                time.sleep(0.1)
            t_ok = time.monotonic()
        finally:
            server.terminate()
            server.wait(60)
            log.close()
            if pg is not None:
                pg.stop()
    ref = simulate(cat, SimulationOptions(start=dt.date(2025, 1, 1), months=args.sim_months),
                   sites, jobs=usable_cores())
    same_rows = (months[["site_id", "month"]].values.tolist()
                 == ref.months[["site_id", "month"]].values.tolist())
    rel = (np.max(np.abs(months["net_cost_yuan"].to_numpy() / ref.months["net_cost_yuan"]
                         .to_numpy() - 1)) if same_rows else float("nan"))
    print(f"{args.db}: kill -9 of vpp serve during a {len(sites)}-site x {args.sim_months}-month "
          f"simulation at {before_kill}")
    print(f"  job processes gone {t_gone - t_kill:.2f} s after the kill; same port answering "
          f"{t_up - t_kill:.2f} s after it; job {state_after} {t_interrupted - t_kill:.2f} s "
          "after it")
    print(f"  stored plans read back byte-identical: {same}/{len(plans)}")
    print(f"  resumed from {resumed_from}; finished {j['status']}; the same site-months as an "
          f"undisturbed run: {same_rows}, net cost per site-month within {rel:.2e} of it "
          "(a resumed site may pick another of equally good plans: docs/simulation.md)")
    what = "PostgreSQL stopped" if pg else "SQLite's write lock held by another writer"
    print(f"  database down {args.outage:.0f} s ({what}): answers {dict(answers)}, Retry-After "
          f"{sorted(x for x in retry_after if x)}")
    print(f"  first 201 after the outage: {t_ok - t_back:.2f} s after it ended "
          f"({t_back - t_out:.1f} s of outage observed), no restart")


if __name__ == "__main__":
    main()
