"""Shared fixtures: the shipped catalog and a plan checker applied to every solve."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from models.dispatch import DispatchProblem, DispatchResult
from vpp.audit import audit_plan
from vpp.catalog import Catalog
from vpp.planning import demand_charge_yuan


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return Catalog.load()


def as_plan(p: DispatchProblem, r: DispatchResult, required_gap: float = 1e-3) -> dict[str, Any]:
    """A model result in the plan document shape, so :func:`audit_plan` can check it.

    KPIs are written from the result's arrays; the audit recomputes them, and also checks the
    solver's objective against the net cost recomputed from the physical flows.
    """
    dt_h = p.dt_h
    s = p.storage
    imp, exp, dis = r.grid_import_kw, r.grid_export_kw, r.discharge_kw
    energy = dt_h * float(np.sum(p.import_price_yuan_per_kwh * imp))
    revenue = dt_h * float(np.sum(p.export_price_yuan_per_kwh * exp))
    discharge = dt_h * float(dis.sum())
    subsidy = dt_h * float(np.sum(p.subsidy_yuan_per_kwh * dis))
    deg = discharge * (s.degradation_yuan_per_kwh if s else 0.0)
    demand = demand_charge_yuan(p.grid, imp)
    net = energy - revenue + demand + deg - subsidy
    storage = None
    if s is not None:
        storage = {
            "power_kw": s.power_kw, "energy_kwh": s.energy_kwh, "eta_charge": s.eta_charge,
            "eta_discharge": s.eta_discharge, "soc_min_kwh": s.soc_min_kwh,
            "soc_max_kwh": s.soc_max_kwh, "soc_initial_kwh": s.soc_initial_kwh,
            "soc_terminal_min_kwh": s.terminal_min_kwh,
            "degradation_yuan_per_kwh": s.degradation_yuan_per_kwh,
            "max_cycles_per_day": s.max_cycles_per_day,
        }
    days = [f"2026-01-{1 + int(d):02d}" for d in p.day_of_interval]
    return {
        "interval_minutes": round(dt_h * 60),
        "inputs": {
            "timestamps": [f"{d}T{t:05d}" for t, d in enumerate(days)],
            "pv_forecast_kw": p.pv_kw, "load_kw": p.load_kw,
            "import_price_yuan_per_kwh": p.import_price_yuan_per_kwh,
            "export_price_yuan_per_kwh": p.export_price_yuan_per_kwh,
            "subsidy_yuan_per_kwh": p.subsidy_yuan_per_kwh,
        },
        "intervals": {
            "pv_used_kw": r.pv_used_kw, "pv_curtailed_kw": r.pv_curtailed_kw,
            "charge_kw": r.charge_kw, "discharge_kw": dis, "soc_kwh": r.soc_kwh,
            "grid_import_kw": imp, "grid_export_kw": exp,
            "flexible_load_kw": r.flexible_load_kw,
        },
        "parameters": {
            "storage": storage,
            "grid": {
                "import_limit_kw": p.grid.import_limit_kw,
                "export_limit_kw": p.grid.export_limit_kw,
                "demand_rate_yuan_per_kw_month": p.grid.demand_rate_yuan_per_kw_month,
                "month_peak_kw": p.grid.month_peak_kw,
                "contract_demand_kw": p.grid.contract_demand_kw,
            },
            "shiftable_loads": [
                {"energy_kwh": sh.energy_kwh, "start": sh.start, "end": sh.end}
                for sh in p.shiftable
            ],
            "subsidy": {"counted_in_objective": True},
        },
        "kpis": {
            "energy_cost_yuan": energy, "export_revenue_yuan": revenue,
            "discharge_kwh": discharge, "subsidy_yuan": subsidy,
            "degradation_cost_yuan": deg, "demand_charge_yuan": demand, "net_cost_yuan": net,
            "baseline_cost_yuan": net, "savings_yuan": 0.0,
        },
        "solver": {
            "optimality_gap": r.optimality_gap, "mip_rel_gap_required": required_gap,
            "objective_yuan": r.objective_yuan, "objective_bound_yuan": r.objective_bound_yuan,
        },
    }


def assert_valid(p: DispatchProblem, r: DispatchResult, required_gap: float = 1e-3) -> None:
    """Fail with every audit finding if the result breaks physics, limits or accounting."""
    problems = audit_plan(as_plan(p, r, required_gap))
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


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty database of each kind the service supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'vpp.sqlite3'}"
    return request.getfixturevalue("postgres").new_database()


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
