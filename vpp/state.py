"""A site's measured state: what its stored measurements say about the month so far.

One pure computation for the CLI (``vpp state``), the API (``GET /v1/sites/{id}/state``),
the dashboard and the plans that start from it: :func:`site_state` reads the measurement
rows (as stored, see :mod:`vpp.measurements`) and a clock, and returns a :class:`SiteState`.
Money comes from where it is defined: the demand charge from
:func:`vpp.accounting.month_demand_charge_yuan`, energy cost, export revenue and the subsidy
earned from :func:`vpp.accounting.money_yuan` on the metered flows, priced by
:func:`vpp.tariffs.price_series` and the subsidy policy's counting rule
(:func:`vpp.subsidy.subsidy_rate_series`).

Definitions (local time Asia/Shanghai, billing month = calendar month):

* the month so far: the completed 15-minute intervals from 00:00 on the month's first day
  up to the interval that contains ``now`` (excluded: it is not over), or to the month's
  end for a month that is over at ``now`` (named by its first day, see :func:`site_state`);
* month-to-date peak: the highest measured 15-minute average import of those intervals
  [kW]; intervals without a measured import are gaps, listed and counted, never guessed;
* SOC now: the latest SOC reading at or before ``now`` [kWh], with its time;
* freshness: the end of the newest measurement (an averaging row ends one interval after
  its timestamp, a reading at its timestamp) and its age at ``now`` [s].

:func:`month_to_date` is the part of the state that only the metered intervals decide (peak,
demand charge, money, energies, freshness; no SOC, no gaps): :func:`site_state` builds on it,
and the dashboard's fleet overview reads it for every site. It changes only with the rows or
when the month so far reaches a new interval holding data: for a fixed set of rows it is the
same at every ``now`` with the same :func:`settled_cut` (later intervals hold no data, so
they add nothing to a peak or a sum).

:func:`plan_initial_state` gives a plan the same numbers as of its first interval.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from models import InvalidInputError
from models.components.subsidy import paid_kwh
from vpp.accounting import FlowArrays, money_yuan, month_demand_charge_yuan
from vpp.catalog import Catalog
from vpp.measurements import MAX_GAPS, POWER_FIELDS, to_intervals, zero_fields_of
from vpp.problem import demand_rate, grid_spec, site_problem
from vpp.realtime import BatteryState
from vpp.sites import Site
from vpp.subsidy import annual_budget_kwh, model_rule, subsidy_rate_series
from vpp.tariffs import price_series
from vpp.timebase import DT_H, INTERVAL_MINUTES, TZ, horizon

if TYPE_CHECKING:
    import pandas as pd

#: A measured SOC this much older than a plan's start is not used as its initial state [min].
SOC_MAX_AGE_MINUTES = 60.0
#: Battery power below this share of its rating is rest, not a direction [-].
ACTIVE_SHARE = 0.01


@dataclass
class MonthToDate:
    """A site's metered billing month so far at ``now``: what its measured 15-minute
    intervals decide (units in the names; times ISO 8601 +08:00; the fields are described in
    docs/operations.md)."""

    site_id: str
    now: str
    month: str
    measured: bool
    month_peak_kw: float
    month_peak_at: str | None
    billing_basis: str
    demand_rate_yuan_per_kw_month: float
    demand_charge_yuan: float
    energy_cost_yuan: float
    export_revenue_yuan: float
    import_kwh: float
    export_kwh: float
    discharge_kwh: float
    charge_kwh: float
    subsidy_yuan: float
    subsidy_rule: str
    subsidy_rate_yuan_per_kwh: float
    tariff_version: str
    last_measurement_at: str | None
    data_until: str | None
    age_s: float | None
    intervals_measured: int
    #: whether ``now`` (the month's last day once it is over) lies in the site's paid
    #: window; ``subsidy_rate_yuan_per_kwh`` is 0 outside it
    subsidy_in_window: bool = False
    #: energy exported by a site whose export limit is 0 (anti-backflow) [kWh]: a fault
    #: to look into, paid nothing
    anti_backflow_export_kwh: float = 0.0


@dataclass
class SiteState(MonthToDate):
    """A site's state from its measurements at ``now`` (see the module docstring): its
    :class:`MonthToDate` with the SOC now and the month's gaps."""

    soc_kwh: float | None = None
    soc_frac: float | None = None
    soc_measured_at: str | None = None
    intervals_so_far: int = 0
    gap_intervals: int = 0
    gaps: list[dict[str, Any]] = field(default_factory=list)
    gaps_truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: floats rounded to 6 decimals, times ISO 8601 with +08:00."""
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, float):
                out[k] = round(v, 6)
        return out


def _iso(t: Any) -> str | None:
    import pandas as pd

    if t is None or (isinstance(t, float) and math.isnan(t)):
        return None
    return pd.Timestamp(t).tz_convert(TZ).isoformat()


def _local(now: dt.datetime | pd.Timestamp) -> pd.Timestamp:
    import pandas as pd

    t = pd.Timestamp(now)
    if t.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return t.tz_convert(TZ)


def month_start(t: pd.Timestamp) -> pd.Timestamp:
    """00:00 on the first day of ``t``'s billing month (local)."""
    local = t.tz_convert(TZ)
    return local.normalize() - (local.day - 1) * _day()


