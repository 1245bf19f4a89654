"""Live operation: one control step of a site from its stored measurements (``vpp operate``
and the service's scheduler).

At the decision time ``now`` the step decides the 15-minute interval that contains it and
plans the ``horizon_hours`` after its start, the way the simulation's closed loop does
(:func:`vpp.control.replan_step`, the same code):

1. **state** from the measurements (:func:`vpp.state.site_state`): SOC now (the site's
   nominal SOC when none is measured, said so), the month-to-date metered peak; the
   battery's side, hold and rest and today's discharge from its metered power
   (:func:`vpp.state.battery_state`);
2. **forecasts** from 00:00 today over the horizon: the site's archetype load with its
   flexible loads spread evenly over their windows (the metered load includes them), the
   PV P50 and clear-sky PV of the site's pvlib chain (climatology), prices, subsidy and
   demand rates of the tariff in force each day;
3. **measured errors** of today so far against those forecasts (:func:`vpp.control.
   measured_errors`; unmeasured intervals are skipped), then the nowcast, the peak margin
   and the certified re-plan (:func:`vpp.control.replan_step`).

The result (:class:`Setpoints`) is the battery set-point ``discharge - charge`` [kW] of
every 15-minute interval of the horizon (the first is the one to apply now), the planned
import and SOC, the peak the real-time rule defends and the certified gap.
:class:`Operator` keeps one :class:`vpp.control.SiteController` per site so that steps
after the first warm-start on the persistent HiGHS model.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from vpp.catalog import Catalog
from vpp.closed_loop import DAYLIGHT_SHARE
from vpp.control import ErrorStats, SiteController, measured_errors, replan_step, site_controller
from vpp.measurements import to_intervals, zero_fields_of
from vpp.options import OperateOptions
from vpp.problem import demand_rate, shiftable_loads, storage_in_service
from vpp.sites import Site
from vpp.state import battery_state, interval_floor, month_start, site_state
from vpp.subsidy import subsidy_rate_series
from vpp.tariffs import price_series
from vpp.timebase import DT_H, INTERVAL_MINUTES, PER_DAY, TZ, horizon

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Setpoints:
    """One control step's decision (units in the names; times ISO 8601 +08:00)."""

    site_id: str
    decided_at: str
    start: str
    interval_minutes: int
    timestamps: list[str]
    setpoint_kw: list[float]
    grid_import_kw: list[float]
    soc_kwh: list[float]
    defended_peak_kw: float
    optimality_gap: float
    status: str
    solve_seconds: float
    state_relaxed: bool
    initial: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for k in ("setpoint_kw", "grid_import_kw", "soc_kwh"):
            out[k] = [round(v, 6) for v in out[k]]
        return out


@dataclass
class Forecasts:
    """Day-ahead forecasts from 00:00 of the decision's day [kW], prices [yuan/kWh], the
    subsidy counted [yuan/kWh], demand rates [yuan/(kW·month)] and calendar months."""

    index: pd.DatetimeIndex
    load_kw: np.ndarray
    pv_kw: np.ndarray
    clear_kw: np.ndarray
    import_price: np.ndarray
    export_price: np.ndarray
    subsidy: np.ndarray
    demand_rate: np.ndarray
    month_key: np.ndarray
    tariffs: list[Any]


def forecasts(catalog: Catalog, site: Site, day: dt.date, days: int) -> Forecasts:
    """The site's forecasts from 00:00 of ``day`` for ``days`` days (see the module
    docstring, step 2)."""
    from forecasts.load import archetype_profile
    from forecasts.pv_forecast import forecast_pv
    from vpp.pv_inputs import site_pv_model

    index = horizon(day, days)
    n = len(index)
    prices = price_series(catalog.tariffs, site.tariff_id, index, site.grid.transformer_kva)
    tariffs = [catalog.tariffs.select(site.tariff_id, d.date()) for d in index[::PER_DAY]]
    rates = np.repeat([demand_rate(site, t) for t in tariffs], PER_DAY)
    load = archetype_profile(catalog.archetypes[site.load.archetype], site.load.peak_kw,
                             index).to_numpy(copy=True)
    for sh in shiftable_loads(site, index):
        load[sh.start:sh.end] += sh.energy_kwh / ((sh.end - sh.start) * DT_H)
    if site.pv_arrays:
        fc = forecast_pv(site_pv_model(site, catalog.calibrations), index).frame
        pv, clear = fc["p50_kw"].to_numpy(), fc["clear_kw"].to_numpy()
    else:
        pv = clear = np.zeros(n)
    st = site.storage
    subsidy = np.zeros(n)
    if st is not None:
        subsidy = subsidy_rate_series(catalog.policy_for(site), st.power_kw,
                                      st.grid_connection_date,
                                      index, periods=prices["period"].to_numpy()).to_numpy()
    local = index.tz_convert(TZ)
    return Forecasts(index, load, pv, clear, prices["import_price_yuan_per_kwh"].to_numpy(),
                     prices["export_price_yuan_per_kwh"].to_numpy(), subsidy, rates,
                     np.asarray(local.year * 12 + local.month, dtype=np.int64), tariffs)


