"""The one place the dashboard asks for measured data: month-to-date peak, subsidy accrued
and plan against actual.

Measurement storage and the site state computed from it (``vpp/state.py``, ``GET /v1/sites/
{id}/state``) are not part of this code base yet. Until they are, every function here
answers ``None`` and the pages say "no measurements yet" instead of showing a number; when
they arrive, only this module changes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from vpp.catalog import Catalog

#: Whether this build stores measurements at all (the pages say which case applies).
AVAILABLE = False


@dataclass(frozen=True)
class MonthToDate:
    """A site's measured month so far."""

    peak_kw: float
    subsidy_accrued_yuan: float
    discharge_kwh: float
    last_measurement: dt.datetime | None


def month_to_date(db: Session, catalog: Catalog, site_ids: list[str],
                  now: dt.datetime) -> dict[str, MonthToDate | None]:
    """The measured month-to-date of each site, None where there are no measurements."""
    return dict.fromkeys(site_ids)


def plan_vs_actual(db: Session, catalog: Catalog, site_id: str,
                   day: dt.date) -> dict[str, Any] | None:
    """The day's measured import, SOC and discharge beside the plan's, or None."""
    return None
