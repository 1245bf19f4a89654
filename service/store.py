"""What the routes and jobs read and write: plain functions over a SQLAlchemy session.

Each function leaves the transaction to its caller, except where it says it commits.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from typing import Any

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from models.errors import InvalidInputError
from service.auth import Principal
from service.db import JobRecord, PlanRecord, SiteRecord
from service.schemas import JobStatus
from vpp.catalog import Catalog
from vpp.plan_io import plan_json
from vpp.sites import Site, parse_site


class NotFound(LookupError):
    """No such thing for this caller (a park key learns nothing of other parks')."""


class Forbidden(PermissionError):
    """The key may not do this."""


def catalog_with_sites(db: Session, base: Catalog) -> Catalog:
    """The shipped catalog with the sites registered through the API."""
    records = db.scalars(select(SiteRecord)).all()
    if not records:
        return base
    sites = {s.id: s for s in base.fleet.sites}
    for r in records:
        sites[r.id] = Site.model_validate_json(r.body)
    return dataclasses.replace(base, fleet=base.fleet.model_copy(
        update={"sites": tuple(sites.values())}))


def api_site_ids(db: Session) -> set[str]:
    return set(db.scalars(select(SiteRecord.id)).all())


def readable_site(catalog: Catalog, who: Principal, site_id: str) -> Site:
    if not who.can_read(site_id):
        raise Forbidden(f"this key may not read site {site_id}")
    try:
        return catalog.fleet.site(site_id)
    except InvalidInputError:
        raise NotFound(f"site {site_id} does not exist") from None


def put_site(db: Session, base: Catalog, site_id: str, body: Site) -> Site:
    """Validate ``body`` like the fleet file and store it as site ``site_id`` (commits)."""
    if body.id != site_id:
        raise InvalidInputError(f"id={body.id!r} must equal the path's {site_id!r}",
                                "invalid site")
    site = parse_site(body.model_dump(), tariff_ids=base.tariffs.ids,
                      archetypes=set(base.archetypes))
    rec = db.get(SiteRecord, site_id)
    text = site.model_dump_json()
    if rec is None:
        db.add(SiteRecord(id=site_id, body=text))
    else:
        rec.body = text
        rec.updated_at = dt.datetime.now(dt.UTC)
    db.commit()
    return site


def add_plan(db: Session, plan: dict[str, Any], key_id: int | None) -> PlanRecord:
    """A new stored plan (not yet committed): the document with its ``id``, as JSON text."""
    plan_id = str(uuid.uuid4())
    rec = PlanRecord(id=plan_id, site_id=plan["site_id"], start_date=plan["start"][:10],
                     created_by=key_id, body=plan_json({"id": plan_id, **plan}))
    db.add(rec)
    return rec


def _plans_visible_to(who: Principal) -> Any:
    """The rule of which stored plans a key sees, as SQL: those of the sites it may read."""
    return PlanRecord.site_id.in_(sorted(who.site_ids)) if who.role == "park" else true()


def readable_plan(db: Session, who: Principal, plan_id: str) -> PlanRecord:
    rec = db.get(PlanRecord, plan_id)
    if rec is None or not who.can_read(rec.site_id):
        # a park key learns nothing about other parks' plans, not even that they exist
        raise NotFound(f"plan {plan_id} does not exist")
    return rec


def list_plans(db: Session, who: Principal, site_id: str | None, date: dt.date | None,
               limit: int) -> list[PlanRecord]:
    """Stored plans this key may read, newest first."""
    q = select(PlanRecord).order_by(PlanRecord.created_at.desc()).limit(limit)
    if site_id:
        q = q.where(PlanRecord.site_id == site_id)
    if date:
        q = q.where(PlanRecord.start_date == date.isoformat())
    return list(db.scalars(q.where(_plans_visible_to(who))).all())


def latest_plans(db: Session, site_id: str, start: dt.date, end: dt.date) -> dict[str, dict]:
    """The newest stored plan of each first day in [start, end], by day."""
    q = select(PlanRecord).where(PlanRecord.site_id == site_id,
                                 PlanRecord.start_date >= start.isoformat(),
                                 PlanRecord.start_date <= end.isoformat())
    latest: dict[str, dict] = {}
    for r in db.scalars(q.order_by(PlanRecord.created_at)).all():
        latest[r.start_date] = json.loads(r.body)
    return latest


def job_status(rec: JobRecord) -> JobStatus:
    where = "simulations" if rec.kind == "simulation" else "jobs"
    return JobStatus(id=rec.id, kind=rec.kind, status=rec.status, progress=rec.progress,
                     error=rec.error, result=json.loads(rec.result) if rec.result else None,
                     url=f"/v1/{where}/{rec.id}", created_at=rec.created_at,
                     started_at=rec.started_at, finished_at=rec.finished_at,
                     cancel_requested=bool(rec.cancel_requested))


def _jobs_visible_to(who: Principal) -> Any:
    """The rule of which jobs a key sees: its own, or any for evaluator and admin keys."""
    return JobRecord.created_by == who.key_id if who.role == "park" else true()


def readable_job(rec: JobRecord | None, who: Principal, job_id: str,
                 kind: str | None = None) -> JobRecord:
    """The job if this key may see it (its own, or any for evaluator and admin keys)."""
    if (rec is None or (kind is not None and rec.kind != kind)
            or (who.role == "park" and rec.created_by != who.key_id)):
        raise NotFound(f"{kind or 'job'} {job_id} does not exist")
    return rec


def may_change_job(rec: JobRecord, who: Principal) -> bool:
    """Whether this key may cancel or resume the job: the key that submitted it, or an
    admin key."""
    return who.role == "admin" or rec.created_by == who.key_id


def owned_job(rec: JobRecord | None, who: Principal, job_id: str,
              kind: str | None = None) -> JobRecord:
    """The job if this key may see it (:func:`readable_job`, 404) and change it
    (:func:`may_change_job`, 403)."""
    rec = readable_job(rec, who, job_id, kind)
    if not may_change_job(rec, who):
        raise Forbidden(f"only the key that submitted a {kind or 'job'}, or an admin key, may "
                        "change it")
    return rec


def list_jobs(db: Session, who: Principal, kind: str, limit: int = 50,
              status: str | None = None) -> list[JobRecord]:
    """The jobs of ``kind`` this key may see (the rule of :func:`readable_job`), newest
    first."""
    q = (select(JobRecord).where(JobRecord.kind == kind, _jobs_visible_to(who))
         .order_by(JobRecord.created_at.desc()).limit(limit))
    if status:
        q = q.where(JobRecord.status == status)
    return list(db.scalars(q).all())


def readable_sites(catalog: Catalog, who: Principal) -> list[Site]:
    """The sites of the catalog this key may read, in fleet order."""
    return [s for s in catalog.fleet.sites if who.can_read(s.id)]


def plans_of_day(db: Session, who: Principal, date: dt.date,
                 site_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """The newest stored plan of ``date`` of each site this key may read (the rule of
    :func:`list_plans`), parsed, by site."""
    q = (select(PlanRecord.site_id, PlanRecord.body)
         .where(PlanRecord.start_date == date.isoformat())
         .order_by(PlanRecord.created_at.desc()))
    q = q.where(_plans_visible_to(who))
    if site_ids is not None:
        q = q.where(PlanRecord.site_id.in_(site_ids))
    out: dict[str, dict[str, Any]] = {}
    for site_id, body in db.execute(q).all():
        if site_id not in out:
            out[site_id] = json.loads(body)
    return out
