"""The storage subsidy ledger: what a site's meter earned under the Changzhou storage
subsidy, month by month.

:func:`subsidy_ledger` settles each calendar month (local time Asia/Shanghai) that holds a
measurement of the site, up to ``now``, with the same month computation as the measured
state (:func:`vpp.state.metered_month`: metered 15-minute intervals, tariff periods, the
policy's counting rule and :func:`vpp.accounting.money_yuan`), so the ledger's row of the
running month and ``GET /v1/sites/{id}/state`` cannot disagree (see the one exception
below). Per month (units in the names):

* ``in_window`` - the month lies in the site's paid window (from the first day of the month
  after grid connection, for the policy's ``duration_months``; never for a station below
  ``min_power_kw``). The window starts on a month's first day and ends on a month's last
  day, except where the policy's effective date opens it inside a month (a station
  connected before the policy); the totals' ``discharge_in_window_kwh`` then counts only
  that month's days from the effective date, as the counted discharge does;
* ``discharge_kwh`` - the metered battery discharge; ``counted_discharge_kwh`` - the part
  the counting rule pays for (``peak_flat``: in peak, critical-peak and flat periods;
  ``net_of_grid_charging``: per day, net of grid charging; ``all``: every kWh;
  ``annual_hours_cap``: every kWh up to the year's budget), 0 outside the window;
* ``rate_yuan_per_kwh`` - the policy's rate in the window, 0 outside;
  ``subsidy_yuan`` - counted x rate;
* ``intervals_measured`` of ``intervals_in_month`` - the 15-minute intervals with a metered
  battery power (the coverage of the discharge) of the whole calendar month's intervals
  (also for the running month), ``complete`` - the month is over at ``now``.

**Annual cap.** Under ``annual_hours_cap`` the budget (``annual_hours`` x rated power
[kWh]) is per calendar year (:func:`vpp.subsidy.annual_budget_kwh`): each month starts with
what the earlier ledger months of the same year left and spends it in time order. Months of
the year without any measurement count nothing (nothing metered, nothing paid), so the
ledger needs every measured month of the year from January: a caller asking from a later
month reads the rows from January (:func:`year_start`) and filters with ``first``. The
measured state's month-to-date (``vpp state``) gives each month the full budget; it differs
from the ledger's running month only when earlier months of the year used part of it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from vpp.catalog import Catalog
from vpp.state import _local, metered_flows, metered_month, month_cut, month_end, month_rows
from vpp.timebase import DT_H, INTERVAL_MINUTES, TZ

if TYPE_CHECKING:
    import pandas as pd

#: Rows read before a month's first interval, so that a reading at its start is there [h].
LOOKBACK_H = 1.0


@dataclass
class LedgerMonth:
    """One month of the ledger (see the module docstring; units in the names)."""

    month: str
    in_window: bool
    complete: bool
    discharge_kwh: float
    counted_discharge_kwh: float
    rate_yuan_per_kwh: float
    subsidy_yuan: float
    intervals_measured: int
    intervals_in_month: int
    coverage_frac: float
    tariff_version: str
    counting_rule: str


@dataclass
class Ledger:
    """A site's ledger at ``now``: its months and totals (units in the names; dates ISO).

    ``subsidy_in_window_yuan`` and the energies sum the listed months inside the window;
    ``window_months_left`` counts the window's months not over at ``now`` (the running month
    included; the full duration before the window opens; 0 once it closed or when the
    station is not eligible)."""

    site_id: str
    now: str
    eligible: bool
    window_first_day: str | None
    window_last_day: str | None
    policy_version: str
    counting_rule: str
    annual_hours_cap_h: float | None
    months: list[LedgerMonth] = field(default_factory=list)
    discharge_in_window_kwh: float = 0.0
    counted_discharge_in_window_kwh: float = 0.0
    subsidy_in_window_yuan: float = 0.0
    window_months_left: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: floats rounded to 6 decimals."""
        def rounded(d: dict[str, Any]) -> dict[str, Any]:
            return {k: round(v, 6) if isinstance(v, float) else v for k, v in d.items()}

        out = rounded({k: v for k, v in asdict(self).items() if k != "months"})
        out["months"] = [rounded(asdict(m)) for m in self.months]
        return out


