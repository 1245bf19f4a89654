"""Shared fixtures: the shipped catalog and plan checkers applied to every solve."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from models import DispatchProblem, DispatchResult, audit, costs
from vpp.audit import audit_plan
from vpp.catalog import Catalog


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return Catalog.load()


def assert_valid(p: DispatchProblem, r: DispatchResult, required_gap: float = 1e-3) -> None:
    """Fail with every finding if the result breaks physics, limits or accounting: the
    equations of every part (:func:`models.audit`), the objective against the money
    recomputed from the flows (:func:`models.costs`), and the certificate."""
    problems = audit(p, r)
    money = costs(p, r)["objective_yuan"]
    tol = 1e-2 + 1e-6 * abs(money)
    if np.any(np.asarray(p.grid.peak_margin_kw) > 0):
        # a peak margin's provision is in the objective, not in the flows' money
        if r.objective_yuan < money - tol:
            problems.append(f"objective {r.objective_yuan:.6f} below the money {money:.6f}")
    elif abs(r.objective_yuan - money) > tol:
        problems.append(f"objective {r.objective_yuan:.6f} != recomputed {money:.6f}")
    if r.optimality_gap > required_gap + 1e-9:
        problems.append(f"gap {r.optimality_gap} above {required_gap}")
    if r.objective_bound_yuan > r.objective_yuan + 1e-2:
        problems.append("bound above the objective")
    assert problems == [], "\n".join(problems)


def assert_valid_plan(plan: dict[str, Any]) -> None:
    problems = audit_plan(plan)
    assert problems == [], "\n".join(problems)


@pytest.fixture(scope="session")
def postgres():
    """A throw-away PostgreSQL server (see tests/postgres.py), or a skip with the reason."""
    import postgres as pg

    server = pg.start()
    if isinstance(server, str):
        pytest.skip(f"PostgreSQL storage tests skipped: {server}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def empty_database(request):
    """``empty_database(kind, folder)``: the URL of an empty database of ``kind``
    (``"sqlite"``: a file in ``folder``; ``"postgresql"``: a new database on the throw-away
    server, or a skip with the reason)."""
    def make(kind: str, folder) -> str:
        if kind == "sqlite":
            return f"sqlite:///{folder / 'vpp.sqlite3'}"
        return request.getfixturevalue("postgres").new_database()
    return make


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path, empty_database):
    """An empty database of each kind the service supports."""
    return empty_database(request.param, tmp_path)


@pytest.fixture(scope="session")
def small_fleet(tmp_path_factory):
    """A fleet file of the shipped fleet's first three sites: (its folder, its path)."""
    from vpp.catalog import DEFAULT_FLEET, data_dir

    d = tmp_path_factory.mktemp("fleet")
    text = (data_dir() / DEFAULT_FLEET).read_text(encoding="utf-8")
    head, *blocks = text.split("\n[[sites]]\n")
    path = d / "fleet.toml"
    path.write_text(head + "".join("\n[[sites]]\n" + b for b in blocks[:3]), encoding="utf-8")
    return d, path


@pytest.fixture
def wait_job():
    """``wait_job(client, url, headers, seconds=180, until=final)``: poll a job's URL until
    ``until(job)`` (default: it has ended); the last answer."""
    import time

    def wait(client, url, headers, seconds=180.0, until=None):
        until = until or (lambda job: job["status"] not in ("queued", "running"))
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            job = client.get(url, headers=headers).json()
            if until(job):
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {url} not there after {seconds} s: {job}")

    return wait
