"""``/v1/simulations``: months of operation as a job; its report and tables."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from service.auth import Principal
from service.compute import check_simulation_request
from service.config import Settings
from service.db import JobFile, JobRecord
from service.deps import CatalogDep, CurrentKey, RunnerDep, SessionDep, SettingsDep
from service.jobs import JobRunner
from service.routing import CheckedRoute
from service.schemas import JobStatus, SimulationRequest
from service.store import Forbidden, NotFound, job_status, readable_job
from service.tasks import SIMULATION_FILES
from vpp.catalog import Catalog

router = APIRouter(prefix="/simulations", tags=["simulations"], route_class=CheckedRoute)
JobId = Annotated[str, Path(max_length=64)]


@router.post("", status_code=202, response_model=JobStatus)
def create_simulation(req: SimulationRequest, cat: CatalogDep, who: CurrentKey,
                      runner: RunnerDep, settings: SettingsDep) -> JobStatus:
    """Simulate months of operation as a job: progress at ``/v1/simulations/{id}``, and
    when done the report and tables at ``/v1/simulations/{id}/{file}``. Evaluator and
    admin keys. 503 when the job queue is full."""
    return job_status(submit_simulation(req, cat, who, runner, settings))


def submit_simulation(req: SimulationRequest, cat: Catalog, who: Principal,
                      runner: JobRunner, settings: Settings) -> JobRecord:
    """Check ``req`` and queue it as a job (the API and the dashboard both start
    simulations through here)."""
    if who.role not in ("evaluator", "admin"):
        raise Forbidden("simulations are for evaluator or admin keys")
    check_simulation_request(cat, req, settings.max_simulation_site_months)
    return runner.submit("simulation", req.model_dump(mode="json"), who.key_id)


@router.get("/{job_id}", response_model=JobStatus)
def read_simulation(job_id: JobId, who: CurrentKey, runner: RunnerDep) -> JobStatus:
    """A simulation's state, progress and (when done) its totals and file links."""
    return job_status(readable_job(runner.get(job_id), who, job_id, "simulation"))


@router.get("/{job_id}/{name}",
            responses={200: {"content": {t.split(";")[0]: {} for t in
                                         set(SIMULATION_FILES.values())}}})
def simulation_file(job_id: JobId, name: Annotated[str, Path(max_length=64)],
                    db: SessionDep, who: CurrentKey, runner: RunnerDep) -> Response:
    """A finished simulation's report (``report.md``, ``report.html``), tables
    (``months.csv``, ``sites.csv``, ``days.csv``) or charts (``*.png``)."""
    rec = readable_job(runner.get(job_id), who, job_id, "simulation")
    if name not in SIMULATION_FILES:
        raise NotFound(f"no file {name!r}; available: {', '.join(SIMULATION_FILES)}")
    f = db.get(JobFile, (rec.id, name))
    if f is None:
        raise NotFound(f"{name} of simulation {job_id} is not available (status "
                       f"{rec.status})")
    return Response(f.content, media_type=f.media_type)
