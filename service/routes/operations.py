"""``/v1/sites/{id}/...`` of live operation: measurements in, the measured state, the latest
set-points, plan against actual and the subsidy ledger (see docs/operations.md)."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Path, Query, Request
from pydantic import AwareDatetime

from models.errors import InvalidInputError
from service.db import utcnow
from service.deps import CatalogDep, CurrentKey, SessionDep
from service.operations import (
    ingest,
    latest_setpoints,
    ledger_of,
    plan_vs_actual_of,
    state_of,
)
from service.routing import CheckedRoute
from service.schemas import (
    SUPPORTED_DATES,
    SUPPORTED_RANGE_TEXT,
    IsoDate,
    IsoMonth,
    MeasurementBatchRequest,
)
from service.store import Forbidden, NotFound, readable_site
from vpp.catalog import Catalog
from vpp.sites import SITE_ID_PATTERN, Site
from vpp.timebase import TZ

router = APIRouter(prefix="/sites", tags=["operations"], route_class=CheckedRoute)
SitePath = Annotated[str, Path(pattern=SITE_ID_PATTERN)]
At = Annotated[AwareDatetime | None, Query(
    description="the clock to read the state at (ISO 8601 with offset); default now")]


def _site(cat: Catalog, site_id: str) -> Site:
    try:
        return cat.fleet.site(site_id)
    except InvalidInputError:
        raise NotFound(f"site {site_id} does not exist") from None


def _check_at(at: AwareDatetime | None, what: str) -> None:
    """A 422 naming ``at`` when it lies outside the supported dates."""
    if at is not None and not (SUPPORTED_DATES[0] <= at.astimezone(ZoneInfo(TZ)).date()
                               <= SUPPORTED_DATES[1]):
        raise InvalidInputError(f"at={at.isoformat()}: outside the supported dates "
                                f"{SUPPORTED_RANGE_TEXT}", f"invalid {what} query")


@router.post("/{site_id}/measurements",
             responses={200: {"description": "stored: rows, first and last time, fields, "
                                             "gaps found (reported, not rejected)"}})
def post_measurements(site_id: SitePath, body: MeasurementBatchRequest, db: SessionDep,
                      cat: CatalogDep, who: CurrentKey, request: Request,
                      background: BackgroundTasks) -> dict[str, Any]:
    """Store a batch of measurements (park keys: own sites only; admin). Upserted by
    timestamp; a 422 lists every bad row and stores nothing. After the answer, the app's
    ``measurement_hooks`` run with the site's id (the dashboard precomputes its state)."""
    if not who.can_write(site_id):
        raise Forbidden(f"this key may not write measurements of site {site_id}")
    site = _site(cat, site_id)
    batch = ingest(db, site, body.rows, body.interval_minutes, utcnow())
    for hook in getattr(request.app.state, "measurement_hooks", ()):
        background.add_task(hook, site_id)
    return {"site_id": site_id, **batch.summary()}


@router.get("/{site_id}/state")
def read_state(site_id: SitePath, db: SessionDep, cat: CatalogDep, who: CurrentKey,
               at: At = None,
               month: Annotated[IsoMonth | None, Query(description=(
                   "billing month (YYYY-MM) to read instead of the month of `at`: a month "
                   "over at `at` is read to its end (its bill), with the SOC and freshness "
                   "as of then"))] = None) -> dict[str, Any]:
    """The site's measured state: SOC now, month-to-date peak and its demand charge, energy
    cost, discharge and subsidy this month, freshness and gaps (units in the names); with
    ``month``, those of that billing month (a closed month: its final peak and charges)."""
    readable_site(cat, who, site_id)
    _check_at(at, "state")
    try:
        return state_of(db, cat, site_id, at or utcnow(), month).to_dict()
    except InvalidInputError as exc:  # e.g. no tariff in force at that time
        if at is None:
            raise
        raise exc.naming(f"at={at.isoformat()}: ", "invalid state query") from None


@router.get("/{site_id}/setpoints",
            responses={404: {"description": "no such site, or no set-points yet"}})
def read_setpoints(site_id: SitePath, db: SessionDep, cat: CatalogDep,
                   who: CurrentKey) -> dict[str, Any]:
    """The latest control step's set-points: the battery set-point of each 15-minute
    interval of its horizon [kW, discharge positive], planned import and SOC, the defended
    peak and the certified gap."""
    readable_site(cat, who, site_id)
    doc = latest_setpoints(db, site_id)
    if doc is None:
        raise NotFound(f"no set-points stored for site {site_id} yet (vpp operate, or the "
                       "service's scheduled steps once measurements arrive)")
    return doc


@router.get("/{site_id}/plan-vs-actual")
def read_plan_vs_actual(site_id: SitePath, db: SessionDep, cat: CatalogDep, who: CurrentKey,
                        date: Annotated[IsoDate, Query()]) -> dict[str, Any]:
    """Planned (the control steps' set-points, else the day's stored plan) against metered
    import, battery power, SOC and PV per 15 minutes of a day, with totals: energies [kWh],
    peaks [kW], the import's energy cost and the subsidy earned [yuan]."""
    site = readable_site(cat, who, site_id)
    return plan_vs_actual_of(db, site, date, cat)


@router.get("/{site_id}/subsidy-ledger")
def read_subsidy_ledger(
        site_id: SitePath, db: SessionDep, cat: CatalogDep, who: CurrentKey,
        first: Annotated[IsoMonth | None, Query(alias="from", description=(
            "first month (YYYY-MM); default: the month of the station's grid connection "
            "(January of now's year for a site without storage)"))] = None,
        last: Annotated[IsoMonth | None, Query(alias="to", description=(
            "last month (YYYY-MM); default: the month of now"))] = None,
        at: At = None) -> dict[str, Any]:
    """The site's storage-subsidy ledger from its measurements: per calendar month with
    data, whether it lies in the paid window, metered and counted discharge [kWh], rate
    [yuan/kWh], subsidy [yuan] and coverage [intervals], with the totals in the window and
    the window's months left."""
    readable_site(cat, who, site_id)
    _check_at(at, "ledger")
    if first is not None and last is not None and first > last:
        raise InvalidInputError(f"from={first:%Y-%m} is after to={last:%Y-%m}",
                                "invalid ledger query")
    return ledger_of(db, cat, site_id, at or utcnow(), first, last).to_dict()
