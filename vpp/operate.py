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

import dataclasses
import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from models import StorageSpec, soc_after
from vpp.catalog import Catalog
from vpp.closed_loop import DAYLIGHT_SHARE
from vpp.control import ErrorStats, SiteController, measured_errors, replan_step, site_controller
from vpp.measurements import to_intervals, zero_fields_of
from vpp.options import OperateOptions
from vpp.problem import demand_rate, shiftable_loads, storage_in_service
from vpp.realtime import BatteryState, realise_interval
from vpp.sites import Site
from vpp.state import battery_state, interval_floor, month_start, site_state
from vpp.subsidy import model_rule, subsidy_rate_series
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
                                  opts.solve_options(),
                                  model_rule(self.catalog.policy_for(site)))
            self.controllers[key] = ctl
        iv = to_intervals(measurements, min(month_start(local), day0), decision,
                          zero_fields_of(site), partial=True)
        soc_src = "measured"
        bstate = None
        if battery and ctl.template.storage is not None:
            s = ctl.template.storage
            soc = state.soc_kwh
            if soc is None:
                soc, soc_src = ctl.nominal, "site nominal SOC (none measured)"
                notes.append("no SOC measured: the step starts from the site's nominal SOC")
            else:
                read_at = pd.Timestamp(state.soc_measured_at)
                soc, rolled_h = soc_at(s, soc, read_at, decision, measurements)
                since_h = max(0.0, (decision - read_at) / pd.Timedelta(hours=1))
                if since_h - rolled_h > INTERVAL_MINUTES / 60 + 1e-9:
                    notes.append(
                        f"the SOC was read {since_h * 60:.0f} min before this step and the "
                        f"battery power is metered for {rolled_h * 60:.0f} min of that: the "
                        "rest is taken as idle (0 kW)")
                if rolled_h > 0:
                    soc_src = (f"measured {state.soc_kwh:g} kWh at {state.soc_measured_at}, "
                               f"carried to {decision:%H:%M} with the metered battery power "
                               f"({rolled_h * 60:.0f} min)")
                if not s.soc_min_kwh <= soc <= s.soc_max_kwh:
                    soc_src += f"; {soc:g} kWh taken to the SOC window"
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
        setpoints = [float(v) for v in plan.setpoint_kw]
        imports = [float(v) for v in r.grid_import_kw]
        socs = [float(v) for v in r.soc_kwh]
        if bstate is not None:
            s = ctl.template.storage
            now_kw, why = guard_running_interval(
                s, bstate, setpoints[0], running_interval(measurements, decision, local),
                plan.defended_peak_kw, float(np.atleast_1d(ctl.template.grid.import_limit_kw)[0]),
                ctl.template.grid.export_limit_kw)
            if why:
                notes.append(f"set-point now {setpoints[0]:,.1f} -> {now_kw:,.1f} kW: {why}; "
                             "the horizon's later intervals keep the plan until the next step")
                # the interval's planned import and SOC follow the guarded set-point; later
                # SOCs move by the same energy (kept in the window)
                imports[0] = max(0.0, imports[0] - (now_kw - setpoints[0]))
                shift = soc_after(s, bstate.soc_kwh, now_kw, DT_H) - socs[0]
                socs = [min(max(v + shift, s.soc_min_kwh), s.soc_max_kwh) for v in socs]
                setpoints[0] = now_kw
        return Setpoints(
            site_id=site_id, decided_at=local.isoformat(), start=decision.isoformat(),
            interval_minutes=INTERVAL_MINUTES, timestamps=[t.isoformat() for t in stamps],
            setpoint_kw=setpoints, grid_import_kw=imports, soc_kwh=socs,
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


def soc_at(s: StorageSpec, soc_kwh: float, read_at: pd.Timestamp, at: pd.Timestamp,
           rows: pd.DataFrame) -> tuple[float, float]:
    """The SOC [kWh] at ``at`` from a reading taken at ``read_at`` before it, carried forward
    with the metered battery power of the rows that cover the time between (each row's
    ``battery_kw`` over its own interval, cut at ``at``; an unmetered stretch moves
    nothing), and the hours so carried. A reading at or after ``at`` is returned as it is."""
    import pandas as pd

    if read_at >= at:
        return soc_kwh, 0.0
    span = rows[(rows.index >= read_at) & (rows.index < at)]
    hours = 0.0
    for t, row in span.iterrows():
        b = row.get("battery_kw")
        if b is None or not math.isfinite(b):
            continue
        end = min(t + pd.Timedelta(minutes=float(row["interval_minutes"])), at)
        dt_h = (end - t) / pd.Timedelta(hours=1)
        soc_kwh = soc_after(s, soc_kwh, float(b), dt_h)
        hours += dt_h
    return soc_kwh, hours


@dataclass(frozen=True)
class RunningInterval:
    """What is measured of the 15-minute interval under way: its share measured so far
    [-] and the mean import, export and battery power over that share [kW]."""

    measured_frac: float
    import_kw: float
    export_kw: float
    battery_kw: float


def running_interval(rows: pd.DataFrame, start: pd.Timestamp, now: pd.Timestamp,
                     ) -> RunningInterval | None:
    """The measured part of the interval from ``start``: the rows stamped before ``now``
    read as that interval by :func:`vpp.measurements.to_intervals` (its import coverage and
    mean powers; export 0 where not metered); None when its import or battery power is not
    measured yet."""
    import pandas as pd

    iv = to_intervals(rows[rows.index < now], start,
                      start + pd.Timedelta(minutes=INTERVAL_MINUTES), partial=True).iloc[0]
    if not (np.isfinite(iv["grid_import_kw"]) and np.isfinite(iv["battery_kw"])):
        return None
    export = iv["grid_export_kw"]
    return RunningInterval(float(iv["import_coverage"]), float(iv["grid_import_kw"]),
                           float(export) if np.isfinite(export) else 0.0,
                           float(iv["battery_kw"]))


def guard_running_interval(
    s: StorageSpec, state: BatteryState, setpoint_kw: float, run: RunningInterval | None,
    defended_peak_kw: float, import_limit_kw: float, export_limit_kw: float,
) -> tuple[float, str]:
    """The set-point for the rest of the running interval with the real-time rule's peak
    and export guards (:func:`vpp.realtime.realise_interval`) applied to what is measured
    of it: the site's net load so far (import - export + battery) is taken to go on, and
    the rest of the interval may import only what keeps the interval's mean at the defended
    peak. Returns the set-point [kW] (discharge positive) and why it changed ("" if not);
    ``state`` is left as it is.

    Example: peak 7,000 kW defended, 5 of 15 minutes measured at 8,500 kW import with the
    battery idle: the remaining 10 minutes may import (7,000 - 8,500/3) x 1.5 = 6,250 kW,
    so a planned 2,500 kW charge becomes a 2,250 kW discharge (if the battery has it)."""
    if run is None or s is None:
        return setpoint_kw, ""
    net_load = run.import_kw - run.export_kw + run.battery_kw
    rest = 1.0 - run.measured_frac
    target = (defended_peak_kw if rest <= 1e-9 else
              (defended_peak_kw - run.measured_frac * run.import_kw) / rest)
    out = realise_interval(s, dataclasses.replace(state), DT_H, net_load, 0.0, 0.0,
                           setpoint_kw, import_limit_kw,
                           export_limit_kw, max(target, 0.0))
    b = out.discharge_kw - out.charge_kw
    if abs(b - setpoint_kw) < 0.05:
        return setpoint_kw, ""
    return b, (f"{run.measured_frac * INTERVAL_MINUTES:.0f} of {INTERVAL_MINUTES} min of the "
               f"running interval measured at {run.import_kw:,.0f} kW import (net load "
               f"{net_load:,.0f} kW); the rest may import {max(target, 0.0):,.0f} kW to hold "
               f"the defended peak of {defended_peak_kw:,.0f} kW (the real-time rule's "
               "guards)")