class Operator:
    """Control steps for the sites of a catalog, one :class:`SiteController` kept per site
    (and battery in or out of service) between steps."""

    def __init__(self, catalog: Catalog, options: OperateOptions | None = None,
                 stats: ErrorStats | None = None) -> None:
        from forecasts.synthetic import load_error_model

        self.catalog = catalog
        self.options = options or OperateOptions()
        self.stats = stats or ErrorStats.from_error_model(load_error_model())
        self.controllers: dict[tuple[str, bool, int, str], SiteController] = {}

    def step(self, site_id: str, measurements: pd.DataFrame,
             now: dt.datetime | pd.Timestamp) -> Setpoints:
        """One control step of ``site_id`` at ``now`` from its measurement rows (the month
        so far at least, as :mod:`vpp.measurements` stores them)."""
        import pandas as pd

        opts = self.options
        site = self.catalog.fleet.site(site_id)
        local = pd.Timestamp(now).tz_convert(TZ)
        decision = interval_floor(local)
        day0 = decision.normalize()
        k = int((decision - day0) / pd.Timedelta(minutes=INTERVAL_MINUTES))
        h = round(opts.horizon_hours * 60 / INTERVAL_MINUTES)
        fc = forecasts(self.catalog, site, day0.date(), math.ceil((k + h) / PER_DAY))
        sl = slice(k, k + h)
        notes: list[str] = []
        state = site_state(self.catalog, site_id, measurements, local)
        if state.age_s is None or state.age_s > opts.max_age_minutes * 60:
            notes.append(f"stale measurements: newest data until {state.data_until}, older "
                         f"than {opts.max_age_minutes:g} min")
        battery = storage_in_service(site, day0.date())
        key = (site_id, battery, h, site.model_dump_json())  # a re-registered site: anew
        ctl = self.controllers.get(key)
        if ctl is None:
            ctl = site_controller(site, fc.index[sl], fc.tariffs[0], self.stats, opts,
                                  opts.solve_options())
            self.controllers[key] = ctl
        iv = to_intervals(measurements, min(month_start(local), day0), decision,
                          zero_fields_of(site))
        soc_src = "measured"
        bstate = None
        if battery and ctl.template.storage is not None:
            s = ctl.template.storage
            soc = state.soc_kwh
            if soc is None:
                soc, soc_src = ctl.nominal, "site nominal SOC (none measured)"
                notes.append("no SOC measured: the step starts from the site's nominal SOC")
            elif not s.soc_min_kwh <= soc <= s.soc_max_kwh:
                soc_src = f"measured {soc:g} kWh, taken to the SOC window"
                soc = min(max(soc, s.soc_min_kwh), s.soc_max_kwh)
            bstate = battery_state(site, iv, soc, decision)
        today_iv = iv[iv.index >= day0]
        past = slice(0, k)
        daylight = fc.clear_kw > DAYLIGHT_SHARE * max(float(fc.clear_kw.max(initial=0.0)), 1e-9)
        load_err, kc_err = measured_errors(
            today_iv["load_kw"].to_numpy(dtype=float), today_iv["pv_kw"].to_numpy(dtype=float),
            fc.load_kw[past], fc.pv_kw[past], fc.clear_kw[past], daylight[past])
        lead = np.arange(h)
        plan = replan_step(
            ctl, k, today=k + lead < PER_DAY, load_forecast_kw=fc.load_kw[sl],
            pv_forecast_kw=fc.pv_kw[sl], clear_kw=fc.clear_kw[sl], flexible_kw=np.zeros(h),
            import_price=fc.import_price[sl], export_price=fc.export_price[sl],
            subsidy=fc.subsidy[sl] if opts.subsidy_aware else np.zeros(h),
            month_key=fc.month_key[sl], demand_rate=fc.demand_rate[sl], load_err=load_err,
            kc_err=kc_err, month_peak_kw=state.month_peak_kw, state=bstate)
        r = plan.result
        stamps = fc.index[sl]
        return Setpoints(
            site_id=site_id, decided_at=local.isoformat(), start=decision.isoformat(),
            interval_minutes=INTERVAL_MINUTES, timestamps=[t.isoformat() for t in stamps],
            setpoint_kw=[float(v) for v in plan.setpoint_kw],
            grid_import_kw=[float(v) for v in r.grid_import_kw],
            soc_kwh=[float(v) for v in r.soc_kwh],
            defended_peak_kw=float(plan.defended_peak_kw),
            optimality_gap=float(r.optimality_gap), status=r.status,
            solve_seconds=float(r.solve_seconds), state_relaxed=plan.terminal_relaxed,
            initial={
                "soc_kwh": None if bstate is None else bstate.soc_kwh,
                "soc_source": soc_src if bstate is not None else "no battery in service",
                "month_peak_kw": state.month_peak_kw,
                "month_peak_source": (f"measured: {state.intervals_measured} of "
                                      f"{state.intervals_so_far} intervals this month"),
                "side": None if bstate is None else bstate.side,
                "held_h": None if bstate is None or math.isinf(bstate.held_h)
                else bstate.held_h,
                "discharged_today_kwh": 0.0 if bstate is None else bstate.discharged_today_kwh,
                "data_until": state.data_until, "age_s": state.age_s,
                "measured_today_intervals": int(today_iv["load_kw"].notna().sum()),
            },
            notes=notes)
