"""Closed-loop control of one site: intraday forecast updates and rolling re-plans (MPC).

At each decision time ``now`` (a 15-minute interval start; on a cadence, and early when the
measurements stray from the plan) the controller sees only what has been measured before
``now`` (:class:`History`) and the site's state (:class:`vpp.realtime.BatteryState`,
month-to-date peak), and plans the next ``horizon`` intervals (24 h by default, never less):

1. **Nowcast.** The day-ahead forecasts are corrected with today's measured errors, the way
   the forecast-error model says errors behave (:class:`ErrorStats`): a day-long bias,
   estimated from today's errors so far (shrunk towards 0 while there are few), and a
   15-minute component that persists with correlation ``rho`` per quarter-hour::

       load[t] = forecast[t] * (1 + bias + (e_last - bias) * rho_load^(lead + 1))
       kc[t]   = kc_forecast[t] + bias_pv + (e_last_pv - bias_pv) * rho_pv^(lead + 1)

   (``kc`` the PV clear-sky index: PV power over the clear-sky PV power; tomorrow's
   intervals keep no bias: daily errors are independent from day to day).
2. **Peak protection.** The forecast error left after the nowcast has a standard deviation
   that grows with the lead time; the plan's demand charge provisions ``z`` of them above
   its own import (:attr:`models.GridSpec.peak_margin_kw`): the battery keeps what it needs
   to hold the peak if the load comes in high or the PV low::

       sigma_load(t)^2 = load[t]^2 (s_t^2 (1 - rho^(2 (lead + 1))) + s_bias^2)
       sigma_pv(t)^2   = clear[t]^2 (s_t,pv^2 (1 - rho_pv^(2 (lead + 1))) + s_bias,pv^2)
       margin[t] = z * sqrt(sigma_load^2 + sigma_pv^2)          (0 for the current interval)

   with ``s_bias^2 = s_daily^2 * k / (k + n)`` after ``n`` measured intervals today.
3. **Re-plan** the storage over the horizon from the measured state (SOC, side and time
   held, cycles used today, month-to-date peak), each billing month billed on its own peak,
   the battery ending the horizon no lower than it is now (or the site's nominal level if
   lower): a 24-hour periodic end state. Among plans of (almost) the same money the battery
   keeps its energy longer (a small hold value per kWh and hour,
   :attr:`models.StorageSpec.hold_value_yuan_per_kwh_h`): the LP is indifferent to when it
   discharges within a price period, and energy discharged early is gone when the load
   comes in above its forecast late in the period (measured: July 2025, CZ-MG-01, savings
   164 -> 168 thousand yuan against 186 with perfect foresight). Flexible loads run as the
   day-ahead plan scheduled them. Each re-plan is certified within its gap on a persistent
   HiGHS model (:class:`models.PersistentDispatch`, rebuilt only when the horizon's
   structure changes).

The set-point of the current interval then meets the actual load through the real-time rule
(:mod:`vpp.realtime`), which defends the planned peak (with its margin) until the next re-plan.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models import (
    DispatchProblem,
    DispatchResult,
    InfeasiblePlanError,
    PersistentDispatch,
    SolveOptions,
    structure_key,
)
from vpp.options import ControlChoices
from vpp.problem import site_problem
from vpp.realtime import BatteryState
from vpp.sites import Site
from vpp.tariffs import Tariff
from vpp.timebase import DT_H


class PeekError(RuntimeError):
    """A controller asked for a measurement at or after its decision time."""


class History:
    """Measured load and PV [kW] (and the day-ahead forecasts made for them) of a site,
    readable only before the decision time :attr:`now` (a position in the arrays)."""

    def __init__(self, load_kw: np.ndarray, pv_kw: np.ndarray) -> None:
        self._load = np.asarray(load_kw, dtype=float)
        self._pv = np.asarray(pv_kw, dtype=float)
        self.now = 0

    def measured(self, start: int, end: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Measured load and PV of intervals ``[start, end)`` (default up to now).

        Raises
        ------
        PeekError
            ``end`` is after the decision time.
        """
        end = self.now if end is None else end
        if end > self.now:
            raise PeekError(f"measurements up to interval {end} asked for at interval "
                            f"{self.now}: the future is not measured yet")
        start = max(0, min(start, end))
        return self._load[start:end], self._pv[start:end]


