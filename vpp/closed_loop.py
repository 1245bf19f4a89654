"""The simulation's closed loop: the controller of :mod:`vpp.control` run on a site's actual
series, interval by interval.

Every interval: if a re-plan is due (at the start of each day, every ``replan_minutes``, and
at the next interval after the measured net load strayed from the plan's by more than
``replan_deviation_frac`` of the site's peak load), the controller plans from the measured
state with nowcasts from :class:`vpp.control.History` - which holds the actual series but
answers only for the intervals before the current one. Then the plan's set-point meets the
actual load and PV through the real-time rule (:func:`vpp.realtime.realise_interval`) and the
state moves on. Flexible loads run as the day's day-ahead plan scheduled them (tomorrow's
part of a horizon is assumed to repeat today's schedule).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from models import StorageSpec
from vpp.control import (
    ErrorStats,
    History,
    SiteController,
    measured_errors,
    replan_step,
    site_controller,
)
from vpp.options import SimulationOptions
from vpp.problem import storage_in_service
from vpp.realtime import BatteryState, RealisedDay, realise_interval
from vpp.sites import Site
from vpp.timebase import DT_H, INTERVAL_MINUTES, PER_DAY

#: Clear-sky PV below this share of its maximum is night or twilight: no PV error measured.
DAYLIGHT_SHARE = 0.05


@dataclass
class LoopStats:
    """A day's re-plans: how many, how many not certified within the gap (time limit),
    the largest certified gap, and each re-plan's wall time [s]."""

    replans: int = 0
    uncertified: int = 0
    gap_max: float = 0.0
    seconds: list[float] = field(default_factory=list)
    terminal_relaxed: int = 0