def month_end(first: pd.Timestamp) -> pd.Timestamp:
    """00:00 on the first day of the billing month after the one starting at ``first``
    (local): where that month ends."""
    import pandas as pd

    return first.tz_convert(TZ) + pd.DateOffset(months=1)


def month_cut(first: pd.Timestamp, local_now: pd.Timestamp) -> pd.Timestamp:
    """Where the metered billing month starting at ``first`` ends as seen at ``local_now``
    (excluded): the interval containing ``local_now`` while the month runs, the month's end
    (:func:`month_end`) once it is over, ``first`` itself before it begins."""
    return max(first, min(interval_floor(local_now), month_end(first)))


def month_rows(rows: pd.DataFrame, first: pd.Timestamp, local_now: pd.Timestamp,
               lookback: pd.Timedelta | None = None) -> pd.DataFrame:
    """The rows the billing month starting at ``first`` reads at ``local_now``: those at or
    before ``local_now`` and at most one interval after the month's end (a reading that
    closes its last interval); with ``lookback``, from that long before ``first`` (a
    reading that opens its first interval)."""
    until = min(local_now, month_end(first) + _interval())
    sel = rows.index <= until
    if lookback is not None:
        sel &= rows.index >= first - lookback
    return rows[sel]


def _day() -> pd.Timedelta:
    import pandas as pd

    return pd.Timedelta(days=1)


def interval_floor(t: pd.Timestamp) -> pd.Timestamp:
    """Start of the 15-minute interval containing ``t`` (local)."""
    return t.tz_convert(TZ).floor(f"{INTERVAL_MINUTES}min")


def settled_cut(now: dt.datetime | pd.Timestamp,
                last_row_at: dt.datetime | pd.Timestamp | None) -> pd.Timestamp:
    """The end of the month so far that decides :func:`month_to_date` at ``now`` when the
    newest row at or before ``now`` is at ``last_row_at`` (local): the interval containing
    ``now`` (:func:`interval_floor`), or the end of the interval holding the newest row if
    that is earlier. Every row lies in or before that interval (an averaging row in the
    interval it starts, an instant reading in the one it ends or the next), so the intervals
    after it are empty and add nothing: with the same rows, :func:`month_to_date` is the same
    (up to rounding of sums) at every ``now`` with the same settled cut."""
    cut = interval_floor(_local(now))
    if last_row_at is None:
        return cut
    return min(cut, interval_floor(_local(last_row_at)) + _interval())


def data_age_s(until: str | pd.Timestamp | None, now: dt.datetime | pd.Timestamp,
               ) -> float | None:
    """How old the data is at ``now`` [s]: the time since ``until`` (:func:`data_until`),
    0 for data reaching up to a minute past ``now`` (the clock skew a batch may have);
    None without data."""
    import pandas as pd

    if until is None:
        return None
    return max(0.0, (_local(now) - pd.Timestamp(until)).total_seconds())


def data_until(measurements: pd.DataFrame) -> pd.Timestamp | None:
    """End of the newest measurement: an averaging row's interval end, or a reading's
    instant (see :mod:`vpp.measurements`); None without rows."""
    import pandas as pd

    if measurements.empty:
        return None
    has_power = measurements[list(POWER_FIELDS)].notna().any(axis=1).to_numpy()
    minutes = measurements["interval_minutes"].to_numpy(dtype=float)
    extra = np.where(has_power, minutes * 60e9, 0.0).astype(np.int64)
    ends = measurements.index.as_unit("ns").asi8 + extra
    return pd.Timestamp(int(ends.max()), tz="UTC").tz_convert(TZ)