def parse_month(text: str) -> dt.date:
    """A ``YYYY-MM`` text as its first day (``ValueError`` naming the form otherwise)."""
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}", text):
        raise ValueError("a month as YYYY-MM")
    year, month = int(text[:4]), int(text[5:])
    if not 1 <= month <= 12:
        raise ValueError("a month as YYYY-MM (month 01 to 12)")
    if year < 1:
        raise ValueError("a month as YYYY-MM from year 0001")
    return dt.date(year, month, 1)


def year_start(month: dt.date) -> dt.date:
    """The first day of ``month``'s calendar year: where a ledger from ``month`` must read
    from (the annual cap's budget, see the module docstring)."""
    return dt.date(month.year, 1, 1)


def _months_left(window: tuple[dt.date, dt.date] | None, today: dt.date) -> int:
    if window is None or today > window[1]:
        return 0
    first = max(window[0], today.replace(day=1))
    return (window[1].year - first.year) * 12 + window[1].month - first.month + 1


def subsidy_ledger(catalog: Catalog, site_id: str, measurements: pd.DataFrame,
                   now: dt.datetime | pd.Timestamp, first: dt.date | None = None,
                   last: dt.date | None = None) -> Ledger:
    """The subsidy ledger of ``site_id`` at ``now``: one :class:`LedgerMonth` per calendar
    month with a measurement at or before ``now``, from month ``first`` to month ``last``
    (first days; None: no bound), and the totals of :class:`Ledger`.

    ``measurements`` is a frame as :mod:`vpp.measurements` stores it (UTC index); under
    ``annual_hours_cap`` it must hold the year's rows from January (see the module
    docstring). A month without a tariff in force raises
    :class:`models.InvalidInputError`, as the measured state does."""
    import pandas as pd

    site = catalog.fleet.site(site_id)
    policy = catalog.policy_for(site)
    local_now = _local(now)
    window = catalog.paid_window(site)
    ledger = Ledger(
        site_id=site.id, now=local_now.isoformat(), eligible=window is not None,
        window_first_day=None if window is None else window[0].isoformat(),
        window_last_day=None if window is None else window[1].isoformat(),
        policy_version=policy.version, counting_rule=policy.rule,
        annual_hours_cap_h=policy.annual_hours if policy.rule == "annual_hours_cap" else None,
        window_months_left=_months_left(window, local_now.date()))
    rows = measurements[measurements.index <= local_now]
    if rows.empty:
        return ledger
    local = pd.DatetimeIndex(rows.index).tz_convert(TZ)
    months = sorted({dt.date(y, m, 1) for y, m in zip(local.year, local.month, strict=True)})
    lookback = pd.Timedelta(hours=LOOKBACK_H)
    step = pd.Timedelta(minutes=INTERVAL_MINUTES)
    paid_in_year: dict[int, float] = {}
    for day in months:
        start = pd.Timestamp(day).tz_localize(TZ)
        end = month_end(start)
        complete = end <= local_now
        month, iv, counted = metered_month(
            catalog, site, month_rows(rows, start, local_now, lookback), start,
            month_cut(start, local_now), local_now, paid_in_year.get(day.year, 0.0))
        paid_in_year[day.year] = paid_in_year.get(day.year, 0.0) + counted
        if (first is not None and day < first) or (last is not None and day > last):
            continue
        # the window may open inside a month (the policy's effective date)
        in_window = window is not None and window[0] <= end.date() - dt.timedelta(
            days=1) and day <= window[1]
        measured = int(np.isfinite(iv["battery_kw"].to_numpy(dtype=float)).sum())
        n = int((end - start) / step)
        ledger.months.append(LedgerMonth(
            month=month.month, in_window=in_window, complete=complete,
            discharge_kwh=month.discharge_kwh, counted_discharge_kwh=counted,
            rate_yuan_per_kwh=policy.rate_yuan_per_kwh if in_window else 0.0,
            subsidy_yuan=month.subsidy_yuan, intervals_measured=measured,
            intervals_in_month=n, coverage_frac=measured / n,
            tariff_version=month.tariff_version, counting_rule=policy.rule))
        if in_window:  # a month the window opens or closes in: only its days inside
            days = np.asarray(pd.DatetimeIndex(iv.index).tz_convert(TZ).date)
            inside = (days >= window[0]) & (days <= window[1])
            ledger.discharge_in_window_kwh += float(
                metered_flows(iv).discharge_kw[inside].sum() * DT_H)
            ledger.counted_discharge_in_window_kwh += counted
            ledger.subsidy_in_window_yuan += month.subsidy_yuan
    return ledger
