"""Server time of the dashboard's fleet overview and site page, against the JSON API.

Starts ``vpp serve`` on loopback with a fresh SQLite database, stores a plan of the day for
every site of the fleet (30 sites) through ``POST /v1/plans``, stores a month of 15-minute
measurements per site where this build can (see ``service/dashboard/measurements.py``),
logs in to the dashboard with an evaluator key, then requests each page ``--rounds`` times
in turn with the baselines measured in the same run: ``GET /v1/health`` (no data) and
``GET /v1/sites`` and ``GET /v1/plans?date=`` (JSON of the same sites and plans). For each
route it reports p50 and p95 of the server time (the ``Server-Timing`` header: request in to
response start) and of the client's wall time, and checks the target: dashboard pages p95
≤ 200 ms.

    python bench/dashboard.py [--rounds 200] [--date 2026-07-15]

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
    ap.add_argument("--date", default="2026-07-15")
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
            from service.dashboard import measurements

            print("measurements: " + ("a month of 15-minute data per site" if
                                      measurements.AVAILABLE else
                                      "not stored by this build (the pages show 'no "
                                      "measurements yet'); the month of data is not loaded"))
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
            server_ms: dict[str, list[float]] = {k: [] for k in routes}
            wall_ms: dict[str, list[float]] = {k: [] for k in routes}
            for path in routes.values():  # warm-up
                c.get(path, headers=key if path.startswith("/v1") else None)
            for _ in range(args.rounds):
                for name, path in routes.items():
                    t = time.perf_counter()
                    r = c.get(path, headers=key if path.startswith("/v1") else None)
                    wall_ms[name].append((time.perf_counter() - t) * 1e3)
                    assert r.status_code == 200, (path, r.status_code)
                    m = re.search(r"app;dur=([\d.]+)", r.headers.get("server-timing", ""))
                    server_ms[name].append(float(m.group(1)))
            sizes = {name: len(c.get(path, headers=key if path.startswith("/v1") else None)
                               .content) for name, path in routes.items()}
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
    for name in routes:
        s50, s95 = np.percentile(server_ms[name], [50, 95])
        w50, w95 = np.percentile(wall_ms[name], [50, 95])
        print(f"{name:40} {sizes[name]:8d} {s50:9.1f}ms {s95:6.1f}ms {w50:7.1f}ms "
              f"{w95:6.1f}ms")
        if name.startswith("dashboard") and s95 > TARGET_MS:
            ok = False
    h95 = np.percentile(server_ms["baseline: GET /v1/health"], 95)
    for name in [n for n in routes if n.startswith("dashboard")]:
        print(f"{name}: p95 {np.percentile(server_ms[name], 95) / h95:.1f}x /v1/health's")
    print(f"\ntarget: dashboard pages server p95 <= {TARGET_MS:.0f} ms: "
          f"{'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
