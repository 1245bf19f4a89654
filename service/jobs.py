"""Jobs that outlast a request: a worker thread runs them, the database remembers them.

A job is ``queued``, ``running``, then ``done`` or ``failed``; on start-up every job left
``queued`` or ``running`` by a previous process becomes ``interrupted`` with a message, so
none silently vanishes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from models.errors import InfeasiblePlanError, InvalidInputError
from service.db import JobRecord

log = logging.getLogger(__name__)
Progress = Callable[[str], None]

#: Pyomo's solver interface captures the process's stdout/stderr file descriptors while it
#: talks to HiGHS, which is not safe from two threads at once (measured: concurrent plan
#: requests in one server process failed with "Captured output does not match sys.stdout").
#: Every solve (and every pyplot figure: global state too) in a service process takes this
#: lock; run several worker processes (``vpp serve --workers N``) to solve in parallel.
SOLVE_LOCK = threading.Lock()


class JobRunner:
    """Runs job functions ``fn(params, progress) -> result`` one at a time, off the
    request threads, recording state in the ``jobs`` table (``params`` gets the job's
    ``job_id`` added)."""

    def __init__(self, sessions: sessionmaker) -> None:
        self.sessions = sessions
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vpp-job")

    def recover(self) -> int:
        """Mark jobs a previous process left unfinished; returns how many."""
        with self.sessions() as s:
            res = s.execute(
                update(JobRecord)
                .where(JobRecord.status.in_(("queued", "running")))
                .values(status="interrupted", finished_at=dt.datetime.now(dt.UTC),
                        error="the service stopped before this job finished; submit it "
                              "again"))
            s.commit()
            return res.rowcount or 0

    def submit(self, kind: str, params: dict[str, Any], key_id: int | None,
               fn: Callable[[dict[str, Any], Progress], dict[str, Any]]) -> str:
        job_id = str(uuid.uuid4())
        with self.sessions() as s:
            s.add(JobRecord(id=job_id, kind=kind, status="queued", params=json.dumps(params),
                            created_by=key_id))
            s.commit()
        self.pool.submit(self._run, job_id, params, fn)
        return job_id

    def _set(self, job_id: str, **values: Any) -> None:
        with self.sessions() as s:
            s.execute(update(JobRecord).where(JobRecord.id == job_id).values(**values))
            s.commit()

    def _run(self, job_id: str, params: dict[str, Any],
             fn: Callable[[dict[str, Any], Progress], dict[str, Any]]) -> None:
        self._set(job_id, status="running")
        try:
            result = fn({**params, "job_id": job_id},
                        lambda text: self._set(job_id, progress=text[:200]))
        except (InvalidInputError, InfeasiblePlanError) as exc:
            self._set(job_id, status="failed", error=str(exc),
                      finished_at=dt.datetime.now(dt.UTC))
            return
        except Exception as exc:  # recorded, never lost; the service keeps running
            log.exception("job %s failed", job_id)
            self._set(job_id, status="failed", error=f"{type(exc).__name__}: {exc}",
                      finished_at=dt.datetime.now(dt.UTC))
            return
        self._set(job_id, status="done", result=json.dumps(result), progress="done",
                  finished_at=dt.datetime.now(dt.UTC))

    def get(self, job_id: str) -> JobRecord | None:
        with self.sessions() as s:
            return s.scalar(select(JobRecord).where(JobRecord.id == job_id))