def gap_ranges(index: pd.DatetimeIndex, missing: np.ndarray,
               limit: int = MAX_GAPS) -> tuple[list[dict[str, Any]], bool]:
    """Runs of missing intervals as ``{start, end, intervals}`` (the first ``limit``) and
    whether there were more."""
    import pandas as pd

    out = []
    if not missing.any():
        return out, False
    m = np.r_[False, missing, False].astype(np.int8)
    starts = np.flatnonzero(np.diff(m) == 1)
    ends = np.flatnonzero(np.diff(m) == -1)
    step = pd.Timedelta(minutes=INTERVAL_MINUTES)
    for a, b in zip(starts, ends, strict=True):
        if len(out) >= limit:
            return out, True
        out.append({"start": index[a].isoformat(), "end": (index[b - 1] + step).isoformat(),
                    "intervals": int(b - a)})
    return out, False


def metered_flows(iv: pd.DataFrame) -> FlowArrays:
    """The metered intervals as :class:`vpp.accounting.FlowArrays` (not measured: 0; PV as
    measured, none curtailed as far as the meter knows)."""
    def col(name: str) -> np.ndarray:
        return np.nan_to_num(iv[name].to_numpy(dtype=float), nan=0.0)

    b = col("battery_kw")
    zeros = np.zeros(len(iv))
    return FlowArrays(pv_used_kw=col("pv_kw"), pv_curtailed_kw=zeros,
                      charge_kw=np.clip(-b, 0.0, None), discharge_kw=np.clip(b, 0.0, None),
                      soc_kwh=col("soc_kwh"), grid_import_kw=col("grid_import_kw"),
                      grid_export_kw=col("grid_export_kw"), flexible_load_kw=zeros)


def metered_load_kw(iv: pd.DataFrame, flows: FlowArrays) -> np.ndarray:
    """The site's load [kW]: as measured, and where it was not, from the meter's balance
    ``import - export + PV + discharge - charge`` (a load left at 0 would make all PV a
    surplus, and grid charging count as PV charging under ``net_of_grid_charging``)."""
    measured = iv["load_kw"].to_numpy(dtype=float)
    balance = (flows.grid_import_kw - flows.grid_export_kw + flows.pv_used_kw
               + flows.discharge_kw - flows.charge_kw)
    return np.where(np.isfinite(measured), measured, np.clip(balance, 0.0, None))


def _money(catalog: Catalog, site: Site, iv: pd.DataFrame, tariff: Any,
           paid_this_year_kwh: float = 0.0) -> dict[str, float]:
    """Energy cost, export revenue and subsidy earned [yuan] of the metered intervals
    (:func:`vpp.accounting.money_yuan`), and the discharge the subsidy pays for
    (``subsidy_counted_kwh`` [kWh]: by the policy's counting rule, in intervals with a
    rate). Under ``annual_hours_cap`` the year's budget is what is left after
    ``paid_this_year_kwh`` [kWh] counted earlier in the calendar year
    (:func:`vpp.subsidy.annual_budget_kwh`), spent in time order."""
    zero = {"energy_cost_yuan": 0.0, "export_revenue_yuan": 0.0, "subsidy_yuan": 0.0,
            "subsidy_counted_kwh": 0.0}
    if iv.empty:
        return zero
    index = iv.index
    prices = price_series(catalog.tariffs, site.tariff_id, index, site.grid.transformer_kva)
    st = site.storage
    policy = catalog.policy_for(site)
    rate = np.zeros(len(index))
    if st is not None:
        rate = subsidy_rate_series(policy, st.power_kw, st.grid_connection_date, index,
                                   periods=prices["period"].to_numpy()).to_numpy()
    f = metered_flows(iv)
    # an anti-backflow site is not paid for what it exports (it should export nothing;
    # the state reports the energy as anti_backflow_export_kwh)
    export_price = (prices["export_price_yuan_per_kwh"].to_numpy()
                    if site.grid.export_limit_kw > 0 else np.zeros(len(index)))
    p = site_problem(
        site, index, load_kw=metered_load_kw(iv, f),
        pv_kw=f.pv_used_kw, import_price=prices["import_price_yuan_per_kwh"].to_numpy(),
        export_price=export_price, subsidy_rate=rate,
        tariff=tariff, labels=False, shiftable=False, subsidy_rule=model_rule(policy),
        subsidy_budget_kwh=(annual_budget_kwh(policy, st.power_kw, paid_this_year_kwh)
                            if st is not None else None))
    if p.storage is None:  # not in service: nothing to earn
        rate = np.zeros(len(index))
    m = money_yuan(p, f, rate)
    counted, _ = paid_kwh(replace(p, subsidy_yuan_per_kwh=rate), f.discharge_kw, f.charge_kw)
    m["subsidy_counted_kwh"] = float(counted[rate > 0].sum())
    return {k: m[k] for k in zero}