@dataclass(frozen=True)
class ErrorStats:
    """Forecast-error statistics the nowcast and the peak margin use (relative load errors,
    PV clear-sky-index errors; standard deviations [-], lag-1 correlations per 15 minutes).
    ``prior_intervals`` is the weight, in intervals, of the prior belief that today's bias is
    0."""

    load_daily_sigma: float = 0.04
    load_intraday_sigma: float = 0.05
    load_persistence: float = 0.9
    pv_daily_sigma: float = 0.10
    pv_intraday_sigma: float = 0.08
    pv_persistence: float = 0.95
    prior_intervals: float = 8.0

    @classmethod
    def from_error_model(cls, m: object) -> ErrorStats:
        """From :class:`forecasts.synthetic.ErrorModel` (the same file the simulation's
        errors are drawn with, or one fitted to a site's history)."""
        return cls(load_daily_sigma=m.load_daily_sigma, load_intraday_sigma=m.load_intraday_sigma,
                   load_persistence=m.load_intraday_persistence, pv_daily_sigma=m.pv_daily_sigma,
                   pv_intraday_sigma=m.pv_intraday_sigma,
                   pv_persistence=m.pv_intraday_persistence)


@dataclass
class Nowcast:
    """Updated forecasts over a horizon [kW] and their standard deviations [kW]."""

    load_kw: np.ndarray
    pv_kw: np.ndarray
    load_sigma_kw: np.ndarray
    pv_sigma_kw: np.ndarray


def _bias(errors: np.ndarray, sigma_daily: float, prior: float) -> tuple[float, float, float]:
    """Today's bias estimate, its remaining variance and the last error, from today's
    measured errors (the mean shrunk towards 0 with ``prior`` intervals of weight)."""
    n = len(errors)
    if n == 0:
        return 0.0, sigma_daily ** 2, 0.0
    w = n / (n + prior)
    return w * float(errors.mean()), sigma_daily ** 2 * prior / (n + prior), float(errors[-1])


def nowcast(stats: ErrorStats, lead_of: np.ndarray, today: np.ndarray, load_fc: np.ndarray,
            pv_fc: np.ndarray, clear: np.ndarray, load_err: np.ndarray,
            kc_err: np.ndarray) -> Nowcast:
    """The forecasts of the module docstring over a horizon.

    Parameters
    ----------
    lead_of : array of int
        Lead of each horizon interval (0 = the current one).
    today : array of bool
        Whether each horizon interval is on today's date (the bias applies).
    load_fc, pv_fc, clear : array
        Day-ahead load and PV forecasts and the clear-sky PV power over the horizon [kW].
    load_err, kc_err : array
        Today's measured errors so far: relative load errors ``actual / forecast - 1``,
        clear-sky-index errors ``(actual - forecast) / clear`` on daylight intervals.
    """
    b, var_b, last = _bias(load_err, stats.load_daily_sigma, stats.prior_intervals)
    decay = stats.load_persistence ** (lead_of + 1.0)
    err = np.where(today, b + (last - b) * decay, (last - b) * decay)
    var = (stats.load_intraday_sigma ** 2 * (1.0 - decay ** 2)
           + np.where(today, var_b, stats.load_daily_sigma ** 2))
    load = np.clip(load_fc * (1.0 + err), 0.0, None)
    bp, var_bp, last_p = _bias(kc_err, stats.pv_daily_sigma, stats.prior_intervals)
    decay_p = stats.pv_persistence ** (lead_of + 1.0)
    err_p = np.where(today, bp + (last_p - bp) * decay_p, (last_p - bp) * decay_p)
    var_p = (stats.pv_intraday_sigma ** 2 * (1.0 - decay_p ** 2)
             + np.where(today, var_bp, stats.pv_daily_sigma ** 2))
    pv = np.clip(pv_fc + err_p * clear, 0.0, None)
    return Nowcast(load, pv, load * np.sqrt(var), clear * np.sqrt(var_p))


