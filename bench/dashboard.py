"""Server time of the dashboard's fleet overview and site page, against the JSON API.

Starts ``vpp serve`` on loopback with a fresh SQLite database, stores a plan of the day for
every site of the fleet (30 sites) through ``POST /v1/plans`` and - unless
``--no-measurements`` - every site's 15-minute measurements from the first of the month to
the end of ``--date`` (the default, 2026-07-31: a whole month, 2,976 rows per site, 89,280
in all; import, PV, battery power and SOC, one ``POST /v1/sites/{id}/measurements`` per
site), logs in to the dashboard with an evaluator key, then requests each page ``--rounds``
times in turn with the baselines measured in the same run: ``GET /v1/health`` (no data) and
``GET /v1/sites`` and ``GET /v1/plans?date=`` (JSON of the same sites and plans). With
measurements it also times the first overview and site page (nothing computed yet), and in
every round an overview right after one site received a new batch (that site's month read
and counted again). For each route it reports p50 and p95 of the server time (the
``Server-Timing`` header: request in to response start) and of the client's wall time, and
checks the target: dashboard pages p95 ≤ 200 ms.

    python bench/dashboard.py [--rounds 200] [--date 2026-07-31] [--no-measurements]

Only loopback traffic; a bounded number of requests; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

TARGET_MS = 200.0
AFTER_BATCH = "dashboard: overview after a batch"


def month_of_rows(site: dict, date: str) -> list[dict]:
    """Plausible 15-minute rows of ``site`` from the first of ``date``'s month to the end of
    ``date`` (local time): a two-shift load, PV on a clear-sky arc, the battery charging in
    the night valley and discharging in the evening peak, import from the balance (kW, kWh;
    within the site's limits, deterministic)."""
    import datetime as dt

    day = dt.date.fromisoformat(date)
    first = dt.datetime(day.year, day.month, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    n = ((day - first.date()).days + 1) * 96
    t = np.arange(n)
    hour = (t % 96) / 4.0
    rng = np.random.default_rng(sum(map(ord, site["id"])))
    load = site["load"]["peak_kw"] * (0.45 + 0.4 * ((hour >= 8) & (hour < 22))
                                      + 0.1 * rng.random(n))
    ac = sum(a["ac_kw"] for a in site.get("pv_arrays") or [])
    pv = 0.8 * ac * np.clip(np.sin((hour - 6.0) / 12.0 * np.pi), 0.0, None)
    st = site.get("storage")
    battery = np.zeros(n)
    soc = None
    if st:
        battery[(hour >= 1) & (hour < 5)] = -0.5 * st["power_kw"]
        battery[(hour >= 18) & (hour < 22)] = 0.5 * st["power_kw"]
        lo, hi = st["soc_min_frac"] * st["energy_kwh"], st["soc_max_frac"] * st["energy_kwh"]
        soc = np.clip(lo + np.cumsum(-battery * 0.25) % (hi - lo), lo, hi)
    imp = np.clip(load - pv - battery, 0.0, site["grid"]["import_limit_kw"])
    rows = []
    for i in range(n):
        r = {"timestamp": (first + dt.timedelta(minutes=15 * i)).isoformat(),
             "grid_import_kw": round(float(imp[i]), 1)}
        if ac:
            r["pv_kw"] = round(float(pv[i]), 1)
        if st:
            r["battery_kw"] = float(battery[i])
            r["soc_kwh"] = round(float(soc[i]), 1)
        rows.append(r)
    return rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vpp(*args: str, env: dict[str, str]) -> str:
    exe = Path(sys.executable).with_name("vpp")
    r = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, check=True)
    return r.stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200, help="requests per route")
    ap.add_argument("--date", default="2026-07-31",
                    help="the pages' day; measurements from the first of its month to it")
    ap.add_argument("--no-measurements", action="store_true",
                    help="store no measurements (the baseline of the pages without them)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vpp-bench-ui-"))
    db = f"sqlite:///{tmp / 'bench.sqlite3'}"
    env = {**os.environ, "VPP_DATABASE_URL": db, "VPP_SIMULATIONS_DIR": str(tmp / "sims")}
    admin = vpp("keys", "create", "--role", "admin", "--label", "bench", env=env).split()[-1]
    evaluator = vpp("keys", "create", "--role", "evaluator", "--label", "bench",
                    env=env).split()[-1]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([str(Path(sys.executable).with_name("vpp")), "serve", "--port",
                               str(port)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        with httpx.Client(base_url=base, timeout=120, follow_redirects=True) as c:
            t0 = time.monotonic()
            while True:
                try:
                    if c.get("/v1/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() - t0 > 60:
                    raise RuntimeError("vpp serve did not answer in 60 s")
                time.sleep(0.2)
            sites = [s["id"] for s in c.get("/v1/sites", headers={"X-API-Key": admin}).json()]
            t0 = time.monotonic()
            for sid in sites:
                r = c.post("/v1/plans", headers={"X-API-Key": admin},
                           json={"site_id": sid, "date": args.date})
                r.raise_for_status()
            print(f"{len(sites)} sites, {len(sites)} plans of {args.date} stored in "
                  f"{time.monotonic() - t0:.1f} s")
            measured = not args.no_measurements
            if measured:
                t0 = time.monotonic()
                n_rows = 0
                for sid in sites:
                    doc = c.get(f"/v1/sites/{sid}", headers={"X-API-Key": admin}).json()
                    rows = month_of_rows(doc, args.date)
                    r = c.post(f"/v1/sites/{sid}/measurements", headers={"X-API-Key": admin},
                               json={"interval_minutes": 15, "rows": rows})
                    r.raise_for_status()
                    n_rows += len(rows)
                print(f"measurements: {n_rows:,} rows of 15 minutes ({n_rows // len(sites):,} "
                      f"per site, to the end of {args.date}) stored in "
                      f"{time.monotonic() - t0:.1f} s")
            else:
                print("measurements: none stored (--no-measurements)")
            page = c.get("/ui/login")
            token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            r = c.post("/ui/login", data={"csrf": token, "api_key": evaluator, "next": "/ui/"})
            assert r.status_code == 200 and "/ui/login" not in str(r.url), r.text[:300]
            routes = {
                "dashboard: fleet overview": f"/ui/?date={args.date}",
                "dashboard: site page": f"/ui/sites/{sites[0]}?date={args.date}",
                "baseline: GET /v1/health": "/v1/health",
                "baseline: GET /v1/sites (JSON)": "/v1/sites",
                "baseline: GET /v1/plans?date= (JSON)": f"/v1/plans?date={args.date}",
            }
            key = {"X-API-Key": evaluator}
            names = [*routes, *([AFTER_BATCH] if measured else [])]
            server_ms: dict[str, list[float]] = {k: [] for k in names}
            wall_ms: dict[str, list[float]] = {k: [] for k in names}

            def timed(name: str, path: str) -> httpx.Response:
                t = time.perf_counter()
                r = c.get(path, headers=key if path.startswith("/v1") else None)
                wall_ms[name].append((time.perf_counter() - t) * 1e3)
                assert r.status_code == 200, (path, r.status_code)
                if measured and path.startswith("/ui"):
                    assert "no-measurements" not in r.text, path
                m = re.search(r"app;dur=([\d.]+)", r.headers.get("server-timing", ""))
                server_ms[name].append(float(m.group(1)))
                return r

            first = {}
            for name, path in routes.items():  # warm-up; the pages' first view is cold
                r = c.get(path, headers=key if path.startswith("/v1") else None)
                m = re.search(r"app;dur=([\d.]+)", r.headers.get("server-timing", ""))
                first[name] = float(m.group(1))
            overview = routes["dashboard: fleet overview"]
            for i in range(args.rounds):
                for name, path in routes.items():
                    timed(name, path)
                if measured:  # a new reading of one site (in turn): its month counted again
                    sid = sites[i % len(sites)]
                    r = c.post(f"/v1/sites/{sid}/measurements", headers={"X-API-Key": admin},
                               json={"rows": [{"timestamp": f"{args.date}T20:00:00+08:00",
                                               "grid_import_kw": 100.0 + i}]})
                    r.raise_for_status()
                    timed(AFTER_BATCH, overview)
            sizes = {name: len(c.get(path, headers=key if path.startswith("/v1") else None)
                               .content) for name, path in routes.items()}
            sizes[AFTER_BATCH] = sizes["dashboard: fleet overview"]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    print(f"\n{args.rounds} requests per route, in turn, one client, {os.cpu_count()} cores "
          "(shared: only ratios measured in one run mean much)\n")
    print(f"{'route':40} {'bytes':>8} {'server p50':>11} {'p95':>8} {'wall p50':>9} "
          f"{'p95':>8}")
    ok = True
    for name in names:
        s50, s95 = np.percentile(server_ms[name], [50, 95])
        w50, w95 = np.percentile(wall_ms[name], [50, 95])
        print(f"{name:40} {sizes[name]:8d} {s50:9.1f}ms {s95:6.1f}ms {w50:7.1f}ms "
              f"{w95:6.1f}ms")
        if name.startswith("dashboard") and s95 > TARGET_MS:
            ok = False
    print("\nfirst request (nothing computed yet): " + ", ".join(
        f"{n.split(': ')[1]} {ms:.1f} ms" for n, ms in first.items() if n.startswith("dash")))
    h95 = np.percentile(server_ms["baseline: GET /v1/health"], 95)
    for name in [n for n in names if n.startswith("dashboard")]:
        print(f"{name}: p95 {np.percentile(server_ms[name], 95) / h95:.1f}x /v1/health's")
    print(f"\ntarget: dashboard pages server p95 <= {TARGET_MS:.0f} ms: "
          f"{'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