def _month_so_far(catalog: Catalog, site: Site, measurements: pd.DataFrame,
                  local_now: pd.Timestamp, first: pd.Timestamp | None = None,
                  ) -> tuple[MonthToDate, pd.DataFrame, pd.DataFrame]:
    """The billing month starting at ``first`` (default: the month containing
    ``local_now``) so far at ``local_now``, up to :func:`month_cut`: its
    :class:`MonthToDate`, the rows it reads (:func:`month_rows`) and the 15-minute intervals
    (:func:`vpp.measurements.to_intervals`)."""
    first = month_start(local_now) if first is None else _local(first)
    rows = month_rows(measurements, first, local_now)
    month, iv, _ = metered_month(catalog, site, rows, first, month_cut(first, local_now),
                                 local_now)
    return month, rows, iv


def metered_month(catalog: Catalog, site: Site, rows: pd.DataFrame, first: pd.Timestamp,
                  cut: pd.Timestamp, local_now: pd.Timestamp, paid_this_year_kwh: float = 0.0,
                  ) -> tuple[MonthToDate, pd.DataFrame, float]:
    """The metered intervals of the billing month starting at ``first`` up to ``cut``
    (excluded; the month's end for a month that is over) as seen at ``local_now`` from
    ``rows``: its :class:`MonthToDate`, the 15-minute intervals
    (:func:`vpp.measurements.to_intervals`) and the discharge the subsidy pays for [kWh]
    (see :func:`_money`; ``paid_this_year_kwh`` [kWh] for the ``annual_hours_cap`` rule)."""
    import pandas as pd

    iv = to_intervals(rows, first, cut, zero_fields_of(site))
    tariff = catalog.tariffs.select(site.tariff_id, first.date())
    imp = iv["grid_import_kw"].to_numpy(dtype=float)
    measured = np.isfinite(imp)
    peak = float(imp[measured].max()) if measured.any() else 0.0
    peak_at = iv.index[measured][int(np.argmax(imp[measured]))] if measured.any() else None
    money = _money(catalog, site, iv, tariff, paid_this_year_kwh)
    flows = metered_flows(iv)
    until = data_until(rows)
    policy = catalog.policy_for(site)
    window = catalog.paid_window(site)
    as_of = min(local_now, cut - pd.Timedelta(minutes=1)).date()
    in_window = window is not None and window[0] <= as_of <= window[1]
    month = MonthToDate(
        site_id=site.id, now=local_now.isoformat(),
        month=f"{first.year:04d}-{first.month:02d}", measured=not rows.empty,
        month_peak_kw=peak, month_peak_at=_iso(peak_at),
        billing_basis=site.billing_basis,
        demand_rate_yuan_per_kw_month=demand_rate(site, tariff),
        demand_charge_yuan=float(month_demand_charge_yuan(grid_spec(site, tariff), peak)),
        energy_cost_yuan=money["energy_cost_yuan"],
        export_revenue_yuan=money["export_revenue_yuan"],
        import_kwh=float(flows.grid_import_kw.sum() * DT_H),
        export_kwh=float(flows.grid_export_kw.sum() * DT_H),
        discharge_kwh=float(flows.discharge_kw.sum() * DT_H),
        charge_kwh=float(flows.charge_kw.sum() * DT_H),
        subsidy_yuan=money["subsidy_yuan"], subsidy_rule=policy.rule,
        subsidy_rate_yuan_per_kwh=policy.rate_yuan_per_kwh if in_window else 0.0,
        subsidy_in_window=in_window,
        anti_backflow_export_kwh=(float(flows.grid_export_kw.sum() * DT_H)
                                  if site.grid.export_limit_kw <= 0 else 0.0),
        tariff_version=tariff.version,
        last_measurement_at=_iso(rows.index[-1]) if not rows.empty else None,
        data_until=None if until is None else until.isoformat(),
        age_s=data_age_s(until, local_now), intervals_measured=int(measured.sum()))
    return month, iv, money["subsidy_counted_kwh"]


