"""The kinds of job: what a job process computes, and how its server stores the result.

``compute(params, catalog, progress)`` runs in the job's own process (see
:mod:`service.jobs`) and touches no database; ``finish(db, job, output)`` runs in the server
process and adds the result (plans, files) to the session, which the runner commits with
the job's state in one transaction: a job is ``done`` with all its results or not at all.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from models.errors import InvalidInputError
from service.compute import simulation_options
from service.db import JobFile, JobRecord
from service.schemas import FleetPlanRequest, SimulationRequest
from service.store import add_plan
from vpp.catalog import Catalog
from vpp.sim_report import CHARTS, REPORT_LANGS, chart_name

Progress = Callable[[str], None]

#: Files a finished simulation offers for download, and their media types.
SIMULATION_FILES = {"report.md": "text/markdown; charset=utf-8",
                    "report.html": "text/html; charset=utf-8",
                    "report.zh-CN.html": "text/html; charset=utf-8",
                    "months.csv": "text/csv", "sites.csv": "text/csv", "days.csv": "text/csv",
                    **{chart_name(c, lang): "image/png" for lang in REPORT_LANGS
                       for c in CHARTS}}


@dataclass(frozen=True)
class Task:
    compute: Callable[[dict[str, Any], Catalog, Progress], dict[str, Any]]
    finish: Callable[[Session, JobRecord, dict[str, Any]], dict[str, Any]]


# --------------------------------------------------------------------------- fleet plans


def compute_fleet_plan(params: dict[str, Any], catalog: Catalog,
                       progress: Progress) -> dict[str, Any]:
    """The VPP day of docs/vpp.md; a site that cannot be planned is reported, a day with
    no plan at all fails with every site's reason."""
    from vpp.coupled import plan_vpp
    from vpp.options import PlanOptions
    from vpp.planning import usable_cores

    req = FleetPlanRequest.model_validate(params["request"])
    n = len(catalog.fleet.sites)
    count = [0]
    failures: dict[str, str] = {}

    def on_plan(site_id: str, _plan: Any, exc: Exception | None) -> None:
        count[0] += 1
        if exc is not None:
            failures[site_id] = str(exc)
        progress(f"{count[0]}/{n} sites planned")

    options = PlanOptions(mip_rel_gap=req.mip_rel_gap, time_limit_s=req.time_limit_s)
    day = plan_vpp(catalog, req.date, options,
                   catalog.feeder_caps if req.use_feeders else (), req.events, None,
                   usable_cores(), on_plan=on_plan)
    if not day.plans:
        raise InvalidInputError([f"{s}: {m}" for s, m in failures.items()]
                                or ["the fleet has no site"], "no site could be planned")
    return {"plans": day.plans, "feeders": day.feeders, "events": day.events,
            "settlement": None if day.settlement is None else
            day.settlement.round(6).to_dict(orient="index"),
            "timings_s": day.timings, "failures": failures}


def finish_fleet_plan(db: Session, job: JobRecord, out: dict[str, Any]) -> dict[str, Any]:
    ids = {sid: add_plan(db, p, job.created_by).id for sid, p in out["plans"].items()}
    return {"plans": {sid: f"/v1/plans/{pid}" for sid, pid in ids.items()},
            "feeders": out["feeders"], "events": out["events"],
            "settlement": out["settlement"], "timings_s": out["timings_s"],
            "failures": out["failures"]}


# --------------------------------------------------------------------------- simulations


def simulation_folder(params: dict[str, Any], catalog: Catalog) -> Path:
    """Where a simulation works: named by everything that decides its numbers (the request
    and the documents of its sites), so that the same simulation submitted again - or
    resumed after an interruption - continues from the months already completed."""
    req = SimulationRequest.model_validate(params["request"])
    ids = req.sites or [s.id for s in catalog.fleet.sites]
    sites = {}
    for sid in ids:
        try:
            sites[sid] = catalog.fleet.site(sid).model_dump(mode="json")
        except InvalidInputError:
            sites[sid] = None
    text = json.dumps({"request": req.model_dump(mode="json"), "sites": sites,
                       "root": str(catalog.root)}, sort_keys=True)
    key = hashlib.sha256(text.encode()).hexdigest()[:20]
    return Path(params["simulations_dir"]) / key


def compute_simulation(params: dict[str, Any], catalog: Catalog,
                       progress: Progress) -> dict[str, Any]:
    from vpp.finance import load_finance_inputs
    from vpp.planning import usable_cores
    from vpp.sim_report import write_report
    from vpp.simulation import simulate

    req = SimulationRequest.model_validate(params["request"])
    opts = simulation_options(catalog, req)
    fin = load_finance_inputs(**req.finance())
    folder = simulation_folder(params, catalog)
    folder.mkdir(parents=True, exist_ok=True)

    def tick(done: int, total: int, elapsed: float) -> None:
        progress(f"{done}/{total} site-months, {elapsed:.0f} s")

    # the same simulation running in another job: wait for it, then resume from its months
    with (folder / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("waiting for the same simulation in another job")
            fcntl.flock(lock, fcntl.LOCK_EX)
        res = simulate(catalog, opts, req.sites or None, out=folder, jobs=usable_cores(),
                       on_progress=tick)
        if res.months.empty:  # nothing to report: the job fails with every site's reason
            raise InvalidInputError([f"{s}: {m}" for s, m in res.failures.items()]
                                    or ["no site-month was simulated"],
                                    "no site completed the simulation")
        write_report(res, catalog, folder, fin)
    return {"folder": str(folder),
            "totals": {k: round(v, 3) for k, v in res.fleet_totals().items()},
            "failures": res.failures, "wall_seconds": round(res.wall_seconds, 1)}


def finish_simulation(db: Session, job: JobRecord, out: dict[str, Any]) -> dict[str, Any]:
    """Keep the report, tables and charts with the job: any server process serves them."""
    folder = Path(out["folder"])
    names = [n for n in SIMULATION_FILES if (folder / n).is_file()]
    db.execute(delete(JobFile).where(JobFile.job_id == job.id))  # a resumed job's old files
    for n in names:
        db.add(JobFile(job_id=job.id, name=n, media_type=SIMULATION_FILES[n],
                       content=(folder / n).read_bytes()))
    url = f"/v1/simulations/{job.id}"
    return {"totals": out["totals"], "failures": out["failures"],
            "wall_seconds": out["wall_seconds"], "files": {n: f"{url}/{n}" for n in names}}


TASKS: dict[str, Task] = {
    "fleet-plan": Task(compute_fleet_plan, finish_fleet_plan),
    "simulation": Task(compute_simulation, finish_simulation),
}
