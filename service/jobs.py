"""Jobs that outlast a request (fleet plans, simulations): the database holds them, a
process of their own runs each.

A request inserts the job ``queued``; at most ``max_queued_jobs`` may wait (more is a 503
with ``Retry-After``), so nothing is accepted that the service cannot remember. Every
server process has a :class:`JobRunner` whose dispatcher thread

* claims queued jobs while it has a free slot (``job_slots``) and runs each in a process of
  its own: ``multiprocessing``'s spawn context (a fresh interpreter that inherits no socket
  of the server), at low CPU priority (``job_nice``: interactive plans come first), killed by
  the kernel when its server process dies (:func:`service.procs.die_with_parent`);
* renews the lease of its running jobs every ``job_heartbeat_s`` (``owner``,
  ``heartbeat_at``) and marks ``interrupted`` the running jobs of any other process whose
  lease is older than ``job_lease_s`` or whose process on this host is gone;
* writes each job's progress (at most once a second) and, in one transaction, its final
  state with its results: ``done``, ``failed`` (with the reason), ``cancelled`` or
  ``interrupted``.

The job process computes only (:mod:`service.tasks`) and reports through a pipe; it holds
no database connection. No request waits for a job: the plan routes never queue behind one.
An interrupted or cancelled job can be resumed (queued again under the same id); a
simulation then continues from its last completed month.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from models.errors import InfeasiblePlanError, InvalidInputError
from service.config import Settings
from service.db import JobRecord
from service.procs import die_with_parent, owner_gone, owner_id
from vpp.catalog import Catalog

log = logging.getLogger(__name__)
#: PostgreSQL advisory lock that makes "insert, then count the waiting jobs" atomic.
QUEUE_LOCK = 0x5650504A
INTERRUPTED = ("the server process running this job stopped before it finished; resume it "
               "(POST /v1/jobs/{id}/resume: a simulation continues from its last completed "
               "month) or submit it again")


class QueueFull(RuntimeError):
    """As many jobs wait as the service allows; retry later."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _job_process(kind: str, params: dict[str, Any], catalog: Catalog, conn: Connection,
                 nice: int, parent_pid: int) -> None:
    """Entry point of a job's process: compute, report through ``conn``, exit."""
    die_with_parent(signal.SIGKILL, parent_pid)
    if sys.platform.startswith("linux"):
        # this process is single-threaded: its own pools (a simulation's sites) fork, so
        # that their workers inherit the death signal too (spawned ones would not)
        mp.set_start_method("fork", force=True)
    if nice:
        os.nice(nice)
    from service.tasks import TASKS

    try:
        out = TASKS[kind].compute(params, catalog, lambda t: conn.send(("progress", t[:200])))
    except (InvalidInputError, InfeasiblePlanError) as exc:
        conn.send(("failed", str(exc)))
    except Exception as exc:  # recorded with the job, never lost
        traceback.print_exc()
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
    else:
        conn.send(("done", out))
    conn.close()


@dataclass
class _Running:
    job_id: str
    process: Any  # multiprocessing.Process (spawn context)
    conn: Connection
    progress: str | None = None  # the latest progress not yet written
    saved_at: float = 0.0
    outcome: tuple[str, Any] | None = None  # final state not yet written
    cancel: bool = False


