"""The one place the dashboard reads measured data: each site's month so far for the fleet
overview, and a site's state, plan against actual and latest set-points for its page.

Every number comes from :mod:`vpp.state` (which counts money with :mod:`vpp.accounting`,
prices with :mod:`vpp.tariffs` and the subsidy with :mod:`vpp.subsidy`): the overview's
month-to-date peak, demand charge, discharge and subsidy are
:func:`vpp.state.month_to_date`, the core :func:`vpp.state.site_state` (``GET
/v1/sites/{id}/state``) builds on, so the overview, the site page and the API cannot
disagree.

**Why a cache, and what it is keyed by.** The peak is the highest 15-minute *average*
import (rows may be 1, 3 or 5 minutes, or counter readings: a ``MAX`` over stored rows
would be a second, wrong definition) and the subsidy depends on each interval's tariff
period, so both need the month's 15-minute series (:func:`vpp.measurements.to_intervals`).
For the 30 pilots with a month of 15-minute rows (89,280), reading them in one statement
takes 0.4-0.5 s on SQLite and counting the 30 months about 0.3 s (2 shared cores, load 3;
the first overview after a start, ``bench/dashboard.py`` on 07-31, takes about 1 s, five
times the page's 200 ms budget) - so the overview does not recompute them per request. It keeps
each site's :class:`vpp.state.MonthToDate` in a per-process cache keyed by what decides it:

* the site's **measurement mark** (:func:`service.operations.measurement_marks`): its
  measurement version, raised in the transaction of every write of its rows (corrections of
  old rows included), and its newest row in the month so far - one statement of two index
  lookups per site for the whole page, no measurement row read;
* the **settled cut** (:func:`vpp.state.settled_cut`): with the same rows the month-to-date
  changes only when the month so far reaches a new interval holding data;
* the billing month and the site's own document (a site changed through the API).

**Which month.** A page of a day shows that day's billing month (:func:`billing_month`) as
of :func:`as_of`: now while the day runs, else the day's end. On a month's last day that end
is 00:00 of the next month, so the month is named by the day, never taken from the instant:
the page of 07-31 shows July to its end (:func:`vpp.state.month_cut`), the evaluator's page
of 12-31 that year's ledger.

Sites whose key changed are read together in **one batched statement**
(:func:`service.operations.read_measurements_many`) and computed; the data's age is
recomputed for every request. So that the first look after new data does not pay for it,
storing a batch through the API recomputes the site's state right after the response
(:func:`warm`, a background task of ``POST /v1/sites/{id}/measurements``); rows written
another way (``vpp measurements import``) or in another ``--workers`` process are
recomputed by the first page that needs them.

The evaluator page's subsidy ledger (:func:`ledgers_of`) is :func:`vpp.ledger.subsidy_ledger`
of the page's calendar year (the API's ``GET /v1/sites/{id}/subsidy-ledger``), cached by the
same marks.

The site page reads one site: its :func:`vpp.state.site_state` (cached by the same mark and
its 15-minute interval), :func:`vpp.state.plan_vs_actual` of the day and the latest
set-points.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from models.errors import InvalidInputError
from service.operations import (
    LOOKBACK,
    MeasurementMark,
    latest_setpoints,
    measurement_marks,
    plan_vs_actual_of,
    read_measurements_many,
)
from vpp.catalog import Catalog
from vpp.ledger import Ledger, subsidy_ledger, year_start
from vpp.sites import Site
from vpp.state import (
    MonthToDate,
    SiteState,
    data_age_s,
    interval_floor,
    month_end,
    month_start,
    month_to_date,
    settled_cut,
    site_state,
)
from vpp.timebase import INTERVAL_MINUTES, TZ

log = logging.getLogger(__name__)

#: Entries a server process keeps (a month-to-date and a state per site and key: 30 sites
#: viewed over many days fit many times over).
CACHE_ENTRIES = 4096


class MeasuredCache:
    """A bounded, thread-safe map of computed month-to-dates and site states (least
    recently used out first), one per server process."""

    def __init__(self, max_entries: int = CACHE_ENTRIES) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


def local_now() -> pd.Timestamp:
    """Now in Changzhou (Asia/Shanghai)."""
    return pd.Timestamp(dt.datetime.now(dt.UTC)).tz_convert(TZ)


def as_of(day: dt.date, clock: dt.datetime | None = None) -> pd.Timestamp:
    """The time a page of ``day`` shows measured data at: now (``clock``) while the day runs
    or before it, the day's end (00:00 of the next day) once it is over (local time)."""
    now = pd.Timestamp(clock).tz_convert(TZ) if clock is not None else local_now()
    end = pd.Timestamp(day + dt.timedelta(days=1)).tz_localize(TZ)
    return min(now, end)


