"""Control steps on a schedule: APScheduler runs :meth:`OperateScheduler.tick` every
``operate_cadence_minutes`` (``operate_delay_s`` after each boundary, so that the interval
just ended has arrived), in the scheduler's own thread - never a request's.

A tick operates every site with a measurement in the last ``operate_max_age_minutes`` and a
battery in service, one site after the other (one step at a time per site; the job never
overlaps itself: ``max_instances=1``, missed runs coalesced). Before a site's step the tick
takes the site's lease for the decision interval in the database
(:func:`service.operations.claim_step`): with ``vpp serve --workers N`` every process runs
a scheduler, and the lease lets exactly one of them decide each site and interval. The
solve itself runs on the process's solver thread (:class:`service.compute.Workers`), where
HiGHS runs for plans too (HiGHS is not used from two threads of a process at once);
controllers stay in the process between ticks and warm-start.

``vpp operate --loop`` uses the same trigger (:func:`trigger`) with a blocking scheduler.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db import utcnow
from service.operations import (
    add_setpoints,
    claim_step,
    finish_step,
    fresh_sites,
    month_rows,
)
from service.procs import owner_id
from vpp.catalog import Catalog
from vpp.operate import Operator
from vpp.options import OperateOptions
from vpp.problem import storage_in_service
from vpp.timebase import TZ

log = logging.getLogger(__name__)


def trigger(cadence_minutes: int, delay_s: float) -> Any:
    """An APScheduler trigger firing ``delay_s`` after every ``cadence_minutes`` boundary
    of the local clock (00:00, 00:15, ... for 15 minutes)."""
    from apscheduler.triggers.interval import IntervalTrigger

    now = pd.Timestamp(utcnow()).tz_convert(TZ)
    first = now.floor(f"{cadence_minutes}min") + pd.Timedelta(seconds=delay_s)
    return IntervalTrigger(minutes=cadence_minutes, start_date=first.to_pydatetime(),
                           timezone=TZ)


def slot_of(now: dt.datetime, cadence_minutes: int) -> dt.datetime:
    """The cadence slot (its start, UTC) that ``now`` falls in."""
    return pd.Timestamp(now).tz_convert(TZ).floor(f"{cadence_minutes}min").to_pydatetime()


def due_sites(db: Session, catalog: Catalog, now: dt.datetime, max_age_minutes: float,
              ) -> list[str]:
    """Sites of the catalog with fresh measurements and a battery in service at ``now``."""
    day = pd.Timestamp(now).tz_convert(TZ).date()
    known = {s.id: s for s in catalog.fleet.sites}
    since = now - dt.timedelta(minutes=max_age_minutes)
    return [i for i in fresh_sites(db, since)
            if i in known and storage_in_service(known[i], day)]


def run_step(sessions: sessionmaker, operator: Operator, site_id: str, now: dt.datetime,
             slot: dt.datetime, owner: str, lease_s: float, source: str,
             compute: Callable[..., Any] | None = None) -> dict[str, Any] | None:
    """Take the site's lease for ``slot``, step, store the set-points, release; None when
    another process has the site or the slot is done. ``compute(fn, *args)`` runs the step
    (default: here)."""
    with sessions() as db:
        if not claim_step(db, site_id, owner, slot, lease_s, now):
            return None
    done = False
    try:
        with sessions() as db:
            rows = month_rows(db, site_id, now)
        step = compute(operator.step, site_id, rows, now) if compute else operator.step(
            site_id, rows, now)
        with sessions() as db:
            add_setpoints(db, step, source)
            finish_step(db, site_id, owner, slot, done=True)
            db.commit()
        done = True
        return step.to_dict()
    finally:
        if not done:
            with sessions() as db:
                finish_step(db, site_id, owner, slot, done=False)
                db.commit()


class OperateScheduler:
    """The service's scheduled control steps (see the module docstring)."""

    def __init__(self, sessions: sessionmaker, settings: Settings,
                 catalog: Callable[[Session], Catalog], solver: Executor | None = None,
                 ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.catalog = catalog
        self.solver = solver
        self.owner = owner_id()
        self.options = OperateOptions(horizon_hours=settings.operate_horizon_hours,
                                      cadence_minutes=settings.operate_cadence_minutes,
                                      max_age_minutes=settings.operate_max_age_minutes)
        self.operator: Operator | None = None
        self.scheduler: Any = None
        #: the last round of this process: when, its slot, and sites done / taken by
        #: another process / failed (for /v1/health and the log)
        self.last_round: dict[str, Any] | None = None

    def start(self) -> None:
        """Start the schedule (nothing unless ``operate_enabled``; idempotent)."""
        if not self.settings.operate_enabled or self.scheduler is not None:
            return
        from apscheduler.schedulers.background import BackgroundScheduler

        s = self.settings
        self.scheduler = BackgroundScheduler(timezone=TZ)
        self.scheduler.add_job(self.tick, trigger(s.operate_cadence_minutes, s.operate_delay_s),
                               id="operate", name="control steps", max_instances=1,
                               coalesce=True, misfire_grace_time=s.operate_cadence_minutes * 30)
        self.scheduler.start()
        log.info("control steps every %d min", s.operate_cadence_minutes)

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None

    def _compute(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.solver is None:
            return fn(*args)
        return self.solver.submit(fn, *args).result()

    def tick(self, now: dt.datetime | None = None) -> dict[str, str]:
        """One round: every due site's step (see the module docstring); what became of
        each site (``done``, ``taken`` by another process or slot done, or the error)."""
        now = now or utcnow()
        s = self.settings
        slot = slot_of(now, s.operate_cadence_minutes)
        with self.sessions() as db:
            catalog = self.catalog(db)
            sites = due_sites(db, catalog, now, s.operate_max_age_minutes)
        if self.operator is None:
            self.operator = Operator(catalog, self.options)
        self.operator.catalog = catalog  # sites registered since are known
        out: dict[str, str] = {}
        for site_id in sites:
            try:
                r = run_step(self.sessions, self.operator, site_id, now, slot, self.owner,
                             s.operate_lease_s, "scheduler", self._compute)
                out[site_id] = "done" if r is not None else "taken"
            except Exception as exc:  # one site's failure never stops the others
                log.warning("control step of %s failed: %s: %s", site_id,
                            type(exc).__name__, exc)
                out[site_id] = f"{type(exc).__name__}: {exc}"
        counts = {k: sum(1 for v in out.values() if v == k) for k in ("done", "taken")}
        counts["failed"] = len(out) - counts["done"] - counts["taken"]
        self.last_round = {"at": now.isoformat(), "slot": slot.isoformat(), **counts}
        if out:
            log.info("control steps for %s: %d done, %d taken by another process, %d failed",
                     slot.isoformat(), counts["done"], counts["taken"], counts["failed"])
        return out

    def status(self) -> dict[str, Any]:
        """Whether the control steps run in this process, their cadence and last round."""
        return {"enabled": self.scheduler is not None,
                "cadence_minutes": self.settings.operate_cadence_minutes,
                "last_round": self.last_round}
