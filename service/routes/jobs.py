"""``/v1/jobs``: any job's state; cancel and resume."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service.auth import Principal
from service.db import JobRecord
from service.deps import CurrentKey, RunnerDep
from service.errors import Conflict
from service.jobs import JobRunner
from service.routing import CheckedRoute
from service.schemas import JobStatus
from service.store import job_status, owned_job, readable_job

router = APIRouter(prefix="/jobs", tags=["jobs"], route_class=CheckedRoute)
JobId = Annotated[str, Path(max_length=64)]


@router.get("/{job_id}", response_model=JobStatus)
def read_job(job_id: JobId, who: CurrentKey, runner: RunnerDep) -> JobStatus:
    """A job's state, progress and (when done) its result."""
    return job_status(readable_job(runner.get(job_id), who, job_id))


def _owned(job_id: str, who: Principal, runner: JobRunner) -> JobRecord:
    """The job if this key submitted it or is an admin key (404 / 403 otherwise)."""
    return owned_job(runner.get(job_id), who, job_id)


@router.post("/{job_id}/cancel", status_code=202, response_model=JobStatus,
             responses={409: {"description": "the job has already ended"}})
def cancel_job(job_id: JobId, who: CurrentKey, runner: RunnerDep) -> JobStatus:
    """Cancel a queued or running job (the key that submitted it, or an admin key): a
    queued job ends ``cancelled`` at once, a running one within seconds."""
    rec = _owned(job_id, who, runner)
    if rec.status not in ("queued", "running"):
        raise Conflict(f"job {job_id} has already ended ({rec.status})")
    runner.cancel(job_id)
    return job_status(runner.get(job_id))


@router.post("/{job_id}/resume", status_code=202, response_model=JobStatus,
             responses={409: {"description": "the job is not interrupted or cancelled"}})
def resume_job(job_id: JobId, who: CurrentKey, runner: RunnerDep) -> JobStatus:
    """Queue an interrupted or cancelled job again under its id (the key that submitted
    it, or an admin key); a simulation continues from its last completed month. 503 when
    the job queue is full."""
    rec = _owned(job_id, who, runner)
    if not runner.resume(job_id):
        raise Conflict(f"job {job_id} is {rec.status}: only interrupted or cancelled jobs "
                       "resume")
    return job_status(runner.get(job_id))