def month_to_date(catalog: Catalog, site_id: str, measurements: pd.DataFrame,
                  now: dt.datetime | pd.Timestamp,
                  first: dt.datetime | pd.Timestamp | None = None) -> MonthToDate:
    """What the metered intervals of ``site_id``'s billing month so far say at ``now``: the
    month-to-date peak, its demand charge, energy cost, export revenue, energies, the
    subsidy earned and the data's freshness (the numbers of :func:`site_state` without the
    SOC and the gaps). ``measurements`` and ``first`` as for :func:`site_state`.

    Raises
    ------
    InvalidInputError
        Unknown site, or no tariff in force this month.
    """
    site = catalog.fleet.site(site_id)
    return _month_so_far(catalog, site, measurements, _local(now), first)[0]


def site_state(catalog: Catalog, site_id: str, measurements: pd.DataFrame,
               now: dt.datetime | pd.Timestamp,
               first: dt.datetime | pd.Timestamp | None = None) -> SiteState:
    """The state of ``site_id`` at ``now`` from its measurement rows (see the module
    docstring): :func:`month_to_date` with the SOC now and the month's gaps.
    ``measurements`` is a frame as :mod:`vpp.measurements` stores it (rows of the month so
    far at least; later rows are ignored).

    ``first`` (00:00 on a month's first day) names the billing month when it is not the
    one containing ``now``: a month that is over at ``now`` is counted to its end
    (:func:`month_cut`), its SOC and freshness from its rows up to then (:func:`month_rows`).
    The dashboard's page of a day shows the day's month as of the day's end, which on a
    month's last day is 00:00 of the next month.

    Raises
    ------
    InvalidInputError
        Unknown site, or no tariff in force this month.
    """
    site = catalog.fleet.site(site_id)
    month, rows, iv = _month_so_far(catalog, site, measurements, _local(now), first)
    soc_rows = rows["soc_kwh"].dropna()
    soc = float(soc_rows.iloc[-1]) if len(soc_rows) else None
    energy = site.storage.energy_kwh if site.storage else None
    measured = np.isfinite(iv["grid_import_kw"].to_numpy(dtype=float))
    gaps, truncated = gap_ranges(iv.index, ~measured)
    return SiteState(
        **asdict(month), soc_kwh=soc,
        soc_frac=None if soc is None or not energy else soc / energy,
        soc_measured_at=_iso(soc_rows.index[-1]) if len(soc_rows) else None,
        intervals_so_far=len(iv), gap_intervals=int((~measured).sum()), gaps=gaps,
        gaps_truncated=truncated)


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class InitialState:
    """What the measurements say of a plan's first interval: the month-to-date peak [kW]
    and the SOC [kWh] (None: unknown), and where each comes from."""

    month_peak_kw: float | None
    month_peak_source: str
    soc_kwh: float | None
    soc_source: str


def plan_initial_state(site: Site, measurements: pd.DataFrame,
                       plan_start: dt.datetime | pd.Timestamp,
                       now: dt.datetime | pd.Timestamp) -> InitialState | None:
    """The month-to-date peak and the SOC a plan from ``plan_start`` (its first interval)
    starts from, by the measurements up to the clock ``now``; None without any measurement.

    Peak: the highest measured 15-minute import of the plan's billing month up to ``now`` -
    the month's billing peak is at least that, so it is the peak the plan must not pay for
    again (a plan of a past day, or of today on the first of the month, is planned against
    the month's peak as known now); None when the month has no measured import yet (a plan
    of the first day made before it: the caller's default 0 is then right).
    SOC: the latest reading at most :data:`SOC_MAX_AGE_MINUTES`
    before ``plan_start`` (the SOC at the plan's start, not now: a plan starts at 00:00);
    None otherwise (a plan of tomorrow starts from the site's default SOC).
    """
    import pandas as pd

    start = _local(plan_start)
    clock = _local(now)
    rows = measurements[measurements.index <= clock]
    if rows.empty:
        return None
    first = month_start(start)
    end = month_cut(first, clock)
    iv = to_intervals(rows, first, end, zero_fields_of(site)) if end > first else None
    imp = np.empty(0) if iv is None else iv["grid_import_kw"].to_numpy(dtype=float)
    ok = np.isfinite(imp)
    if ok.any():
        peak = float(imp[ok].max())
        at = iv.index[ok][int(np.argmax(imp[ok]))]
        peak_src = (f"measured: highest 15-minute import of the billing month, "
                    f"{peak:g} kW at {at.isoformat()} ({int(ok.sum())} intervals measured "
                    f"from {first.isoformat()} to {end.isoformat()})")
    else:
        peak, peak_src = None, "no import measured this billing month"
    socs = rows["soc_kwh"].dropna()
    socs = socs[(socs.index <= start)
                & (socs.index >= start - pd.Timedelta(minutes=SOC_MAX_AGE_MINUTES))]
    if len(socs):
        soc, soc_src = float(socs.iloc[-1]), f"measured at {_iso(socs.index[-1])}"
    else:
        soc, soc_src = None, (f"no SOC measured within {SOC_MAX_AGE_MINUTES:g} min before "
                              "the plan's start")
    return InitialState(peak, peak_src, soc, soc_src)


