"""One site's dispatch problem from its description, its tariff and its forecasts.

The one place where a :class:`vpp.sites.Site` becomes a :class:`models.DispatchProblem`:
day-ahead plans (:mod:`vpp.planning`), the VPP's joint plans, the simulation's daily plans
and the service all build their problems here, so a site parameter means the same thing in
each of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import fields

import numpy as np
import pandas as pd

from models import DispatchProblem, GridSpec, ShiftableLoad, StorageSpec
from vpp.sites import Site, clock_minutes
from vpp.tariffs import Tariff
from vpp.timebase import INTERVAL_MINUTES, PER_DAY, TZ, day_numbers

#: StorageSpec fields computed here rather than copied from the site's storage by name.
_DERIVED = {"soc_min_kwh", "soc_max_kwh", "soc_initial_kwh", "soc_terminal_min_kwh"}


def storage_in_service(site: Site, day: dt.date) -> bool:
    """Whether the site's battery exists on ``day``: it is connected to the grid on or
    before it (a station that is not connected yet cannot be dispatched)."""
    return site.storage is not None and site.storage.grid_connection_date <= day


def storage_spec(site: Site, soc_initial_kwh: float | None = None,
                 soc_terminal_min_kwh: float | None = None,
                 day: dt.date | None = None) -> StorageSpec | None:
    """The site's battery for the model: its SOC window in kWh, starting at
    ``soc_initial_kwh`` (default the site's ``soc_initial_frac``) and ending no lower than
    ``soc_terminal_min_kwh`` (default the initial level). Every other parameter is copied
    by name from the site's storage. None without a battery, or when ``day`` is before its
    grid connection."""
    st = site.storage
    if st is None or (day is not None and not storage_in_service(site, day)):
        return None
    same = {f.name: getattr(st, f.name) for f in fields(StorageSpec)
            if f.name not in _DERIVED and hasattr(st, f.name)}
    return StorageSpec(
        **same, soc_min_kwh=st.soc_min_frac * st.energy_kwh,
        soc_max_kwh=st.soc_max_frac * st.energy_kwh,
        soc_initial_kwh=(st.soc_initial_frac * st.energy_kwh if soc_initial_kwh is None
                         else soc_initial_kwh),
        soc_terminal_min_kwh=soc_terminal_min_kwh)


def demand_rate(site: Site, tariff: Tariff) -> float:
    """The demand charge the site pays under ``tariff`` [yuan/(kW·month)]: the tariff's
    rate on sites billed on demand, 0 on sites billed on transformer capacity (whose charge
    does not depend on dispatch)."""
    return tariff.demand_yuan_per_kw_month if site.billing_basis == "demand" else 0.0


def grid_spec(site: Site, tariff: Tariff | Sequence[Tariff], month_peak_kw: float = 0.0,
              ) -> GridSpec:
    """The site's connection and the demand part of ``tariff`` (one, or one per billing
    month of the horizon: each month billed at its own version's rate)."""
    tariffs = [tariff] if isinstance(tariff, Tariff) else list(tariff)
    rates = tuple(demand_rate(site, t) for t in tariffs)
    return GridSpec(
        import_limit_kw=site.grid.import_limit_kw, export_limit_kw=site.grid.export_limit_kw,
        demand_rate_yuan_per_kw_month=rates[0] if len(set(rates)) == 1 else rates,
        month_peak_kw=month_peak_kw, contract_demand_kw=site.grid.contract_demand_kw,
        contract_tolerance=tariffs[0].contract_tolerance)


def billing_months(index: pd.DatetimeIndex) -> np.ndarray:
    """Billing-month number of each interval (0 for the first interval's calendar month)."""
    local = index.tz_convert(TZ)
    key = np.asarray(local.year * 12 + local.month, dtype=np.int64)
    return key - key[0]


def shiftable_loads(site: Site, index: pd.DatetimeIndex) -> tuple[ShiftableLoad, ...]:
    """One :class:`ShiftableLoad` per flexible load and calendar day of the horizon (which
    starts at 00:00 and covers whole days)."""
    out = []
    days = len(index) // PER_DAY
    for d in range(days):
        day = index[d * PER_DAY].date().isoformat()
        for fl in site.flexible_loads:
            a = clock_minutes(fl.window_start) // INTERVAL_MINUTES
            b = clock_minutes(fl.window_end) // INTERVAL_MINUTES
            name = fl.name if days == 1 else f"{fl.name} {day}"
            out.append(ShiftableLoad(name, fl.energy_kwh, d * PER_DAY + a, d * PER_DAY + b,
                                     fl.p_max_kw, fl.p_min_kw))
    return tuple(out)


def site_problem(
    site: Site, index: pd.DatetimeIndex, *, load_kw: np.ndarray, pv_kw: np.ndarray,
    import_price: np.ndarray, export_price: np.ndarray, subsidy_rate: np.ndarray,
    tariff: Tariff | Sequence[Tariff], month_peak_kw: float = 0.0,
    soc_initial_kwh: float | None = None, soc_terminal_min_kwh: float | None = None,
    subsidy_aware: bool = True, labels: bool = True, shiftable: bool = True,
    subsidy_rule: str = "discharge", subsidy_budget_kwh: float | None = None,
) -> DispatchProblem:
    """The dispatch problem of ``site`` on ``index`` (15-minute interval starts from 00:00,
    whole days).

    Parameters
    ----------
    load_kw, pv_kw : array
        Inflexible load and available PV per interval [kW].
    import_price, export_price : array
        Energy prices per interval [yuan/kWh].
    subsidy_rate : array
        Storage subsidy per kWh discharged [yuan/kWh]; counted in the objective only when
        ``subsidy_aware``.
    tariff : Tariff or sequence of Tariff
        The version whose demand rate and contract rule apply, or one per billing month the
        horizon touches (each month is billed on its own peak).
    month_peak_kw : float
        Highest 15-minute import so far in the first billing month [kW].
    soc_initial_kwh, soc_terminal_min_kwh : float, optional
        See :func:`storage_spec`. Before the battery's grid connection there is none.
    labels : bool
        Name intervals by local time in error messages (costs a little per problem).
    shiftable : bool
        Plan the site's flexible loads (False: their power is part of ``load_kw``).
    subsidy_rule, subsidy_budget_kwh
        How the subsidy counts (:func:`vpp.subsidy.model_rule`, :func:`vpp.subsidy.
        annual_budget_kwh`).
    """
    n = len(index)
    rate = np.asarray(subsidy_rate, dtype=float)
    months = billing_months(index)
    first_day = index[0].tz_convert(TZ).date()
    return DispatchProblem(
        dt_h=INTERVAL_MINUTES / 60.0,
        load_kw=np.asarray(load_kw, dtype=float),
        pv_kw=np.asarray(pv_kw, dtype=float),
        import_price_yuan_per_kwh=np.asarray(import_price, dtype=float),
        export_price_yuan_per_kwh=np.asarray(export_price, dtype=float),
        subsidy_yuan_per_kwh=rate if subsidy_aware else np.zeros(n),
        day_of_interval=day_numbers(index),
        storage=storage_spec(site, soc_initial_kwh, soc_terminal_min_kwh, first_day),
        grid=grid_spec(site, tariff, month_peak_kw),
        shiftable=shiftable_loads(site, index) if shiftable else (),
        interval_labels=(tuple(index.tz_convert(TZ).strftime("%Y-%m-%d %H:%M")) if labels
                         else None),
        month_of_interval=months if months[-1] > 0 else None,
        subsidy_rule=subsidy_rule, subsidy_budget_kwh=subsidy_budget_kwh,
    )