def site_controller(site: Site, index: pd.DatetimeIndex, tariff: Tariff, stats: ErrorStats,
                    choices: ControlChoices, solve: SolveOptions,
                    subsidy_rule: str = "discharge") -> SiteController:
    """The controller of ``site`` for horizons of ``len(index)`` intervals, its template
    built on ``index`` with ``tariff`` (:func:`vpp.problem.site_problem`, no shiftable loads),
    the subsidy's counting form ``subsidy_rule`` (:func:`vpp.subsidy.model_rule`; net of
    grid charging counts the rest of today as the day: what was charged and discharged
    earlier today is settled, not planned) and the battery's hold value of ``choices``."""
    zeros = np.zeros(len(index))
    template = site_problem(site, index, load_kw=zeros, pv_kw=zeros, import_price=zeros,
                            export_price=zeros, subsidy_rate=zeros, tariff=tariff,
                            labels=False, shiftable=False, subsidy_rule=subsidy_rule)
    nominal = 0.0
    if template.storage is not None:
        nominal = template.storage.soc_initial_kwh
        template = dataclasses.replace(template, storage=dataclasses.replace(
            template.storage, hold_value_yuan_per_kwh_h=choices.hold_value_yuan_per_kwh_h))
    return SiteController(template, stats, choices.peak_z, nominal, solve)


@dataclass
class ControlPlan:
    """A re-plan: its first interval (a position in the period), the set-points over the
    horizon ``discharge - charge`` [kW], the peak the real-time rule defends [kW], the net
    load it was planned on [kW], and the solve."""

    start: int
    setpoint_kw: np.ndarray
    defended_peak_kw: float
    net_load_kw: np.ndarray
    result: DispatchResult
    terminal_relaxed: bool = False