def billing_month(day: dt.date) -> pd.Timestamp:
    """00:00 on the first day of ``day``'s billing month (local): the month a page of
    ``day`` shows, also when :func:`as_of` is already the next month's first instant (the
    page of a month's last day, once it is over)."""
    return pd.Timestamp(day.replace(day=1)).tz_localize(TZ)


def _site_key(site: Site) -> int:
    """What of the site decides its numbers: its whole document (sites can be changed
    through the API), hashed."""
    return hash(site.model_dump_json())


def _month_key(site: Site, first: pd.Timestamp, now: pd.Timestamp,
               mark: MeasurementMark) -> tuple:
    return ("month", site.id, _site_key(site), first.isoformat(),
            settled_cut(now, mark.last_at).isoformat(), mark.version, mark.last_at)


def _state_key(site: Site, first: pd.Timestamp, now: pd.Timestamp,
               mark: MeasurementMark) -> tuple:
    return ("state", site.id, _site_key(site), first.isoformat(),
            interval_floor(now).isoformat(), mark.version, mark.last_at)


def _range(first: pd.Timestamp, now: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The rows the billing month starting at ``first`` reads at ``now``
    (:func:`service.operations.month_rows`, :func:`vpp.state.month_rows`): from an hour
    before the month to ``now``, at most one interval past the month's end. Empty (the end
    before the start) for a month that begins after ``now``."""
    return first - LOOKBACK, min(now, month_end(first) + pd.Timedelta(minutes=INTERVAL_MINUTES))


@dataclasses.dataclass(frozen=True)
class Measured:
    """What the overview shows of one site: its month so far (None with ``error``: it could
    not be counted, e.g. no tariff in force that month) and the data's age at the page's
    time [s]."""

    month: MonthToDate | None
    age_s: float | None
    error: str | None = None


def month_to_date_of(db: Session, catalog: Catalog, sites: Sequence[Site], now: pd.Timestamp,
                     cache: MeasuredCache, first: pd.Timestamp | None = None,
                     ) -> dict[str, Measured | None]:
    """Each site's measured billing month starting at ``first`` (default: the month
    containing ``now``) so far at ``now`` (:func:`vpp.state.month_to_date`), None for a site
    without a row in it: one statement of marks, then one batched read of the sites whose
    cached value is out of date (see the module docstring)."""
    first = month_start(now) if first is None else first
    lo, hi = _range(first, now)
    marks = measurement_marks(db, [s.id for s in sites], lo, hi)
    out: dict[str, Measured | None] = {}
    missing: dict[str, tuple] = {}  # site id: cache key
    for s in sites:
        mark = marks[s.id]
        if mark.last_at is None:
            out[s.id] = None
            continue
        key = _month_key(s, first, now, mark)
        month = cache.get(key)
        if month is None:
            missing[s.id] = key
        else:
            out[s.id] = Measured(month, data_age_s(month.data_until, now))
    if missing:
        frames = read_measurements_many(db, list(missing), lo, hi)
        for sid, key in missing.items():
            try:
                month = month_to_date(catalog, sid, frames[sid], now, first)
            except InvalidInputError as exc:
                out[sid] = Measured(None, None, str(exc))
                continue
            cache.put(key, month)
            out[sid] = Measured(month, data_age_s(month.data_until, now))
    return {s.id: out[s.id] for s in sites}


def state_of_site(db: Session, catalog: Catalog, site: Site, now: pd.Timestamp,
                  cache: MeasuredCache, first: pd.Timestamp | None = None,
                  ) -> SiteState | None:
    """The site's :func:`vpp.state.site_state` at ``now`` of the billing month starting at
    ``first`` (default: the month containing ``now``); None without a row in that month.
    Cached by the site's mark and the 15-minute interval of ``now`` (the clock and the
    data's age are set for ``now``); also fills the overview's entry of the site.

    Raises
    ------
    InvalidInputError
        No tariff in force in the billing month.
    """
    first = month_start(now) if first is None else first
    lo, hi = _range(first, now)
    mark = measurement_marks(db, [site.id], lo, hi)[site.id]
    if mark.last_at is None:
        return None
    key = _state_key(site, first, now, mark)
    state = cache.get(key)
    if state is None:
        rows = read_measurements_many(db, [site.id], lo, hi)[site.id]
        state = site_state(catalog, site.id, rows, now, first)
        cache.put(key, state)
        month = MonthToDate(**{f.name: getattr(state, f.name)
                               for f in dataclasses.fields(MonthToDate)})
        cache.put(_month_key(site, first, now, mark), month)
    return dataclasses.replace(state, now=now.isoformat(),
                               age_s=data_age_s(state.data_until, now))


def site_panel(db: Session, catalog: Catalog, site: Site, day: dt.date,
               cache: MeasuredCache, clock: dt.datetime | None = None) -> dict[str, Any]:
    """The site page's measured part for ``day``: ``as_of`` (the page's time), ``state``
    (:class:`vpp.state.SiteState` of the day's billing month, or None) or ``state_error``,
    ``actual`` (:func:`vpp.state.plan_vs_actual` of the day, priced; None when the day has
    no metered interval) and ``setpoints`` (the latest control step's, or None)."""
    now = as_of(day, clock)
    state, error = None, None
    try:
        state = state_of_site(db, catalog, site, now, cache, billing_month(day))
    except InvalidInputError as exc:
        error = str(exc)
    pva = plan_vs_actual_of(db, site, day, catalog)
    known = any(v is not None for v in (*pva["actual"]["grid_import_kw"],
                                        *pva["actual"]["battery_kw"],
                                        *pva["actual"]["soc_kwh"], *pva["actual"]["pv_kw"]))
    return {"as_of": now, "state": state, "state_error": error,
            "actual": pva if known else None, "setpoints": latest_setpoints(db, site.id)}


@dataclasses.dataclass(frozen=True)
class LedgerOfYear:
    """What the evaluator page shows of one site: its subsidy ledger of a calendar year up
    to the page's time (:func:`vpp.ledger.subsidy_ledger`; None with ``error``: a month
    could not be counted, e.g. no tariff in force)."""

    ledger: Ledger | None
    error: str | None = None


def ledgers_of(db: Session, catalog: Catalog, sites: Sequence[Site], now: pd.Timestamp,
               cache: MeasuredCache, year: int | None = None) -> dict[str, LedgerOfYear]:
    """The subsidy ledger of calendar year ``year`` (default: ``now``'s), from January (the
    annual cap's budget) to December or ``now``, of each site with a measured month in it
    (the others are left out, also a site whose rows in the read range lie only in the hour
    before January or after December; the page of 12-31 is as of 00:00 on January 1st, and
    still shows its own year): one statement of marks, then one batched read of the sites
    whose cached ledger is out of date. Cached by the year, the site's mark, its document
    and the 15-minute interval of ``now`` (the running month and the window's months left
    move with it)."""
    first = year_start(now.date()) if year is None else dt.date(year, 1, 1)
    last = dt.date(first.year, 12, 1)
    lo = pd.Timestamp(first).tz_localize(TZ) - LOOKBACK
    hi = min(now, month_end(pd.Timestamp(last).tz_localize(TZ)) + LOOKBACK)
    marks = measurement_marks(db, [s.id for s in sites], lo, hi)
    out: dict[str, LedgerOfYear] = {}
    missing: dict[str, tuple] = {}
    for s in sites:
        mark = marks[s.id]
        if mark.last_at is None:
            continue
        key = ("ledger", s.id, _site_key(s), first.year, interval_floor(now).isoformat(),
               mark.version, mark.last_at)
        led = cache.get(key)
        if led is None:
            missing[s.id] = key
        else:
            out[s.id] = led
    if missing:
        frames = read_measurements_many(db, list(missing), lo, hi)
        for sid, key in missing.items():
            try:
                led = LedgerOfYear(subsidy_ledger(catalog, sid, frames[sid], now, first, last))
            except InvalidInputError as exc:
                out[sid] = LedgerOfYear(None, str(exc))
                continue
            cache.put(key, led)
            out[sid] = led
    return {s.id: out[s.id] for s in sites
            if s.id in out and (out[s.id].ledger is None or out[s.id].ledger.months)}


def warm(app: Any, site_id: str) -> None:
    """Compute ``site_id``'s state now into the app's cache (after its measurements were
    stored, off the request), so that the next page finds it; a failure is logged."""
    from service.store import catalog_with_sites

    try:
        with app.state.sessions() as db:
            catalog = catalog_with_sites(db, app.state.catalog)
            site = catalog.fleet.site(site_id)
            state_of_site(db, catalog, site, local_now(), app.state.dashboard.cache)
    except Exception:  # a warm-up is an optimisation: the page computes what it misses
        log.warning("could not precompute the measured state of %s", site_id, exc_info=True)


def warm_overview(app: Any) -> None:
    """Compute today's measured month of every site into the app's cache (at start-up, in a
    thread of its own), so that the first overview after a start reads marks only instead of
    every site's month of rows (measured: 1.0-1.1 s cold for 30 sites with a month of
    15-minute rows); a failure is logged."""
    from service.store import catalog_with_sites

    try:
        with app.state.sessions() as db:
            catalog = catalog_with_sites(db, app.state.catalog)
            today = local_now().date()
            month_to_date_of(db, catalog, list(catalog.fleet.sites), as_of(today),
                             app.state.dashboard.cache, billing_month(today))
    except Exception:  # an optimisation: the page computes what it misses
        log.warning("could not precompute the measured months at start-up", exc_info=True)

