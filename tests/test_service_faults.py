"""Faults: the database down, locked or damaged (503 naming it, with Retry-After, and
recovery without a restart), and a server killed with SIGKILL mid-job (its processes die
with it, a restart on the same port succeeds at once, nothing stored is lost, the job is
interrupted and resumable), also with ``--workers 2``."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import create_key
from service.db import make_engine, migrate, session_factory

DATE = "2026-07-15"


def h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def keyed_app(url: str, **settings):
    app = create_app(url, job_slots=0, **settings)
    with session_factory(app.state.engine)() as s:
        key = create_key(s, "admin")
    return TestClient(app, raise_server_exceptions=False), key


def assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "5"
    body = r.json()
    assert body.get("dependency") == "database" or body.get("database", "").startswith(
        "unavailable"), body


# ------------------------------------------------------------------ the database


@pytest.fixture(scope="module")
def own_postgres():
    """A PostgreSQL server of this module's own, to be stopped and started again."""
    import postgres as pg

    server = pg.start()
    if isinstance(server, str):
        pytest.skip(f"PostgreSQL fault tests skipped: {server}")
    yield server
    server.stop()


def test_postgresql_down_is_503_and_the_service_recovers(own_postgres):
    client, key = keyed_app(own_postgres.new_database())
    assert client.get("/v1/health").json()["database"] == "ok"
    assert client.post("/v1/plans", headers=h(key),
                       json={"site_id": "CZ-MG-01", "date": DATE}).status_code == 201
    own_postgres.pause()
    try:
        r = client.get("/v1/health")
        assert_unavailable(r)
        assert r.json()["status"] == "unavailable"
        assert_unavailable(client.get("/v1/plans", headers=h(key)))
        assert_unavailable(client.post("/v1/plans", headers=h(key),
                                       json={"site_id": "CZ-MG-01", "date": DATE}))
    finally:
        own_postgres.resume()
    assert client.get("/v1/health").json()["database"] == "ok"  # no restart
    assert client.post("/v1/plans", headers=h(key),
                       json={"site_id": "CZ-MG-01", "date": DATE}).status_code == 201
    assert len(client.get("/v1/plans", headers=h(key)).json()) == 2


def test_sqlite_locked_by_another_writer_is_503_then_works(tmp_path):
    path = tmp_path / "vpp.sqlite3"
    client, key = keyed_app(f"sqlite:///{path}", sqlite_busy_timeout_s=1)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a second writer holds the write lock
    try:
        r = client.post("/v1/plans", headers=h(key), json={"site_id": "CZ-MG-01", "date": DATE})
        assert_unavailable(r)
        assert "locked" in r.json()["detail"]
        assert client.get("/v1/plans", headers=h(key)).status_code == 200  # readers go on
    finally:
        other.execute("ROLLBACK")
        other.close()
    r = client.post("/v1/plans", headers=h(key), json={"site_id": "CZ-MG-01", "date": DATE})
    assert r.status_code == 201
    assert len(client.get("/v1/plans", headers=h(key)).json()) == 1  # the 503 wrote nothing


def test_a_damaged_sqlite_file_fails_health_and_recovers_when_restored(tmp_path):
    path = tmp_path / "vpp.sqlite3"
    client, key = keyed_app(f"sqlite:///{path}")
    assert client.get("/v1/health").status_code == 200
    with sqlite3.connect(path) as c:  # everything into the main file, then damage it
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    client.app.state.engine.dispose()  # connections are opened anew, as over time
    good = path.read_bytes()
    path.write_bytes(b"not a database, overwritten" * 200)
    try:
        r = client.get("/v1/health")
        assert_unavailable(r)
        assert "not a database" in r.json()["database"]
        assert_unavailable(client.get("/v1/sites", headers=h(key)))
    finally:
        path.write_bytes(good)
    assert client.get("/v1/health").status_code == 200
    assert client.get("/v1/sites", headers=h(key)).status_code == 200


def test_sqlite_file_is_private(tmp_path):
    path = tmp_path / "new" / "vpp.sqlite3"
    create_app(f"sqlite:///{path}", job_slots=0)
    assert path.stat().st_mode & 0o777 == 0o600


# ------------------------------------------------------------------ a killed server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(stat[1]), []).append(int(d.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def survivors(pids: set[int], seconds: float) -> list[int]:
    """The processes of ``pids`` still alive after waiting up to ``seconds`` for them."""
    deadline = time.monotonic() + seconds
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return stat[0] != "Z"


