"""``/v1/fleet-plans``: the VPP day of every site, as a job."""

from __future__ import annotations

from fastapi import APIRouter

from service.auth import Principal
from service.compute import check_fleet_plan_request
from service.db import JobRecord
from service.deps import CatalogDep, CurrentKey, RunnerDep
from service.jobs import JobRunner
from service.routing import CheckedRoute
from service.schemas import FleetPlanRequest, JobStatus
from service.store import Forbidden, job_status
from vpp.catalog import Catalog

router = APIRouter(prefix="/fleet-plans", tags=["fleet"], route_class=CheckedRoute)


@router.post("", status_code=202, response_model=JobStatus)
def create_fleet_plan(req: FleetPlanRequest, cat: CatalogDep, who: CurrentKey,
                      runner: RunnerDep) -> JobStatus:
    """Plan every site (feeders, events) as a job; poll ``/v1/jobs/{id}``. Evaluator and
    admin keys (a fleet plan covers every park). 503 when the job queue is full."""
    return job_status(submit_fleet_plan(req, cat, who, runner))


def submit_fleet_plan(req: FleetPlanRequest, cat: Catalog, who: Principal,
                      runner: JobRunner) -> JobRecord:
    """Check ``req`` and queue it as a job (the API and the dashboard both start fleet
    plans through here)."""
    if who.role not in ("evaluator", "admin"):
        raise Forbidden("fleet plans cover every park: evaluator or admin keys")
    check_fleet_plan_request(cat, req.date, req.events)
    return runner.submit("fleet-plan", req.model_dump(mode="json"), who.key_id)