class SiteController:
    """Rolling re-plans of one site (see the module docstring).

    Parameters
    ----------
    template : DispatchProblem
        The site's problem over one horizon as :func:`vpp.problem.site_problem` builds it
        (without shiftable loads: their planned power is part of the load a re-plan is
        given); each re-plan replaces its numbers.
    stats : ErrorStats
    peak_z : float
        Standard deviations of forecast error the peak margin provisions for [-].
    nominal_soc_kwh : float
        The site's nominal state of charge [kWh] (the end state when the battery is above
        it).
    solve : SolveOptions
    """

    def __init__(self, template: DispatchProblem, stats: ErrorStats, peak_z: float,
                 nominal_soc_kwh: float, solve: SolveOptions) -> None:
        self.template = template
        self.stats = stats
        self.peak_z = peak_z
        self.nominal = nominal_soc_kwh
        self.solve_options = solve
        self.solver: PersistentDispatch | None = None
        self.replans = 0
        self.rebuilds = 0
        self.last: ControlPlan | None = None

    def problem(self, *, load_kw: np.ndarray, pv_kw: np.ndarray, import_price: np.ndarray,
                export_price: np.ndarray, subsidy: np.ndarray, days: np.ndarray,
                months: np.ndarray, month_rates: tuple[float, ...] | float,
                month_peak_kw: float, margin_kw: np.ndarray, state: BatteryState | None,
                terminal_kwh: float | None, subsidy_budget_kwh: float | None = None,
                ) -> DispatchProblem:
        """The template with this re-plan's numbers (``subsidy_budget_kwh``: what is left
        of an annual cap on rewarded discharge [kWh], None without one)."""
        t = self.template
        grid = dataclasses.replace(t.grid, month_peak_kw=month_peak_kw, peak_margin_kw=margin_kw,
                                   demand_rate_yuan_per_kw_month=month_rates)
        storage = t.storage
        if storage is not None and state is not None:
            storage = dataclasses.replace(
                storage, soc_initial_kwh=state.soc_kwh, soc_terminal_min_kwh=terminal_kwh,
                cycles_used_first_day_kwh=state.discharged_today_kwh,
                direction_initial=state.side,
                direction_held_h=None if math.isinf(state.held_h) else min(state.held_h, 24.0))
        return dataclasses.replace(
            t, load_kw=load_kw, pv_kw=pv_kw, import_price_yuan_per_kwh=import_price,
            export_price_yuan_per_kwh=export_price,
            subsidy_yuan_per_kwh=subsidy, subsidy_budget_kwh=subsidy_budget_kwh,
            day_of_interval=days, month_of_interval=months if months[-1] > 0 else None,
            storage=storage, grid=grid)

    def margin(self, now: Nowcast, lead_of: np.ndarray) -> np.ndarray:
        """The peak margin over the horizon [kW] (0 for the current interval)."""
        m = self.peak_z * np.sqrt(now.load_sigma_kw ** 2 + now.pv_sigma_kw ** 2)
        return np.where(lead_of == 0, 0.0, m)

    def _relaxed(self, p: DispatchProblem, gap_floor_yuan: float,
                 ) -> tuple[DispatchResult, DispatchProblem]:
        """Solve ``p`` without what the measured state cannot honour, in turn: the end state;
        then the day's cycles already used and the hold carried in; then the import limit
        (a nowcast above what the connection can carry). The real-time rule still keeps all
        of them: a plan that asks for more is corrected, and the correction counted."""
        changes: list[tuple[dict, dict]] = [({}, {"import_limit_kw": load_carrying_limit(p)})]
        if p.storage is not None:
            s = p.storage
            end = {"soc_terminal_min_kwh": s.soc_min_kwh}
            state = {**end, "cycles_used_first_day_kwh": 0.0, "direction_initial": None,
                     "direction_held_h": None}
            changes = [(end, {}), (state, {}), (state, changes[0][1])]
        for storage, grid in changes:
            q = dataclasses.replace(
                p, storage=dataclasses.replace(p.storage, **storage) if storage else p.storage,
                grid=dataclasses.replace(p.grid, **grid) if grid else p.grid)
            try:
                return self.solver.solve(q, strict=False, gap_floor_yuan=gap_floor_yuan), q
            except InfeasiblePlanError:
                continue
        raise InfeasiblePlanError("no plan even without the end state, the day's cycles "
                                  "used, the hold carried in and the import limit")

    def replan(self, start: int, p: DispatchProblem, gap_floor_yuan: float) -> ControlPlan:
        """Solve ``p`` (the horizon from position ``start``) within its certified gap; if
        the measured state cannot be honoured, without it (:meth:`_relaxed`)."""
        relaxed = False
        shift, hint = 0, None
        if self.solver is None or structure_key(p) != self.solver.key:
            self.solver = PersistentDispatch(p, self.solve_options)
            self.rebuilds += 1
        elif self.last is not None and 0 < start - self.last.start < p.n:
            # the previous plan moved on: its directions as an incumbent, its basis as a
            # warm start (what falls off the front comes back a day later)
            shift = start - self.last.start
            prev = self.last.result
            hint = _Moved(*(np.roll(a, -shift) for a in (
                prev.grid_import_kw, prev.grid_export_kw, prev.charge_kw, prev.discharge_kw)))
        try:
            r = self.solver.solve(p, strict=False, gap_floor_yuan=gap_floor_yuan, hint=hint,
                                  shift=shift)
        except InfeasiblePlanError:
            r, p = self._relaxed(p, gap_floor_yuan)
            relaxed = True
        self.replans += 1
        # the real-time rule holds the imports at the plan's own peak: the margin is the
        # reserve that lets the battery do so when the load comes in above the nowcast
        first = p.months == 0
        peak = max(p.grid.month_peak_kw, float(np.max(r.grid_import_kw[first], initial=0.0)))
        self.last = ControlPlan(start, r.discharge_kw - r.charge_kw, peak, p.load_kw - p.pv_kw,
                                r, relaxed)
        return self.last


