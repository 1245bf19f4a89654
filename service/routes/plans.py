"""``/v1/plans``: day-ahead plans solved on request, stored, read back byte for byte."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy.orm import Session

from models.errors import InvalidInputError
from service.auth import Principal
from service.compute import plan_for_request, plan_png
from service.deps import CatalogDep, CurrentKey, SessionDep
from service.operations import initial_state
from service.routing import CheckedRoute
from service.schemas import IsoDate, PlanRequest, PlanSummary
from service.store import Forbidden, NotFound, add_plan, list_plans, readable_plan
from vpp.catalog import Catalog
from vpp.plan_io import plan_csv
from vpp.sites import SITE_ID_PATTERN
from vpp.timebase import horizon

router = APIRouter(prefix="/plans", tags=["plans"], route_class=CheckedRoute)


@router.post("", status_code=201,
             responses={201: {"description": "the plan document with its id"},
                        409: {"description": "no feasible plan; the reasons say why"}})
async def create_plan(req: PlanRequest, request: Request, db: SessionDep, cat: CatalogDep,
                      who: CurrentKey) -> Response:
    """Solve, store and return a day-ahead plan (park keys: own sites only). Without
    ``month_peak_kw`` or ``soc_initial_frac`` the plan starts from the site's stored
    measurements where they say it (``initial_state`` in the plan records the source)."""
    body = await solve_and_store(req, request, db, cat, who)
    plan_id = json.loads(body)["id"]
    return Response(body, status_code=201, media_type="application/json",
                    headers={"Location": f"/v1/plans/{plan_id}"})


async def solve_and_store(req: PlanRequest, request: Request, db: Session, cat: Catalog,
                          who: Principal) -> str:
    """The plan ``req`` asks for, from the site's measured state where the request leaves
    it open, solved on the process's solver thread and stored: its JSON text (the API and
    the dashboard both plan through here)."""
    if not who.can_plan(req.site_id):
        raise Forbidden(f"this key may not plan site {req.site_id}")
    try:
        site = cat.fleet.site(req.site_id)
    except InvalidInputError:
        raise NotFound(f"site {req.site_id} does not exist") from None
    state = await run_in_threadpool(initial_state, db, site, horizon(req.date)[0])
    await run_in_threadpool(db.close)  # no connection held while waiting for the solver
    plan = await request.app.state.workers.solve(plan_for_request, cat, req, state)

    def save() -> str:
        rec = add_plan(db, plan, who.key_id)
        db.commit()
        return rec.body

    return await run_in_threadpool(save)


@router.get("", response_model=list[PlanSummary])
def find_plans(db: SessionDep, who: CurrentKey,
               site_id: Annotated[str | None, Query(pattern=SITE_ID_PATTERN)] = None,
               date: Annotated[IsoDate | None, Query()] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[PlanSummary]:
    """Stored plans this key may read, newest first, by site and first day."""
    return [PlanSummary(id=r.id, site_id=r.site_id, date=r.start_date,
                        created_at=r.created_at, url=f"/v1/plans/{r.id}")
            for r in list_plans(db, who, site_id, date, limit)]


@router.get("/{plan_id}.csv", responses={200: {"content": {"text/csv": {}}}})
def plan_as_csv(plan_id: str, db: SessionDep, who: CurrentKey) -> Response:
    """The plan's intervals as CSV (one row per 15 minutes)."""
    rec = readable_plan(db, who, plan_id)
    return Response(plan_csv(json.loads(rec.body)), media_type="text/csv")


@router.get("/{plan_id}.png", responses={200: {"content": {"image/png": {}}}})
async def plan_as_png(plan_id: str, request: Request, db: SessionDep,
                      who: CurrentKey) -> Response:
    """The plan's chart."""
    rec = await run_in_threadpool(readable_plan, db, who, plan_id)
    plan = json.loads(rec.body)
    await run_in_threadpool(db.close)
    png = await request.app.state.workers.plot(plan_png, plan)
    return Response(png, media_type="image/png")


@router.get("/{plan_id}")
def read_plan(plan_id: str, db: SessionDep, who: CurrentKey) -> Response:
    """The stored plan, byte for byte as it was returned when created."""
    return Response(readable_plan(db, who, plan_id).body, media_type="application/json")
