"""Chinese working-day calendar: weekends, public holidays and make-up working days (调休)."""

from __future__ import annotations

import datetime as dt
import logging
from functools import lru_cache

import chinese_calendar

log = logging.getLogger(__name__)


@lru_cache(maxsize=4096)
def day_kind(day: dt.date) -> tuple[bool, str | None]:
    """Whether ``day`` is a working day, and the statutory holiday it belongs to.

    Uses the State Council schedule shipped in the ``chinesecalendar`` package, so make-up
    working days on weekends count as working days. For years the package does not cover, falls
    back to Monday-Friday with no holidays and logs a warning once per year asked (per
    process: a month of such days is one line, not 31).

    Returns
    -------
    (is_workday, holiday_name) : (bool, str or None)
        ``holiday_name`` is e.g. ``"Spring Festival"``, ``"Labour Day"``, ``"National Day"``
        on days off of that holiday, else None.
    """
    try:
        workday = chinese_calendar.is_workday(day)
        is_holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        _warn_year(day.year)
        return day.weekday() < 5, None
    return bool(workday), (str(name) if is_holiday and name else None)


@lru_cache(maxsize=4096)
def holiday_break(day: dt.date) -> frozenset[str]:
    """The statutory holidays of the break ``day`` is a day off of: the names along the run
    of consecutive named days off around it (one merged break - National Day and the
    Mid-autumn Festival, 1-8 October 2025 - is one holiday for rules that name either);
    empty on other days."""
    if day_kind(day)[1] is None:
        return frozenset()
    names = set()
    for step in (dt.timedelta(days=-1), dt.timedelta(days=1)):
        d = day
        while (name := day_kind(d)[1]) is not None:
            names.add(name)
            d += step
    return frozenset(names)


@lru_cache(maxsize=256)
def _warn_year(year: int) -> None:
    log.warning("no Chinese holiday data for %d: using Mon-Fri as working days, no holidays",
                year)