def measured_errors(load_kw: np.ndarray, pv_kw: np.ndarray, load_forecast_kw: np.ndarray,
                    pv_forecast_kw: np.ndarray, clear_kw: np.ndarray, daylight: np.ndarray,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Today's measured forecast errors for :func:`nowcast`, from the intervals measured so
    far (NaN: not measured, skipped): relative load errors ``actual / forecast - 1`` where the
    forecast is above 0, clear-sky-index errors ``(actual - forecast) / clear`` on
    ``daylight`` intervals. Arrays over the same intervals [kW]."""
    ok = (load_forecast_kw > 1e-6) & np.isfinite(load_kw)
    load_err = load_kw[ok] / load_forecast_kw[ok] - 1.0
    light = daylight & np.isfinite(pv_kw)
    kc_err = (pv_kw[light] - pv_forecast_kw[light]) / clear_kw[light]
    return load_err, kc_err


def replan_step(ctl: SiteController, start: int, *, today: np.ndarray,
                load_forecast_kw: np.ndarray, pv_forecast_kw: np.ndarray, clear_kw: np.ndarray,
                flexible_kw: np.ndarray, import_price: np.ndarray, export_price: np.ndarray,
                subsidy: np.ndarray, month_key: np.ndarray, demand_rate: np.ndarray,
                load_err: np.ndarray, kc_err: np.ndarray, month_peak_kw: float,
                state: BatteryState | None, subsidy_budget_kwh: float | None = None,
                ) -> ControlPlan:
    """One re-plan from the decision interval ``start`` (a position the controller counts
    in): nowcast, peak margin, the problem, the certified solve (steps 1-3 of the module
    docstring). The simulation's closed loop and ``vpp operate`` both re-plan here.

    Parameters
    ----------
    today : array of bool
        Over the horizon (its length): whether each interval is on the decision's date.
    load_forecast_kw, pv_forecast_kw, clear_kw : array
        Day-ahead load and PV forecasts, clear-sky PV over the horizon [kW].
    flexible_kw : array
        Flexible-load power scheduled over the horizon [kW] (added to the load).
    import_price, export_price : array
        [yuan/kWh] over the horizon.
    subsidy : array
        Subsidy the objective counts per kWh discharged [yuan/kWh] (zeros: subsidy-blind).
    month_key, demand_rate : array
        Calendar month of each interval (any increasing key) and the demand rate in force
        [yuan/(kW·month)]; each month is billed on its own peak at its first interval's rate.
    load_err, kc_err : array
        :func:`measured_errors` of today so far.
    month_peak_kw : float
        The month-to-date peak [kW].
    state : BatteryState or None
        The battery now (None without one).
    subsidy_budget_kwh : float or None
        What is left now of an annual cap on rewarded discharge [kWh] (None: no cap).
    """
    h = len(today)
    lead = np.arange(h)
    now = nowcast(ctl.stats, lead, today, load_forecast_kw, pv_forecast_kw, clear_kw,
                  load_err, kc_err)
    keys = month_key - month_key[0]
    firsts = np.flatnonzero(np.r_[True, np.diff(keys) > 0])
    rates = tuple(float(demand_rate[f]) for f in firsts)
    p = ctl.problem(
        load_kw=now.load_kw + flexible_kw, pv_kw=now.pv_kw, import_price=import_price,
        export_price=export_price, subsidy=subsidy,
        days=(~today).astype(np.int64), months=keys,
        month_rates=rates[0] if len(set(rates)) == 1 else rates,
        month_peak_kw=month_peak_kw, margin_kw=ctl.margin(now, lead), state=state,
        terminal_kwh=(None if state is None else min(state.soc_kwh, ctl.nominal)),
        subsidy_budget_kwh=subsidy_budget_kwh)
    at_stake = float(np.sum(import_price * p.load_kw) * DT_H)
    return ctl.replan(start, p, at_stake)


def load_carrying_limit(p: DispatchProblem) -> float | np.ndarray:
    """An import limit [kW] that carries the whole load of ``p`` (same shape as its own)."""
    limit = np.maximum(p.grid.import_limit_kw, p.load_kw.max(initial=0.0))
    return float(limit) if np.ndim(limit) == 0 else limit


@dataclass(frozen=True)
class _Moved:
    """A previous plan's flows moved along to a later horizon start [kW]."""

    grid_import_kw: np.ndarray
    grid_export_kw: np.ndarray
    charge_kw: np.ndarray
    discharge_kw: np.ndarray