class JobRunner:
    """Submits, runs, cancels and resumes jobs (see the module's description).

    ``catalog(session)`` gives the data a job runs on (the shipped catalog with the sites
    registered through the API).
    """

    def __init__(self, sessions: sessionmaker, settings: Settings,
                 catalog: Callable[[Session], Catalog]) -> None:
        self.sessions = sessions
        self.settings = settings
        self.catalog = catalog
        self.owner = owner_id()
        self.running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._context = mp.get_context("spawn")
        self._postgres = sessions.kw["bind"].dialect.name == "postgresql"

    # ------------------------------------------------------------------ requests' side

    def start(self) -> None:
        """Start the dispatcher (idempotent; nothing with ``job_slots`` 0)."""
        with self._lock:
            if self._thread is not None or self.settings.job_slots == 0:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="vpp-jobs", daemon=True)
            self._thread.start()
        atexit.register(self.stop)  # before multiprocessing waits for the job processes

    def submit(self, kind: str, params: dict[str, Any], key_id: int | None) -> JobRecord:
        """Queue a job; :class:`QueueFull` when ``max_queued_jobs`` already wait."""
        job = JobRecord(id=str(uuid.uuid4()), kind=kind, status="queued", progress="queued",
                        params=json.dumps(params), created_by=key_id, created_at=utcnow())
        with self.sessions() as db:
            self._queue_lock(db)
            db.add(job)
            db.flush()  # SQLite: holds the write lock from here, so the count is exact
            self._check_queue(db)
            db.commit()
        self.start()
        self._wake.set()
        return job

    def get(self, job_id: str) -> JobRecord | None:
        with self.sessions() as db:
            return db.get(JobRecord, job_id)

    def cancel(self, job_id: str) -> None:
        """Cancel a queued job now, a running one as soon as its owner sees the request
        (at once when this process runs it)."""
        with self.sessions() as db:
            done = db.execute(
                update(JobRecord).where(JobRecord.id == job_id, JobRecord.status == "queued")
                .values(status="cancelled", progress="cancelled", finished_at=utcnow(),
                        error="cancelled before it started")).rowcount
            if not done:
                db.execute(update(JobRecord)
                           .where(JobRecord.id == job_id, JobRecord.status == "running")
                           .values(cancel_requested=True))
            db.commit()
        with self._lock:
            run = self.running.get(job_id)
        if run is not None:
            self._kill(run, cancel=True)

    def resume(self, job_id: str) -> bool:
        """Queue an interrupted or cancelled job again under its id; False if it is in
        another state. :class:`QueueFull` as for :meth:`submit`."""
        with self.sessions() as db:
            self._queue_lock(db)
            n = db.execute(
                update(JobRecord)
                .where(JobRecord.id == job_id,
                       JobRecord.status.in_(("interrupted", "cancelled")))
                .values(status="queued", progress="queued", error=None, result=None,
                        owner=None, heartbeat_at=None, started_at=None, finished_at=None,
                        cancel_requested=False)).rowcount
            if n:
                self._check_queue(db)
            db.commit()
        if n:
            self.start()
            self._wake.set()
        return bool(n)

    def counts(self) -> dict[str, int]:
        """Jobs by state."""
        with self.sessions() as db:
            rows = db.execute(select(JobRecord.status, func.count())
                              .group_by(JobRecord.status)).all()
        return {status: n for status, n in rows}

    def stop(self) -> None:
        """Stop dispatching; kill this process's jobs and mark them interrupted."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)
        with self._lock:
            running = list(self.running.values())
            self.running.clear()
        for run in running:
            self._kill(run)
            run.process.join(5)
        if running:
            try:
                self._interrupt([r.job_id for r in running], owner=self.owner)
            except Exception as exc:  # the database is down: the leases expire instead
                log.warning("could not mark %d job(s) interrupted: %s", len(running), exc)

    def reap(self) -> int:
        """Mark interrupted every running job of another process whose lease expired or
        whose process on this host is gone; returns how many."""
        cutoff = utcnow() - dt.timedelta(seconds=self.settings.job_lease_s)
        with self.sessions() as db:
            rows = db.execute(select(JobRecord.id, JobRecord.owner, JobRecord.heartbeat_at)
                              .where(JobRecord.status == "running")).all()
        with self._lock:
            mine = set(self.running)
        stale = [(i, o, b) for i, o, b in rows
                 if (o == self.owner and i not in mine)  # its process never started
                 or (o != self.owner and (b is None or b < cutoff or owner_gone(o)))]
        n = 0
        for job_id, owner, beat in stale:
            n += self._interrupt([job_id], owner=owner, heartbeat_at=beat)
        if n:
            log.warning("%d job(s) of stopped server processes marked interrupted", n)
        return n

    # ------------------------------------------------------------------ the dispatcher

    def _queue_lock(self, db: Session) -> None:
        if self._postgres:
            db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": QUEUE_LOCK})

    def _check_queue(self, db: Session) -> None:
        waiting = db.scalar(select(func.count()).select_from(JobRecord)
                            .where(JobRecord.status == "queued"))
        if waiting > self.settings.max_queued_jobs:
            db.rollback()
            raise QueueFull(f"{self.settings.max_queued_jobs} jobs are already waiting; "
                            "retry later")

    def _interrupt(self, ids: list[str], owner: str | None,
                   heartbeat_at: dt.datetime | str | None = "any") -> int:
        q = update(JobRecord).where(JobRecord.id.in_(ids), JobRecord.status == "running")
        q = q.where(JobRecord.owner.is_(None) if owner is None else JobRecord.owner == owner)
        if heartbeat_at is None:
            q = q.where(JobRecord.heartbeat_at.is_(None))
        elif heartbeat_at != "any":  # not renewed since it was seen stale
            q = q.where(JobRecord.heartbeat_at == heartbeat_at)
        n = 0
        with self.sessions() as db:
            for job_id in ids:
                n += db.execute(q.where(JobRecord.id == job_id).values(
                    status="interrupted", finished_at=utcnow(),
                    error=INTERRUPTED.replace("{id}", job_id))).rowcount
            db.commit()
        return n

    def _loop(self) -> None:
        next_beat = 0.0
        failures = 0
        while not self._stop.is_set():
            try:
                self._collect()
                if time.monotonic() >= next_beat:
                    self._heartbeat()
                    self.reap()
                    next_beat = time.monotonic() + self.settings.job_heartbeat_s
                self._save()
                self._claim()
                failures = 0
            except Exception as exc:  # the database is away: keep every job, try again
                failures += 1
                log.warning("job dispatcher: %s: %s", type(exc).__name__, exc)
                self._stop.wait(min(5.0, 0.5 * failures))

    def _collect(self) -> None:
        """Wait briefly for messages and exits of the job processes; read them."""
        with self._lock:
            runs = list(self.running.values())
        if not runs:
            self._wake.wait(1.0)
            self._wake.clear()
            return
        wait([r.conn for r in runs if not r.conn.closed] + [r.process.sentinel for r in runs],
             timeout=0.25)
        for run in runs:
            self._drain(run)
            if run.outcome is None and not run.process.is_alive():
                self._drain(run)
                if run.outcome is None:
                    code = run.process.exitcode
                    run.outcome = (("cancelled", "cancelled while running") if run.cancel else
                                   ("interrupted", f"the job's process ended unexpectedly "
                                                   f"(exit code {code}); "
                                                   + INTERRUPTED.replace("{id}", run.job_id)))

    @staticmethod
    def _drain(run: _Running) -> None:
        try:
            while run.outcome is None and not run.conn.closed and run.conn.poll():
                kind, value = run.conn.recv()
                if kind == "progress":
                    run.progress = value
                else:
                    run.outcome = (kind, value)
        except (EOFError, OSError):
            run.conn.close()

    def _save(self) -> None:
        """Write progress (at most once a second per job) and final states."""
        with self._lock:
            runs = list(self.running.values())
        for run in runs:
            if run.outcome is not None:
                kind, value = run.outcome
                with self.sessions() as db:
                    job = db.get(JobRecord, run.job_id)
                    if job is not None and job.status == "running" and job.owner == self.owner:
                        job.finished_at = utcnow()
                        job.cancel_requested = False
                        if kind == "done":
                            problem = self._store_result(db, job, value)
                            if problem is not None:
                                kind, value = "failed", problem
                                job = db.get(JobRecord, run.job_id)
                                job.finished_at = utcnow()
                        if kind != "done":
                            job.status, job.error = kind, str(value)
                        db.commit()
                run.process.join(5)
                run.conn.close()
                with self._lock:
                    self.running.pop(run.job_id, None)
            elif run.progress is not None and time.monotonic() - run.saved_at >= 1.0:
                with self.sessions() as db:
                    db.execute(update(JobRecord)
                               .where(JobRecord.id == run.job_id,
                                      JobRecord.owner == self.owner,
                                      JobRecord.status == "running")
                               .values(progress=run.progress))
                    db.commit()
                run.progress, run.saved_at = None, time.monotonic()

    @staticmethod
    def _store_result(db: Session, job: JobRecord, output: Any) -> str | None:
        """Add a done job's results to the session; None, or why they cannot be stored
        (the session then rolled back). The database being away raises: the dispatcher
        keeps the results and tries again."""
        from service.tasks import TASKS

        try:
            job.result = json.dumps(TASKS[job.kind].finish(db, job, output))
        except (DataError, IntegrityError) as exc:
            problem: Exception = exc
        except (DBAPIError, SQLAlchemyTimeoutError):
            raise
        except Exception as exc:  # e.g. a result that is not JSON
            problem = exc
        else:
            job.status, job.progress = "done", "done"
            return None
        log.error("job %s: result not stored: %r", job.id, problem)
        db.rollback()
        return f"result not stored: {problem!r}"

    def _heartbeat(self) -> None:
        """Renew the leases of this process's jobs; kill those it lost or that were
        cancelled."""
        with self._lock:
            mine = list(self.running)
        if not mine:
            return
        with self.sessions() as db:
            db.execute(update(JobRecord)
                       .where(JobRecord.id.in_(mine), JobRecord.owner == self.owner,
                              JobRecord.status == "running")
                       .values(heartbeat_at=utcnow()))
            rows = db.execute(select(JobRecord.id, JobRecord.status, JobRecord.owner,
                                     JobRecord.cancel_requested)
                              .where(JobRecord.id.in_(mine))).all()
            db.commit()
        for job_id, status, owner, cancel in rows:
            run = self.running.get(job_id)
            if run is None or run.outcome is not None:
                continue
            if status != "running" or owner != self.owner:
                log.warning("job %s: lease lost (now %s); stopping its process", job_id, status)
                self._kill(run)
                run.process.join(5)
                run.conn.close()
                with self._lock:
                    self.running.pop(job_id, None)
            elif cancel:
                self._kill(run, cancel=True)

    def _claim(self) -> None:
        free = self.settings.job_slots - len(self.running)
        if free <= 0 or self._stop.is_set():
            return
        with self.sessions() as db:
            queued = db.scalars(select(JobRecord.id).where(JobRecord.status == "queued")
                                .order_by(JobRecord.created_at).limit(free + 2)).all()
            for job_id in queued:
                if free <= 0:
                    break
                now = utcnow()
                claimed = db.execute(
                    update(JobRecord)
                    .where(JobRecord.id == job_id, JobRecord.status == "queued")
                    .values(status="running", owner=self.owner, heartbeat_at=now,
                            started_at=now, progress="starting")).rowcount
                db.commit()
                if claimed:
                    free -= 1
                    self._launch(db, db.get(JobRecord, job_id))

    def _launch(self, db: Session, job: JobRecord) -> None:
        try:
            params = {"request": json.loads(job.params), "job_id": job.id,
                      "simulations_dir": str(self.settings.simulations_dir.resolve())}
            catalog = self.catalog(db)
            db.rollback()  # no connection held while the process starts
            receive, send = self._context.Pipe(duplex=False)
            process = self._context.Process(
                target=_job_process, name=f"vpp-job-{job.id[:8]}",
                args=(job.kind, params, catalog, send, self.settings.job_nice, os.getpid()))
            process.start()
            send.close()
        except Exception as exc:
            log.exception("job %s could not start", job.id)
            db.execute(update(JobRecord).where(JobRecord.id == job.id).values(
                status="failed", finished_at=utcnow(),
                error=f"could not start: {type(exc).__name__}: {exc}"))
            db.commit()
            return
        with self._lock:
            self.running[job.id] = _Running(job.id, process, receive)

    @staticmethod
    def _kill(run: _Running, cancel: bool = False) -> None:
        run.cancel = run.cancel or cancel
        if run.process.is_alive():
            run.process.kill()  # its own process pool dies with it (PR_SET_PDEATHSIG)