#: How to give a plan the month's peak, from the command line and from the API.
CLI_REMEDY = ("Give --month-peak-kw, or import the site's measurements (vpp measurements "
              "import) so that plans take it from the stored state.")
API_REMEDY = ("Give month_peak_kw, or send the site's measurements (POST /v1/sites/{id}/"
              "measurements) so that plans take it from the stored state.")


def month_peak_warning(day: dt.date, month_peak_kw: float, site: Site,
                       demand_rate_yuan_per_kw_month: float,
                       remedy: str = CLI_REMEDY) -> str | None:
    """The loud warning for a plan that forgets the month's peak: ``month_peak_kw`` 0 on a
    day that is not the first of its billing month, at a site billed on demand."""
    if month_peak_kw > 0 or day.day == 1 or demand_rate_yuan_per_kw_month <= 0:
        return None
    return (f"WARNING: month-to-date peak 0 kW on {day}, which is not the first day of its "
            f"billing month: {site.id} is billed {demand_rate_yuan_per_kw_month:g} yuan/kW "
            "on the month's highest 15-minute import, and this plan charges the whole "
            "month's demand charge to this day and ignores the peak already set (wrong by up "
            f"to {demand_rate_yuan_per_kw_month * site.load.peak_kw:,.0f} yuan at a "
            f"{site.load.peak_kw:g} kW peak). " + remedy)


def battery_state(site: Site, iv: pd.DataFrame, soc_kwh: float,
                  now: dt.datetime | pd.Timestamp) -> BatteryState:
    """What the controller needs of the battery at ``now`` (:class:`vpp.realtime.
    BatteryState`) from the metered 15-minute intervals before it: the side of the last
    interval that moved more than :data:`ACTIVE_SHARE` of rated power (discharge 0, charge
    1), the time since that side was taken [h] (from the first interval of its run after the
    last one on the other side; infinite when the intervals show no other side), the time
    since the battery last moved [h], and the AC energy discharged since local midnight
    [kWh]."""
    local = _local(now)
    st = site.storage
    state = BatteryState(soc_kwh)
    if st is None or iv.empty:
        return state
    b = iv["battery_kw"].to_numpy(dtype=float)
    ends = iv.index + _interval()
    keep = ends <= local
    b, starts, ends = b[keep], iv.index[keep], ends[keep]
    today = starts >= local.normalize()
    state.discharged_today_kwh = float(np.nansum(np.clip(b[today], 0.0, None)) * DT_H)
    active = np.isfinite(b) & (np.abs(b) > ACTIVE_SHARE * st.power_kw)
    if not active.any():
        return state
    where = np.flatnonzero(active)
    sides = np.where(b[where] > 0, 0, 1)
    state.side = int(sides[-1])
    state.rested_h = max(0.0, (local - ends[where[-1]]).total_seconds() / 3600.0)
    other = np.flatnonzero(sides != sides[-1])
    if len(other):
        taken = where[other[-1] + 1]
        state.held_h = (local - starts[taken]).total_seconds() / 3600.0
    return state


def _interval() -> pd.Timedelta:
    import pandas as pd

    return pd.Timedelta(minutes=INTERVAL_MINUTES)


def apply_initial_state(options: Any, given: set[str], state: InitialState | None, site: Site,
                        day: dt.date) -> tuple[Any, dict[str, Any]]:
    """The plan options with the measured initial state where the user gave none
    (``given``: the option names set explicitly, which always win), and the plan
    document's ``initial_state`` record: each value and where it came from. ``options`` is a
    :class:`vpp.options.PlanOptions`."""
    update: dict[str, Any] = {}
    if "month_peak_kw" in given:
        peak_src = "option month_peak_kw"
    elif state is not None and state.month_peak_kw is not None:
        update["month_peak_kw"] = state.month_peak_kw
        peak_src = "stored measurements: " + state.month_peak_source
    else:
        peak_src = ("default 0: the first day of a billing month" if day.day == 1 else
                    "default 0: no measured state (the month's peak so far is ignored)")
    st = site.storage
    if "soc_initial_frac" in given:
        soc_src = "option soc_initial_frac"
    elif state is not None and state.soc_kwh is not None and st is not None:
        frac = state.soc_kwh / st.energy_kwh
        soc_src = "stored measurements: " + state.soc_source
        if not st.soc_min_frac <= frac <= st.soc_max_frac:
            frac = min(max(frac, st.soc_min_frac), st.soc_max_frac)
            soc_src += f" ({state.soc_kwh:g} kWh, taken to the SOC window)"
        update["soc_initial_frac"] = frac
    else:
        soc_src = "site default soc_initial_frac" + (
            "" if state is None else f" ({state.soc_source})")
    if update:
        options = options.model_copy(update=update)
    energy = st.energy_kwh if st is not None else 0.0
    soc_frac = options.soc_initial_frac if options.soc_initial_frac is not None else (
        st.soc_initial_frac if st is not None else None)
    record = {"month_peak_kw": options.month_peak_kw, "month_peak_source": peak_src,
              "soc_initial_kwh": None if soc_frac is None else soc_frac * energy,
              "soc_initial_source": soc_src}
    return options, record