class ClosedLoop:
    """One site's controller over a simulated period.

    Parameters
    ----------
    site : Site
    series : object
        The period's :class:`vpp.simulation.SiteSeries`, extended by at least one horizon
        beyond the period's end (forecasts and prices there; actuals are never read).
    rates : array
        Demand rate in force at each position [yuan/(kW·month)] (0 on capacity billing).
    month_key : array of int
        Calendar month of each position (``year * 12 + month``).
    clear_kw : array
        The site's clear-sky PV power at each position [kW].
    tariffs : callable
        ``tariffs(position)`` the tariff version in force there (for the template).
    stats : ErrorStats
    opts : SimulationOptions
        The horizon, cadence, deviation threshold, peak margin, hold value, subsidy
        awareness and solver choices.
    subsidy_rule : str
        The subsidy's counting form in the re-plans (:func:`vpp.subsidy.model_rule`).
    """

    def __init__(self, site: Site, series: object, rates: np.ndarray, month_key: np.ndarray,
                 clear_kw: np.ndarray, tariffs: object, stats: ErrorStats,
                 opts: SimulationOptions, subsidy_rule: str = "discharge") -> None:
        self.site, self.ser = site, series
        self.rates, self.month_key, self.clear = rates, month_key, clear_kw
        self.tariffs = tariffs
        self.stats = stats
        self.choices = opts
        self.horizon = int(opts.horizon_hours * 60 // INTERVAL_MINUTES)
        self.cadence = opts.replan_minutes // INTERVAL_MINUTES
        self.threshold_kw = opts.replan_deviation_frac * site.load.peak_kw
        self.aware, self.solve = opts.subsidy_aware, opts.solve_options()
        self.subsidy_rule = subsidy_rule
        self.history = History(series.load_actual_kw, series.pv_actual_kw)
        self.controllers: dict[bool, SiteController] = {}
        daylight = clear_kw > DAYLIGHT_SHARE * max(float(clear_kw.max(initial=0.0)), 1e-9)
        self.daylight = daylight

    def controller(self, pos: int, battery: bool) -> SiteController:
        """The controller for horizons from ``pos``, with or without the battery (a new one
        when the battery comes into service)."""
        if battery not in self.controllers:
            self.controllers[battery] = site_controller(
                self.site, self.ser.index[pos:pos + self.horizon], self.tariffs(pos),
                self.stats, self.choices, self.solve, self.subsidy_rule)
        return self.controllers[battery]

    def operate_day(self, start: int, storage: StorageSpec | None, state: BatteryState | None,
                    month_peak_kw: float, flexible_kw: np.ndarray, fresh: bool = False,
                    subsidy_budget_kwh: float | None = None,
                    ) -> tuple[RealisedDay, float, LoopStats]:
        """Run the day from position ``start``; the realised day, the month-to-date peak at
        its end [kW] and the re-plans' statistics. ``state`` advances in place. ``fresh``
        starts the controllers anew (the first day of a month: a month's operation then
        depends only on the state it starts from, so a resumed run repeats it exactly).
        ``subsidy_budget_kwh``: what is left of an annual cap on rewarded discharge at the
        day's start [kWh] (None: no cap); each re-plan gets it less what the day has
        discharged where the subsidy pays."""
        ser, n, h = self.ser, PER_DAY, self.horizon
        if fresh:
            self.controllers.clear()
        battery = storage is not None and storage_in_service(
            self.site, ser.index[start].date())
        ctl = self.controller(start, battery)
        out = {k: np.zeros(n) for k in ("imp", "exp", "ch", "dis", "curt", "soc")}
        over, corrected = 0.0, 0
        stats = LoopStats()
        if state is not None:
            state.new_day()
        load_act, pv_act = ser.load_actual_kw, ser.pv_actual_kw
        plan = None
        due = True
        for i in range(n):
            pos = start + i
            self.history.now = pos
            if due or plan is None:
                t0 = time.perf_counter()
                budget = None
                if subsidy_budget_kwh is not None:
                    paid = ser.subsidy_rate[start:pos] > 0
                    budget = max(0.0, subsidy_budget_kwh - float(out["dis"][:i][paid].sum())
                                 * DT_H)
                plan = self._replan(ctl, pos, start, state, month_peak_kw, flexible_kw, budget)
                stats.seconds.append(time.perf_counter() - t0)
                stats.replans += 1
                stats.terminal_relaxed += plan.terminal_relaxed
                r = plan.result
                stats.gap_max = max(stats.gap_max, r.optimality_gap)
                if r.optimality_gap > self.solve.mip_rel_gap + 1e-9:
                    stats.uncertified += 1
            k = pos - plan.start
            target = plan.defended_peak_kw if self.rates[pos] > 0 else np.inf
            o = realise_interval(storage, state, DT_H, float(load_act[pos]),
                                 float(pv_act[pos]), float(flexible_kw[i]),
                                 float(plan.setpoint_kw[k]), self.site.grid.import_limit_kw,
                                 self.site.grid.export_limit_kw, target)
            out["imp"][i], out["exp"][i] = o.grid_import_kw, o.grid_export_kw
            out["ch"][i], out["dis"][i], out["curt"][i] = (o.charge_kw, o.discharge_kw,
                                                           o.pv_curtailed_kw)
            out["soc"][i] = state.soc_kwh if state is not None else 0.0
            over += o.over_limit_kwh
            corrected += o.corrected
            month_peak_kw = max(month_peak_kw, o.grid_import_kw)
            deviation = (load_act[pos] + flexible_kw[i] - pv_act[pos]) - plan.net_load_kw[k]
            due = (k + 1 >= self.cadence or k + 1 >= h
                   or abs(deviation) > self.threshold_kw)
        self.history.now = start + n
        pv = pv_act[start:start + n]
        real = RealisedDay(pv - out["curt"], out["curt"], out["imp"], out["exp"], out["ch"],
                           out["dis"], out["soc"], np.asarray(flexible_kw, dtype=float), over,
                           corrected, state)
        return real, month_peak_kw, stats

    def _replan(self, ctl: SiteController, pos: int, day_start: int,
                state: BatteryState | None, month_peak_kw: float, flex_today: np.ndarray,
                subsidy_budget_kwh: float | None = None):
        ser, h = self.ser, self.horizon
        sl = slice(pos, pos + h)
        lead = np.arange(h)
        # flexible loads: today's schedule, repeated for tomorrow's part of the horizon
        flex = np.resize(np.roll(flex_today, -(pos - day_start)), h)
        # what has been measured today, and the errors of the forecasts made for it
        load_meas, pv_meas = self.history.measured(day_start)
        past = slice(day_start, pos)
        load_err, kc_err = measured_errors(load_meas, pv_meas, ser.load_forecast_kw[past],
                                           ser.pv_forecast_kw[past], self.clear[past],
                                           self.daylight[past])
        return replan_step(
            ctl, pos, today=pos + lead < day_start + PER_DAY,
            load_forecast_kw=ser.load_forecast_kw[sl], pv_forecast_kw=ser.pv_forecast_kw[sl],
            clear_kw=self.clear[sl], flexible_kw=flex, import_price=ser.import_price[sl],
            export_price=ser.export_price[sl],
            subsidy=ser.subsidy_rate[sl] if self.aware else np.zeros(h),
            month_key=self.month_key[sl], demand_rate=self.rates[sl], load_err=load_err,
            kc_err=kc_err, month_peak_kw=month_peak_kw, state=state,
            subsidy_budget_kwh=subsidy_budget_kwh)
