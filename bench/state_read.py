"""The state read the dashboard pages use: ``GET /v1/sites/{id}/state`` for 30 sites with a
month of 15-minute measurements each, server time.

Fills a database (SQLite in a temporary folder, or ``--db postgresql`` on a throw-away
server, tests/postgres.py) with ``--days`` days of 15-minute rows for every site of the
fleet (grid import and export, PV, load, battery power, SOC: the same validation and upsert
as ``POST /v1/sites/{id}/measurements``), then reads each site's state ``--rounds`` times
through the app in this process and times the server side only (a middleware around the
app). The **baseline**, same run, same app, same key check: ``GET /v1/sites/{id}`` (the
site document, no measurements). Reports p50/p95 of both, their ratio, and where the state
read's time goes (database read vs :func:`vpp.state.site_state`). Target: p95 <= 200 ms
(the dashboard's page budget).

    python bench/state_read.py
    python bench/state_read.py --db postgresql --rounds 10
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient
from service_load import database, p95  # the load bench's throw-away database

from service.app import create_app
from service.auth import create_key
from service.db import session_factory
from service.operations import month_rows, upsert
from vpp.catalog import Catalog
from vpp.measurements import validate_batch
from vpp.state import site_state

CST = dt.timezone(dt.timedelta(hours=8))


def site_rows(site, start: dt.datetime, days: int, rng: np.random.Generator) -> list[dict]:
    """A plausible month of 15-minute rows within the site's limits."""
    n = days * 96
    t = np.arange(n)
    hour = (t % 96) / 4.0
    shape = 0.55 + 0.35 * np.exp(-((hour - 14) / 5) ** 2)
    load = np.clip(site.load.peak_kw * (shape + 0.05 * rng.standard_normal(n)), 0, None)
    pv_ac = sum(a.ac_kw for a in site.pv_arrays)
    pv = pv_ac * np.clip(np.sin(np.pi * (hour - 6) / 12), 0, None) * rng.uniform(0.3, 0.9, n)
    st = site.storage
    bat = np.zeros(n) if st is None else st.power_kw * 0.5 * np.where(
        (hour >= 14) & (hour < 18), 1.0, np.where(hour < 6, -1.0, 0.0))
    net = load - pv - bat
    limit = 1.0 * site.grid.transformer_kva
    imp = np.clip(net, 0, limit)
    exp = np.clip(-net, 0, limit)
    soc = None if st is None else np.clip(st.energy_kwh * (0.5 - 0.1 * np.sin(t / 15)),
                                          0, st.energy_kwh)
    rows = []
    for i in range(n):
        r = {"timestamp": (start + dt.timedelta(minutes=15 * i)).isoformat(),
             "grid_import_kw": float(imp[i]), "grid_export_kw": float(exp[i]),
             "pv_kw": float(pv[i]), "load_kw": float(load[i])}
        if st is not None:
            r["battery_kw"] = float(bat[i])
            r["soc_kwh"] = float(soc[i])
        rows.append(r)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--month", default="2026-10", help="YYYY-MM of the data")
    ap.add_argument("--days", type=int, default=31)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    year, month = map(int, args.month.split("-"))
    start = dt.datetime(year, month, 1, tzinfo=CST)
    at = start + dt.timedelta(days=args.days, minutes=-1)  # the month's last minute
    with tempfile.TemporaryDirectory() as tmp:
        url, stop = database(args.db, Path(tmp))
        try:
            app = create_app(url, job_slots=0)
            sessions = session_factory(app.state.engine)
            catalog: Catalog = app.state.catalog
            rng = np.random.default_rng(0)
            t0 = time.perf_counter()
            with sessions() as db:
                key = create_key(db, "admin")
                for site in catalog.fleet.sites:
                    rows = site_rows(site, start, args.days, rng)
                    batch = validate_batch(site, rows, interval_minutes=15,
                                           now=at + dt.timedelta(hours=1), max_rows=len(rows))
                    upsert(db, site.id, batch)
                db.commit()
            n_sites = len(catalog.fleet.sites)
            print(f"{args.db}: {n_sites} sites x {args.days} days of 15-minute rows "
                  f"({n_sites * args.days * 96:,} rows) validated and stored in "
                  f"{time.perf_counter() - t0:.1f} s")
            server: list[float] = []

            @app.middleware("http")
            async def timing(request, call_next):
                s = time.perf_counter()
                response = await call_next(request)
                server.append(time.perf_counter() - s)
                return response

            client = TestClient(app)
            headers = {"X-API-Key": key}
            q = f"?at={at.isoformat().replace('+', '%2B')}"
            for site in catalog.fleet.sites[:3]:  # warm up both routes
                client.get(f"/v1/sites/{site.id}/state{q}", headers=headers)
                client.get(f"/v1/sites/{site.id}", headers=headers)
            results = {}
            for name, path in (("baseline GET /v1/sites/{id}", "/v1/sites/{id}"),
                               ("GET /v1/sites/{id}/state", "/v1/sites/{id}/state" + q)):
                server.clear()
                for _ in range(args.rounds):
                    for site in catalog.fleet.sites:
                        r = client.get(path.replace("{id}", site.id), headers=headers)
                        assert r.status_code == 200, r.text
                results[name] = list(server)
            for name, times in results.items():
                print(f"  {name:<30} server time p50 {statistics.median(times) * 1e3:7.1f} ms, "
                      f"p95 {p95(times) * 1e3:7.1f} ms ({len(times)} requests)")
            base, state = results.values()
            print(f"  p95 ratio state/baseline: {p95(state) / p95(base):.1f}; state p95 "
                  f"{p95(state) * 1e3:.1f} ms (target <= 200 ms)")
            read, comp = [], []
            for site in catalog.fleet.sites:
                with sessions() as db:
                    s = time.perf_counter()
                    frame = month_rows(db, site.id, pd.Timestamp(at))
                    read.append(time.perf_counter() - s)
                s = time.perf_counter()
                site_state(catalog, site.id, frame, at)
                comp.append(time.perf_counter() - s)
            print(f"  where it goes (p95): database read of the month {p95(read) * 1e3:.1f} ms "
                  f"({len(frame)} rows), vpp.state.site_state {p95(comp) * 1e3:.1f} ms")
        finally:
            stop()


if __name__ == "__main__":
    main()