# --------------------------------------------------------------------------- plan vs actual


def planned_intervals(index: pd.DatetimeIndex, setpoints: list[dict[str, Any]],
                      plan: dict[str, Any] | None) -> pd.DataFrame:
    """What was planned for each 15-minute interval of ``index``: the set-points of the
    latest control step that decided it or an earlier interval of its horizon (``source``
    ``setpoints``), else the day-ahead ``plan`` (``plan``), else nothing. Columns
    ``grid_import_kw``, ``battery_kw`` (discharge positive) [kW], ``soc_kwh`` (interval end)
    [kWh], ``source`` and ``pv_kw`` (the day-ahead plan's PV output, ``pv_used_kw`` [kW]:
    control steps send no PV set-point, so it stays the plan's where a step decided the
    rest)."""
    import pandas as pd

    n = len(index)
    cols = {c: np.full(n, np.nan) for c in ("grid_import_kw", "battery_kw", "soc_kwh",
                                             "pv_kw")}
    source = np.full(n, None, dtype=object)
    grid = pd.Index(index.as_unit("ns").asi8)

    def place(stamps: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Positions in ``index`` and in ``stamps`` of the stamps that lie in ``index``."""
        at = grid.get_indexer(pd.DatetimeIndex(stamps).as_unit("ns").asi8)
        mine = np.flatnonzero(at >= 0)
        return at[mine], mine

    if plan is not None:
        iv = plan["intervals"]
        i, j = place(plan["inputs"]["timestamps"])
        b = np.asarray(iv["discharge_kw"], dtype=float) - np.asarray(iv["charge_kw"],
                                                                     dtype=float)
        for col, values in (("grid_import_kw", iv["grid_import_kw"]), ("battery_kw", b),
                            ("soc_kwh", iv["soc_kwh"]), ("pv_kw", iv["pv_used_kw"])):
            cols[col][i] = np.asarray(values, dtype=float)[j]
        source[i] = "plan"
    # earlier steps first: a later decision overwrites what it re-planned
    for doc in sorted(setpoints, key=lambda d: (d["start"], d["decided_at"])):
        i, j = place(doc["timestamps"])
        for col, key in (("grid_import_kw", "grid_import_kw"), ("battery_kw", "setpoint_kw"),
                         ("soc_kwh", "soc_kwh")):
            cols[col][i] = np.asarray(doc[key], dtype=float)[j]
        source[i] = "setpoints"
    return pd.DataFrame({**{c: cols[c] for c in ("grid_import_kw", "battery_kw", "soc_kwh")},
                         "source": source, "pv_kw": cols["pv_kw"]}, index=index)


def _compared_money(catalog: Catalog, site: Site, day: dt.date, index: pd.DatetimeIndex,
                    imp: np.ndarray, bat: np.ndarray) -> dict[str, float]:
    """Energy cost and subsidy [yuan] of import ``imp`` and battery power ``bat`` [kW]
    (NaN: not compared, counted as 0), priced like the measured state (:func:`_money`)."""
    import pandas as pd

    frame = pd.DataFrame({"grid_import_kw": imp, "battery_kw": bat}, index=index)
    for col in ("grid_export_kw", "pv_kw", "load_kw", "soc_kwh"):
        frame[col] = np.nan
    tariff = catalog.tariffs.select(site.tariff_id, day)
    m = _money(catalog, site, frame, tariff)
    return {"energy_cost_yuan": m["energy_cost_yuan"], "subsidy_yuan": m["subsidy_yuan"]}


def plan_vs_actual(site: Site, day: dt.date, measurements: pd.DataFrame,
                   setpoints: list[dict[str, Any]], plan: dict[str, Any] | None,
                   catalog: Catalog | None = None,
                   now: pd.Timestamp | None = None) -> dict[str, Any]:
    """Planned (:func:`planned_intervals`) against metered (:func:`vpp.measurements.
    to_intervals`) import, battery power, SOC and PV for each 15-minute interval of ``day``,
    and the totals over the intervals where both are known: energies [kWh] and peaks [kW];
    with a ``catalog``, also what they cost: the import's energy cost at the tariff's
    import prices and the subsidy the discharge earns under the policy's counting rule
    [yuan], as the measured state counts them (``*_energy_cost_yuan``, ``*_subsidy_yuan``;
    None when no tariff is in force that day). With ``now``, the interval under way and
    later ones count as not measured yet, as in the state (a part of an interval is not
    its average)."""
    index = horizon(day)
    end = index[-1] + _interval()
    act = to_intervals(measurements, index[0], end, zero_fields_of(site))
    if now is not None:
        act.loc[act.index >= interval_floor(_local(now)),
                ["grid_import_kw", "grid_export_kw", "battery_kw", "soc_kwh", "load_kw",
                 "pv_kw"]] = np.nan
    plan_iv = planned_intervals(index, setpoints, plan)

    def arr(frame: pd.DataFrame, col: str) -> list[float | None]:
        return [None if not np.isfinite(v) else round(float(v), 6)
                for v in frame[col].to_numpy(dtype=float)]

    totals: dict[str, Any] = {}
    masked: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for col, unit in (("grid_import_kw", "import"), ("battery_kw", "battery"),
                      ("pv_kw", "pv")):
        p, a = plan_iv[col].to_numpy(dtype=float), act[col].to_numpy(dtype=float)
        both = np.isfinite(p) & np.isfinite(a)
        masked[col] = (np.where(both, p, np.nan), np.where(both, a, np.nan))
        totals[f"{unit}_intervals_compared"] = int(both.sum())
        if unit == "import":
            totals["planned_import_kwh"] = float(p[both].sum() * DT_H)
            totals["actual_import_kwh"] = float(a[both].sum() * DT_H)
            totals["planned_peak_kw"] = float(p[both].max(initial=0.0))
            totals["actual_peak_kw"] = float(a[both].max(initial=0.0))
        elif unit == "battery":
            totals["planned_discharge_kwh"] = float(np.clip(p[both], 0, None).sum() * DT_H)
            totals["actual_discharge_kwh"] = float(np.clip(a[both], 0, None).sum() * DT_H)
            totals["planned_charge_kwh"] = float(np.clip(-p[both], 0, None).sum() * DT_H)
            totals["actual_charge_kwh"] = float(np.clip(-a[both], 0, None).sum() * DT_H)
        else:
            totals["planned_pv_kwh"] = float(p[both].sum() * DT_H)
            totals["actual_pv_kwh"] = float(a[both].sum() * DT_H)
    if catalog is not None:
        nothing = not (totals["import_intervals_compared"] or totals["battery_intervals_compared"])
        for side, k in (("planned", 0), ("actual", 1)):
            if nothing:  # no interval to price
                totals[f"{side}_energy_cost_yuan"] = totals[f"{side}_subsidy_yuan"] = 0.0
                continue
            try:
                money = _compared_money(catalog, site, day, index,
                                        masked["grid_import_kw"][k], masked["battery_kw"][k])
            except InvalidInputError:  # no tariff in force that day
                money = {"energy_cost_yuan": None, "subsidy_yuan": None}
            totals[f"{side}_energy_cost_yuan"] = money["energy_cost_yuan"]
            totals[f"{side}_subsidy_yuan"] = money["subsidy_yuan"]
    sources = plan_iv["source"].tolist()
    return {
        "site_id": site.id, "date": day.isoformat(), "interval_minutes": INTERVAL_MINUTES,
        "timestamps": [t.isoformat() for t in index],
        "planned": {"source": sources, "grid_import_kw": arr(plan_iv, "grid_import_kw"),
                    "battery_kw": arr(plan_iv, "battery_kw"), "soc_kwh": arr(plan_iv, "soc_kwh"),
                    "pv_kw": arr(plan_iv, "pv_kw")},
        "actual": {c: arr(act, c) for c in ("grid_import_kw", "battery_kw", "soc_kwh",
                                            "load_kw", "pv_kw")},
        "totals": {k: round(v, 6) if isinstance(v, float) else v for k, v in totals.items()},
    }
