"""``/v1/sites``: the fleet and the sites registered through the API, and their subsidy."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from models.errors import InvalidInputError
from service.deps import CatalogDep, CurrentKey, SessionDep
from service.routing import CheckedRoute
from service.schemas import IsoDate, SiteSummary
from service.store import Forbidden, api_site_ids, latest_plans, put_site, readable_site
from vpp.sites import SITE_ID_PATTERN, Site
from vpp.timebase import TZ

router = APIRouter(prefix="/sites", tags=["sites"], route_class=CheckedRoute)
SitePath = Annotated[str, Path(pattern=SITE_ID_PATTERN)]


@router.get("", response_model=list[SiteSummary])
def list_sites(db: SessionDep, cat: CatalogDep, who: CurrentKey) -> list[SiteSummary]:
    """The sites this key may read."""
    api_ids = api_site_ids(db)
    out = []
    for s in cat.fleet.sites:
        if who.can_read(s.id):
            st = s.storage
            out.append(SiteSummary(
                id=s.id, name=s.name, district=s.district, pv_kwp=s.pv_dc_kwp,
                storage_kw=st.power_kw if st else None,
                storage_kwh=st.energy_kwh if st else None,
                source="api" if s.id in api_ids else "fleet file"))
    return out


@router.get("/{site_id}")
def read_site(site_id: SitePath, cat: CatalogDep, who: CurrentKey) -> dict[str, Any]:
    """The full site document (the fleet file's schema)."""
    return readable_site(cat, who, site_id).model_dump(mode="json")


@router.put("/{site_id}")
def register_site(site_id: SitePath, body: Site, request: Request, db: SessionDep,
                  who: CurrentKey) -> dict[str, Any]:
    """Register or replace a site (admin keys); validated exactly like the fleet file
    (field ranges here, cross-field rules and known tariffs/archetypes after)."""
    if who.role != "admin":
        raise Forbidden("only admin keys register or update sites")
    return put_site(db, request.app.state.catalog, site_id, body).model_dump(mode="json")


@router.get("/{site_id}/subsidy")
def subsidy(site_id: SitePath, db: SessionDep, cat: CatalogDep,
            who: CurrentKey, start: Annotated[IsoDate, Query()],
            end: Annotated[IsoDate, Query()]) -> dict[str, Any]:
    """The site's subsidy window and, from its stored plans in [start, end], the
    discharge [kWh] and subsidy [yuan] they project."""
    if end < start:
        raise InvalidInputError(f"end={end} must not be before start={start}",
                                "invalid period")
    site = readable_site(cat, who, site_id)
    policy = cat.policy_for(site)
    w = cat.paid_window(site)
    latest = latest_plans(db, site_id, start, end)
    return {
        "site_id": site_id, "eligible": w is not None,
        "first_paid_day": w[0].isoformat() if w else None,
        "last_paid_day": w[1].isoformat() if w else None,
        "rate_yuan_per_kwh": policy.rate_yuan_per_kwh, "policy_version": policy.version,
        "planned_days": len(latest),
        "planned_discharge_kwh": sum(p["kpis"]["discharge_kwh"] for p in latest.values()),
        "planned_subsidy_yuan": sum(p["kpis"]["subsidy_yuan"] for p in latest.values()),
        "timezone": TZ,
    }