class Server:
    """``vpp serve`` in a subprocess on a SQLite file."""

    def __init__(self, tmp: Path, fleet: Path, workers: int = 1) -> None:
        self.url = f"sqlite:///{tmp / 'vpp.sqlite3'}"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.log = tmp / "server.log"
        self.env = {**os.environ, "VPP_FLEET": str(fleet),
                    "VPP_SIMULATIONS_DIR": str(tmp / "sims"), "VPP_JOB_HEARTBEAT_S": "1"}
        engine = make_engine(self.url)
        migrate(engine)
        with session_factory(engine)() as s:
            self.key = create_key(s, "admin")
        engine.dispose()
        self.proc: subprocess.Popen | None = None

    def start(self, within_s: float = 60.0) -> float:
        """Start; the seconds until /v1/health answers 200."""
        t0 = time.monotonic()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "serve", "--db", self.url, "--port",
                 str(self.port), "--workers", str(self.workers)],
                stdout=log, stderr=subprocess.STDOUT, env=self.env)
        while time.monotonic() - t0 < within_s:
            if self.proc.poll() is not None:
                raise AssertionError("server exited: " + self.log.read_text()[-3000:])
            try:
                if httpx.get(f"{self.base}/v1/health", timeout=1).status_code == 200:
                    return time.monotonic() - t0
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError("server did not start: " + self.log.read_text()[-3000:])

    def call(self, method: str, path: str, **kw) -> httpx.Response:
        return httpx.request(method, self.base + path, headers=h(self.key), timeout=60, **kw)

    def wait(self, url: str, until, seconds: float = 300.0) -> dict:
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            job = self.call("GET", url).json()
            if until(job):
                return job
            time.sleep(0.2)
        raise AssertionError(f"{url}: {job}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def started_simulation(server: Server) -> tuple[str, str]:
    r = server.call("POST", "/v1/simulations",
                    json={"start": "2025-01-01", "months": 4, "sites": ["CZ-MG-01", "CZ-MG-02"],
                          "control": "day-ahead"})
    assert r.status_code == 202, r.text
    url = r.json()["url"]
    server.wait(url, lambda j: j["status"] == "running" and j["progress"][:1] in "123456789")
    return r.json()["id"], url


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_kill_9_mid_job_restart_at_once_nothing_lost_job_resumable(tmp_path, small_fleet):
    server = Server(tmp_path, small_fleet[1])
    try:
        server.start()
        plan = server.call("POST", "/v1/plans", json={"site_id": "CZ-MG-01", "date": DATE})
        assert plan.status_code == 201
        job_id, url = started_simulation(server)
        below = descendants(server.proc.pid)
        assert below, "the simulation runs in processes of its own"
        t_kill = time.monotonic()
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        assert not survivors(below, 5), "job processes outlived the server"
        server.start()  # same port: nothing holds the socket
        assert time.monotonic() - t_kill < 5.0 + 60.0  # start-up itself, see bench
        again = server.call("GET", f"/v1/plans/{plan.json()['id']}")
        assert again.status_code == 200 and again.content == plan.content
        job = server.call("GET", url).json()
        assert job["status"] == "interrupted" and "resume" in job["error"], job
        r = server.call("POST", f"/v1/jobs/{job_id}/resume")
        assert r.status_code == 202
        seen = server.wait(url, lambda j: j["status"] != "queued"
                           and j["progress"][:1] in "123456789d")
        done_before = int(seen["progress"].split("/")[0]) if "/" in seen["progress"] else 8
        assert done_before >= 1  # it continued from the months completed before the kill
        job = server.wait(url, lambda j: j["status"] not in ("queued", "running"))
        assert job["status"] == "done", job
    finally:
        server.stop()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_workers_2_a_killed_worker_s_job_is_interrupted_and_workers_die_with_the_parent(
        tmp_path, small_fleet):
    server = Server(tmp_path, small_fleet[1], workers=2)
    try:
        server.start()
        job_id, url = started_simulation(server)
        engine = make_engine(server.url)
        with engine.connect() as c:
            owner = c.exec_driver_sql("SELECT owner FROM jobs WHERE id = ?",
                                      (job_id,)).scalar()
        engine.dispose()
        worker = int(owner.rsplit(":", 2)[1])
        assert worker in descendants(server.proc.pid)
        os.kill(worker, signal.SIGKILL)
        job = server.wait(url, lambda j: j["status"] != "running", seconds=60)
        assert job["status"] == "interrupted", job
        below = descendants(server.proc.pid)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        assert not survivors(below, 10), "workers outlived the server"
        server.start()
        assert server.call("GET", url).json()["status"] == "interrupted"
    finally:
        server.stop()
