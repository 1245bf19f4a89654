"""``/v1/tariffs``: the tariff in force on a day and its 15-minute prices."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from service.deps import CatalogDep, CurrentKey
from service.routing import CheckedRoute
from service.schemas import IsoDate
from service.store import readable_site
from vpp.sites import SITE_ID_PATTERN
from vpp.tariffs import price_series
from vpp.timebase import horizon

router = APIRouter(prefix="/tariffs", tags=["tariffs"], route_class=CheckedRoute)


@router.get("")
def tariff_of_day(cat: CatalogDep, who: CurrentKey, date: Annotated[IsoDate, Query()],
                  site_id: Annotated[str | None, Query(pattern=SITE_ID_PATTERN)] = None,
                  ) -> dict[str, Any]:
    """Tariff in force on ``date`` and its 15-minute import prices [yuan/kWh]."""
    site = readable_site(cat, who, site_id) if site_id else None
    tariff_id = site.tariff_id if site else sorted(cat.tariffs.ids)[0]
    t = cat.tariffs.select(tariff_id, date)
    idx = horizon(date)
    kva = site.grid.transformer_kva if site else 1000.0
    prices = price_series(cat.tariffs, tariff_id, idx, kva)
    return {"tariff": t.describe(), "timestamps": [x.isoformat() for x in idx],
            "period": [str(p) for p in prices["period"]],
            "import_price_yuan_per_kwh": [float(v) for v in
                                          prices["import_price_yuan_per_kwh"]]}
