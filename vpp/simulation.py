"""Months of operation, site by site: day-ahead plan, real-time day, monthly bill.

For each site and each day of the period (all times Asia/Shanghai):

1. **forecast** - PV from the pvlib chain on the day-ahead weather forecast, load from the
   site's calendar-aware archetype profile (perfect foresight: the actual values);
2. **plan** - the day's dispatch on those forecasts, from the state of charge the previous
   day left and the month-to-date peak, solved by a :class:`models.persistent.
   PersistentDispatch` built once per site (every plan within ``mip_rel_gap``). The plan must
   end the day at the site's nominal state of charge or, if that is infeasible, at the level
   it started from;
3. **realise** - the day with the actual PV and load, the battery following the plan with the
   feasible correction of :mod:`vpp.realtime`;
4. **account** - the month's sums; at the end of each calendar month its demand charge is
   billed on the month's highest realised 15-minute import, and one row per site and month
   is written (and flushed) to ``<out>/sites/<site>.months.csv``, with its days in
   ``<site>.days.csv``. An interrupted run keeps its completed months and resumes after them.

Actual weather: a user weather file (EPW, TMY3 or CSV; typical-year files are repeated for
every year of the period) or the seeded synthetic series of :mod:`forecasts.synthetic`; the
day-ahead forecast adds the error model's errors to it. Actual load: the forecast times the
error model's factors. Measured history (``actuals``) replaces either. Every random stream
is keyed by the seed, its purpose and the site, so results do not depend on the executor, the
number of workers or the order of sites. With ``compare_perfect`` every day is also planned on
the actual values from the same morning state (:func:`_perfect_day`): a per-day bound on
what perfect forecasts could have saved.

Sites are independent; they run in worker processes (``executor="local"``) or on a Dask
cluster (``executor="dask"``: a local one by default, or the scheduler at ``address``).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from forecasts.climate import load_climatology
from forecasts.load import archetype_profile, read_meter_csv
from forecasts.pv import pv_ac_kw
from forecasts.synthetic import (
    DayStreams,
    ErrorModel,
    forecast_clearsky_index,
    load_error_factors,
    load_error_model,
    period_index,
    synthetic_clearsky_index,
    weather_from_kc,
)
from forecasts.weather import Weather, interval_clearsky, prepare
from models import (
    DispatchProblem,
    InfeasiblePlanError,
    InvalidInputError,
    PersistentDispatch,
    structure_key,
)
from vpp.accounting import (
    FlowArrays,
    baseline,
    co2_avoided_t,
    energies_kwh,
    money_yuan,
    month_demand_charge_yuan,
    ratios,
    valley_cycling_kwh,
)
from vpp.catalog import Catalog
from vpp.closed_loop import ClosedLoop
from vpp.control import ErrorStats, load_carrying_limit
from vpp.options import SimulationOptions
from vpp.problem import demand_rate, grid_spec, site_problem, storage_spec
from vpp.pv_inputs import site_pv_model
from vpp.realtime import BatteryState, realise_day
from vpp.sites import Site
from vpp.subsidy import annual_budget_kwh, model_rule, subsidy_rate_series
from vpp.tariffs import Tariff, price_series
from vpp.timebase import DT_H, INTERVAL_MINUTES, PER_DAY, TZ, align_series

log = logging.getLogger(__name__)

#: Changzhou city centre (DOMAIN.md): where the synthetic weather's sky is drawn.
CITY = (31.81, 119.97, 5.0)
#: Short names of the shipped tariff versions a simulation may apply throughout
#: (``tariff_policy``; any version name in the data works too, ``in-force`` means none).
TARIFF_POLICIES = {"in-force": None, "2025": "su-fagaijiage-2025-426",
                   "2023": "su-fagaijiage-2023-555"}


def forced_version(opts: SimulationOptions) -> str | None:
    """The tariff version ``opts.tariff_policy`` applies throughout; None: each day's own."""
    return TARIFF_POLICIES.get(opts.tariff_policy, opts.tariff_policy)


def period(opts: SimulationOptions) -> pd.DatetimeIndex:
    """The period's 15-minute interval starts (local time)."""
    return period_index(opts.start, opts.months, TZ, opts.days)


def tail_days(opts: SimulationOptions) -> int:
    """Days of forecasts needed beyond the period: a re-plan near its end looks a horizon
    ahead."""
    return 0 if opts.control == "day-ahead" else int(np.ceil(opts.horizon_hours / 24.0))


def extended(opts: SimulationOptions) -> pd.DatetimeIndex:
    """The period and the days of forecasts beyond it (:func:`tail_days`)."""
    index = period(opts)
    extra = tail_days(opts)
    if not extra:
        return index
    more = pd.date_range(index[-1] + pd.Timedelta(minutes=INTERVAL_MINUTES),
                         periods=extra * PER_DAY, freq=f"{INTERVAL_MINUTES}min")
    return index.append(more)


# --------------------------------------------------------------------------- inputs


@dataclass
class SiteSeries:
    """A site's inputs over the whole period, one value per 15-minute interval."""

    index: pd.DatetimeIndex
    import_price: np.ndarray
    export_price: np.ndarray
    subsidy_rate: np.ndarray  # paid on realised discharge [yuan/kWh]
    pv_forecast_kw: np.ndarray
    pv_actual_kw: np.ndarray
    load_forecast_kw: np.ndarray
    load_actual_kw: np.ndarray
    weather_source: str
    pv_clear_kw: np.ndarray | None = None  # the site's PV under a clear sky [kW]
    periods: np.ndarray | None = None  # tariff period of each interval


def _location(lat: float, lon: float, alt: float):
    from pvlib.location import Location

    return Location(lat, lon, TZ, alt)


def actual_clearsky_index(index: pd.DatetimeIndex, opts: SimulationOptions,
                          errors: ErrorModel, weather: Weather | None) -> tuple[np.ndarray, str]:
    """The period's actual clear-sky index [-] at the city centre and its description. With
    a weather file, the days of forecasts beyond the period (:func:`tail_days`; never
    realised) take the synthetic sky."""
    city = _location(*CITY)
    climate = load_climatology()
    n = len(period(opts))
    if weather is None or len(index) > n:
        kc = synthetic_clearsky_index(climate, city, index, errors, DayStreams(opts.seed, "sky"))
        if weather is None:
            return kc, (f"synthetic Changzhou weather, seed {opts.seed} ({climate.name} "
                        f"monthly irradiance; {errors.source})")
        head, source = actual_clearsky_index(index[:n], opts, errors, weather)
        return np.r_[head, kc[n:]], source
    frame = prepare(weather, city, index, "erbs", climate.temp_air(index))
    clear = interval_clearsky(city, index, pd.Timedelta(minutes=INTERVAL_MINUTES),
                              "start")["ghi"].to_numpy()
    kc = np.where(clear > 20.0, frame["ghi"].to_numpy() / np.maximum(clear, 1e-9), 0.0)
    return np.clip(kc, 0.0, errors.max_clearsky_index), weather.source


def site_series(catalog: Catalog, site: Site, opts: SimulationOptions, errors: ErrorModel,
                weather: Weather | None = None,
                actuals: pd.DataFrame | None = None) -> SiteSeries:
    """Prices, subsidy, forecast and actual PV and load of ``site`` for the whole period.

    ``actuals`` (measured history, columns ``load_kw`` and/or ``pv_kw`` on a tz-aware
    15-minute index covering the period) replaces the synthetic actual values; forecasts stay
    the model's (PV from the forecast weather, load from the archetype profile). The series
    run a horizon beyond the period for the closed loop's last re-plans (:func:`extended`);
    measured actuals are needed for the period only."""
    index = extended(opts)
    n_period = len(period(opts))
    version = forced_version(opts)
    prices = price_series(catalog.tariffs, site.tariff_id, index, site.grid.transformer_kva,
                          version)
    st = site.storage
    rate = np.zeros(len(index))
    if st is not None:
        rate = subsidy_rate_series(catalog.policy_for(site), st.power_kw,
                                   st.grid_connection_date, index,
                                   opts.subsidy_rate_yuan_per_kwh,
                                   prices["period"].to_numpy()).to_numpy()
    kc, source = actual_clearsky_index(index, opts, errors, weather)
    kc_fc = kc if opts.foresight == "perfect" else forecast_clearsky_index(
        kc, index, errors, DayStreams(opts.seed, "pv-forecast"))
    if site.pv_arrays:
        model = site_pv_model(site, catalog.calibrations)
        # every site under the city centre's sun: the pilots lie within ~50 km, the sun's
        # position differs by < 0.5 deg, and sun and clear sky are then computed once per
        # process for the whole period instead of once per site (3 s -> 0.4 s a site)
        system = dataclasses.replace(model.system, latitude=CITY[0], longitude=CITY[1],
                                     altitude_m=CITY[2])
        model = dataclasses.replace(model, system=system)
        loc = system.location()
        climate = load_climatology()
        pv_act = pv_ac_kw(model.system, weather_from_kc(kc, loc, index, climate),
                          model.transposition).to_numpy()
        pv_fc = pv_act if kc_fc is kc else pv_ac_kw(
            model.system, weather_from_kc(kc_fc, loc, index, climate),
            model.transposition).to_numpy()
        clear = None
        if opts.control == "mpc":
            clear = pv_ac_kw(model.system, weather_from_kc(np.ones(len(index)), loc, index,
                                                           climate),
                             model.transposition).to_numpy()
    else:
        pv_act = pv_fc = np.zeros(len(index))
        clear = np.zeros(len(index))
    shape = catalog.archetypes[site.load.archetype]
    load_fc = archetype_profile(shape, site.load.peak_kw, index).to_numpy()
    load_act = load_fc * load_error_factors(index, errors,
                                            DayStreams(opts.seed, "load", site.id))
    if actuals is not None:
        head = index[:n_period]
        if "pv_kw" in actuals:
            pv_act = np.r_[align_series(actuals["pv_kw"], head, f"{site.id} pv_kw"),
                           pv_fc[n_period:]]
        if "load_kw" in actuals:
            load_act = np.r_[align_series(actuals["load_kw"], head, f"{site.id} load_kw"),
                             load_fc[n_period:]]
        source += "; measured actuals"
    if opts.foresight == "perfect":
        load_fc, pv_fc = load_act, pv_act
    return SiteSeries(index, prices["import_price_yuan_per_kwh"].to_numpy(),
                      prices["export_price_yuan_per_kwh"].to_numpy(), rate, pv_fc, pv_act,
                      load_fc, load_act, source, clear, prices["period"].to_numpy())


def read_actuals(folder: str | Path, site_ids: list[str]) -> dict[str, pd.DataFrame]:
    """Measured ``<folder>/<site>.csv`` files (meter CSVs as :func:`forecasts.load.
    read_meter_csv` reads them: ``timestamp``, and ``load_kw`` and/or ``pv_kw`` [kW] as
    15-minute averages labelled by their start) for the sites that have one."""
    out = {}
    for sid in site_ids:
        path = Path(folder) / f"{sid}.csv"
        if not path.is_file():
            continue
        cols = [c for c in ("load_kw", "pv_kw") if c in pd.read_csv(path, nrows=0).columns]
        if not cols:
            raise InvalidInputError(f"actuals {path}: no load_kw or pv_kw column")
        try:
            out[sid] = pd.concat([read_meter_csv(path, c, TZ) for c in cols], axis=1)
        except ValueError as exc:
            raise InvalidInputError(f"actuals {path}: {exc}") from None
    return out


# --------------------------------------------------------------------------- one site


MONTH_COLUMNS = (
    "site_id", "month", "days", "discharge_kwh", "charge_kwh", "subsidy_yuan",
    "energy_cost_yuan", "export_revenue_yuan", "energy_cost_without_storage_yuan",
    "export_revenue_without_storage_yuan", "demand_charge_yuan",
    "demand_charge_without_storage_yuan", "degradation_cost_yuan", "net_cost_yuan",
    "net_cost_without_storage_yuan", "savings_yuan", "equivalent_full_cycles", "pv_kwh",
    "pv_curtailed_kwh", "pv_self_consumed_kwh", "pv_self_consumption_frac", "consumption_kwh",
    "import_kwh", "export_kwh", "renewable_share_frac", "peak_kw", "peak_without_storage_kw",
    "co2_avoided_t", "soc_end_kwh", "side_end", "held_end_h", "rested_end_h",
    "import_over_limit_kwh", "corrected_intervals",
    "plans_lp", "plans_repair", "plans_milp", "plans_uncertified", "replans",
    "replans_uncertified", "gap_max", "terminal_relaxed_days", "perfect_net_cost_yuan",
    "valley_cycling_kwh", "subsidy_only_discharge_kwh",
)
#: Month columns that count things (the rest after ``days`` are floats).
COUNT_COLUMNS = ("days", "corrected_intervals", "plans_lp", "plans_repair", "plans_milp",
                 "plans_uncertified", "replans", "replans_uncertified", "terminal_relaxed_days")
DAY_COLUMNS = ("site_id", "date", "method", "gap", "relative_gap", "plan_cost_yuan", "solves",
               "highs_ms", "update_ms", "soc_start_kwh", "soc_end_kwh", "month_peak_kw",
               "discharge_kwh", "subsidy_yuan")
#: Month columns summed from the days' accounting: realised, and (suffix) without storage.
_REALISED = {"discharge_kwh": "discharge_kwh", "charge_kwh": "charge_kwh",
             "subsidy_yuan": "subsidy_yuan", "energy_cost_yuan": "energy_cost_yuan",
             "export_revenue_yuan": "export_revenue_yuan",
             "degradation_cost_yuan": "degradation_cost_yuan", "pv_kwh": "pv_available_kwh",
             "pv_curtailed_kwh": "pv_curtailed_kwh",
             "pv_self_consumed_kwh": "pv_self_consumed_kwh", "consumption_kwh": "load_kwh",
             "import_kwh": "import_kwh", "export_kwh": "export_kwh"}
_WITHOUT = {"energy_cost_without_storage_yuan": "energy_cost_yuan",
            "export_revenue_without_storage_yuan": "export_revenue_yuan"}


@dataclass
class SiteTiming:
    """Where a site's time went [s]."""

    inputs: float = 0.0
    build: float = 0.0
    update: float = 0.0
    highs: float = 0.0
    realise: float = 0.0
    total: float = 0.0
    solves: int = 0
    days: int = 0
    replan: float = 0.0
    replans: int = 0
    replan_seconds: list[float] = field(default_factory=list)


class _Files:
    """Append-and-flush CSV output of one site (months and days)."""

    def __init__(self, folder: Path | None, site_id: str) -> None:
        self.months = self.days = None
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        self.months = folder / f"{site_id}.months.csv"
        self.days = folder / f"{site_id}.days.csv"

    def completed(self) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        """Month and day rows already written (a resumed run continues after them); day
        rows of an unfinished month are dropped from the file."""
        if self.months is None or not self.months.is_file():
            return [], []
        with self.months.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        done = {r["month"] for r in rows}
        days: list[dict[str, str]] = []
        if self.days.is_file():
            with self.days.open(newline="") as fh:
                days = [r for r in csv.DictReader(fh) if r["date"][:7] in done]
            self._write(self.days, DAY_COLUMNS, days, "w")
        return rows, days

    @staticmethod
    def _write(path: Path, columns, rows: list[dict], mode: str) -> None:
        new = mode == "w" or not path.is_file()
        with path.open(mode if not new else "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=columns)
            if new:
                w.writeheader()
            w.writerows(rows)
            fh.flush()

    def append(self, month_row: dict, day_rows: list[dict]) -> None:
        if self.months is None:
            return
        self._write(self.days, DAY_COLUMNS, day_rows, "a")  # days first: a month row
        self._write(self.months, MONTH_COLUMNS, [month_row], "a")  # marks them complete


def _fmt(row: dict) -> dict:
    """Floats written so that they read back exactly (a resumed run continues from them)."""
    return {k: (repr(float(v)) if isinstance(v, float | np.floating) else v)
            for k, v in row.items()}


def day_account(p: DispatchProblem, f: FlowArrays, rate: np.ndarray) -> dict[str, float]:
    """A day's additive energies [kWh] and money [yuan] (:mod:`vpp.accounting`), the
    subsidy at ``rate`` [yuan/kWh]; the demand charge is billed per month instead."""
    return {**energies_kwh(p, f), **money_yuan(p, f, rate)}


def simulate_site(
    catalog: Catalog, site_id: str, opts: SimulationOptions, errors: ErrorModel | None = None,
    weather: Weather | None = None, out: Path | None = None, series: SiteSeries | None = None,
    actuals: pd.DataFrame | None = None,
) -> tuple[list[dict], list[dict], SiteTiming]:
    """Simulate one site over the period; return its month rows, day rows and timing.

    Rows already in ``out`` (an interrupted run of the same simulation) are kept and the
    run resumes after the last completed month. ``series`` replaces the site's computed
    inputs (e.g. measured PV and load; its index must be the period's).
    """
    t_start = time.perf_counter()
    errors = errors or load_error_model()
    site = catalog.fleet.site(site_id)
    timing = SiteTiming()
    files = _Files(out, site_id)
    done, done_days = files.completed()
    t0 = time.perf_counter()
    ser = series if series is not None else site_series(catalog, site, opts, errors, weather,
                                                         actuals)
    if not ser.index.equals(extended(opts)):
        raise InvalidInputError(f"{site_id}: input series must cover the simulated period "
                                f"from {opts.start} at 15-minute intervals (and "
                                f"{tail_days(opts)} day(s) beyond it for mpc control)")
    timing.inputs = time.perf_counter() - t0

    n_days = len(period(opts)) // PER_DAY
    day_index = ser.index[::PER_DAY]
    battery = storage_spec(site)
    nominal = battery.soc_initial_kwh if battery is not None else 0.0
    # the policy's counting rule, and the annual cap's kWh paid so far per calendar year
    # (from completed months on a resumed run: every kWh the cap pays earns the one rate)
    policy = catalog.policy_for(site)
    rule = model_rule(policy)
    top_rate = float(ser.subsidy_rate.max(initial=0.0))
    paid_year: dict[int, float] = {}
    for r in done:
        if top_rate > 0:
            year = int(r["month"][:4])
            paid_year[year] = paid_year.get(year, 0.0) + float(r["subsidy_yuan"]) / top_rate
    version = forced_version(opts)
    solver: PersistentDispatch | None = None
    perfect: PersistentDispatch | None = None
    blind: PersistentDispatch | None = None

    month_rows: list[dict] = list(done)
    day_rows: list[dict] = list(done_days)
    level = float(done[-1]["soc_end_kwh"]) if done else nominal
    state = BatteryState(level)
    if done:  # the battery as the last completed month left it
        side = done[-1].get("side_end", "")
        state.side = int(float(side)) if side not in ("", "nan", None) else None
        state.held_h = float(done[-1].get("held_end_h") or "inf")
        state.rested_h = float(done[-1].get("rested_end_h") or "inf")
    loop = _closed_loop(catalog, site, ser, opts, errors) if opts.control == "mpc" else None
    skip_months = {r["month"] for r in done}
    acc: dict[str, float] = {}
    month_days: list[dict] = []
    month_peak = base_peak = 0.0
    tariff: Tariff | None = None
    for d in range(n_days):
        day = day_index[d].date()
        month = f"{day.year:04d}-{day.month:02d}"
        if month in skip_months:
            continue
        fresh = day.day == 1 or not acc
        if fresh:
            # a month starts from its state alone: new solver models (no warm start from
            # the month before), so a resumed run repeats it exactly
            solver = perfect = blind = None
            acc = dict.fromkeys(MONTH_COLUMNS[2:], 0.0)
            month_peak = base_peak = 0.0
            month_days = []
            # the tariff version in force this month: its demand rate and contract rule
            tariff = catalog.tariffs.select(site.tariff_id, day, version)
        sl = slice(d * PER_DAY, (d + 1) * PER_DAY)
        rate_day = ser.subsidy_rate[sl]
        # the battery exists from its grid-connection day on
        storage = storage_spec(site, day=day)
        side, held = state.side, state.held_h
        budget = (annual_budget_kwh(policy, storage.power_kw, paid_year.get(day.year, 0.0))
                  if storage is not None else None)

        def problem(load: np.ndarray, pv: np.ndarray, terminal: float, *, sl=sl,
                    month_peak=month_peak, level=level, tariff=tariff,
                    aware: bool = opts.subsidy_aware, side=side, held=held,
                    budget=budget) -> DispatchProblem:
            p = site_problem(
                site, ser.index[sl], load_kw=load, pv_kw=pv,
                import_price=ser.import_price[sl], export_price=ser.export_price[sl],
                subsidy_rate=ser.subsidy_rate[sl], tariff=tariff, month_peak_kw=month_peak,
                soc_initial_kwh=level, soc_terminal_min_kwh=terminal, subsidy_aware=aware,
                labels=False, subsidy_rule=rule, subsidy_budget_kwh=budget)
            if p.storage is None or side is None:
                return p
            # the direction hold carried over from the day before
            return dataclasses.replace(p, storage=dataclasses.replace(
                p.storage, direction_initial=side, direction_held_h=min(held, 24.0)))

        terminal = nominal
        p = problem(ser.load_forecast_kw[sl], ser.pv_forecast_kw[sl], terminal)
        # gap measured against the money at stake: what the day's load would cost from
        # the grid, or the plan's own cost if larger
        at_stake = float(np.sum(ser.import_price[sl] * ser.load_forecast_kw[sl]) * DT_H)
        if solver is None or structure_key(p) != solver.key:  # first day, or a new tariff
            t0 = time.perf_counter()
            solver = PersistentDispatch(p, opts.solve_options())
            timing.build += time.perf_counter() - t0
        try:
            plan = solver.solve(p, strict=False, gap_floor_yuan=at_stake)
        except InfeasiblePlanError:
            try:
                if storage is None or level >= nominal:
                    raise
                terminal = level  # cannot get back to nominal today: hold the level instead
                p = problem(ser.load_forecast_kw[sl], ser.pv_forecast_kw[sl], terminal)
                plan = solver.solve(p, strict=False, gap_floor_yuan=at_stake)
                acc["terminal_relaxed_days"] += 1
            except InfeasiblePlanError:
                # a forecast load above what the connection carries even with the battery:
                # on a site built to carry its peak load (an excursion of the forecast),
                # planned without the import limit - the real-time rule keeps the limit
                # where the battery can and counts the rest (import_over_limit_kwh); a site
                # that cannot carry its own peak load is an error in its data
                if not _carries_its_peak(site):
                    raise
                p = dataclasses.replace(p, grid=dataclasses.replace(
                    p.grid, import_limit_kw=load_carrying_limit(p)))
                plan = solver.solve(p, strict=False, gap_floor_yuan=at_stake)
        if plan.optimality_gap > opts.mip_rel_gap + 1e-9:  # out of time: kept, and counted
            acc["plans_uncertified"] += 1
        if opts.compare_blind and opts.subsidy_aware and storage is not None:
            # the same morning planned subsidy-blind, on a model of its own
            p_blind = dataclasses.replace(p, subsidy_yuan_per_kwh=np.zeros(PER_DAY))
            if blind is None or structure_key(p_blind) != blind.key:
                blind = PersistentDispatch(p_blind, opts.solve_options())
            without = blind.solve(p_blind, strict=False, gap_floor_yuan=at_stake)
            acc["subsidy_only_discharge_kwh"] += float(
                DT_H * (plan.discharge_kw.sum() - without.discharge_kw.sum()))
        timing.update += plan.update_seconds
        timing.highs += plan.highs_seconds
        timing.solves += plan.solves
        timing.days += 1

        t0 = time.perf_counter()
        load, pv = ser.load_actual_kw[sl], ser.pv_actual_kw[sl]
        if loop is None:  # the day-ahead plan followed with the real-time rule
            demand_rate = p.grid.demand_rate_yuan_per_kw_month
            target = (max(month_peak, float(plan.grid_import_kw.max())) if demand_rate > 0
                      else np.inf)
            real = realise_day(
                dt_h=DT_H, load_kw=load, pv_kw=pv, flexible_kw=plan.flexible_load_kw,
                charge_kw=plan.charge_kw, discharge_kw=plan.discharge_kw, storage=storage,
                state=state if storage is not None else None,
                import_limit_kw=site.grid.import_limit_kw,
                export_limit_kw=site.grid.export_limit_kw, import_target_kw=target)
        else:  # re-planned through the day from the measured state
            t1 = time.perf_counter()
            real, _, loop_stats = loop.operate_day(
                d * PER_DAY, storage, state if storage is not None else None, month_peak,
                plan.flexible_load_kw, fresh=fresh, subsidy_budget_kwh=budget)
            timing.replan += time.perf_counter() - t1
            timing.replans += loop_stats.replans
            timing.replan_seconds += loop_stats.seconds
            acc["replans"] += loop_stats.replans
            acc["replans_uncertified"] += loop_stats.uncertified
            acc["gap_max"] = max(acc["gap_max"], loop_stats.gap_max)
            acc["terminal_relaxed_days"] += loop_stats.terminal_relaxed > 0
        actual = problem(load, pv, terminal)
        base = baseline(actual)
        got = day_account(actual, real, rate_day)
        if budget is not None and top_rate > 0:
            paid_year[day.year] = paid_year.get(day.year, 0.0) + got["subsidy_yuan"] / top_rate
        without = day_account(actual, base, np.zeros(PER_DAY))
        for col, key in _REALISED.items():
            acc[col] += got[key]
        for col, key in _WITHOUT.items():
            acc[col] += without[key]
        acc["import_over_limit_kwh"] += real.import_over_limit_kwh
        if ser.periods is not None:
            acc["valley_cycling_kwh"] += valley_cycling_kwh(ser.periods[sl], real.charge_kw,
                                                            real.discharge_kw, DT_H)
        acc["corrected_intervals"] += real.corrected_intervals
        acc["plans_" + {"lp": "lp", "lp+repair": "repair", "milp": "milp"}[plan.method]] += 1
        acc["gap_max"] = max(acc["gap_max"], plan.optimality_gap)
        acc["days"] += 1
        month_days.append({
            "site_id": site_id, "date": day.isoformat(), "method": plan.method,
            "gap": plan.optimality_gap, "relative_gap": plan.relative_gap,
            "plan_cost_yuan": plan.objective_yuan, "solves": plan.solves,
            "highs_ms": plan.highs_seconds * 1e3, "update_ms": plan.update_seconds * 1e3,
            "soc_start_kwh": level if storage else 0.0,
            "soc_end_kwh": float(real.soc_kwh[-1]) if storage else 0.0,
            "month_peak_kw": max(month_peak, float(real.grid_import_kw.max())),
            "discharge_kwh": got["discharge_kwh"], "subsidy_yuan": got["subsidy_yuan"]})
        if opts.compare_perfect and opts.foresight == "forecast":
            p_pf = problem(load, pv, float(real.soc_kwh[-1]) if storage else terminal,
                           aware=True)
            if perfect is None or structure_key(p_pf) != perfect.key:
                # a model of its own: the operated plans stay exactly those of a run
                # without the comparison (a shared model's warm start would change ties)
                perfect = PersistentDispatch(p_pf, opts.solve_options())
            acc["perfect_net_cost_yuan"] += _perfect_day(perfect, p_pf, got["net_cost_yuan"],
                                                         at_stake)
        month_peak = max(month_peak, float(real.grid_import_kw.max()))
        base_peak = max(base_peak, float(base.grid_import_kw.max()))
        if storage is not None:
            level = float(real.soc_kwh[-1])
        timing.realise += time.perf_counter() - t0

        last_of_month = d == n_days - 1 or day_index[d + 1].day == 1
        if last_of_month:
            row = _month_row(site, tariff, month, acc, month_peak, base_peak, level, opts)
            row["side_end"] = float("nan") if state.side is None else float(state.side)
            row["held_end_h"], row["rested_end_h"] = state.held_h, state.rested_h
            month_rows.append(row)
            day_rows.extend(month_days)
            files.append(_fmt(row), [_fmt(r) for r in month_days])
    timing.total = time.perf_counter() - t_start
    return month_rows, day_rows, timing


def _closed_loop(catalog: Catalog, site: Site, ser: SiteSeries, opts: SimulationOptions,
                 errors: ErrorModel) -> ClosedLoop:
    """The site's closed loop over the period (:mod:`vpp.closed_loop`)."""
    version = forced_version(opts)
    local = ser.index.tz_convert(TZ)
    month_key = np.asarray(local.year * 12 + local.month, dtype=np.int64)
    days = ser.index[::PER_DAY]
    by_day = [catalog.tariffs.select(site.tariff_id, d.date(), version) for d in days]
    rates = np.repeat([demand_rate(site, t) for t in by_day], PER_DAY)
    clear = ser.pv_clear_kw if ser.pv_clear_kw is not None else np.zeros(len(ser.index))
    # perfect foresight: forecasts without error, no margin against it
    stats = (ErrorStats.from_error_model(errors) if opts.foresight == "forecast" else
             ErrorStats(0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
    return ClosedLoop(
        site, ser, rates, month_key, clear, lambda pos: by_day[pos // PER_DAY],
        stats, opts, model_rule(catalog.policy_for(site)))


def _carries_its_peak(site: Site) -> bool:
    """Whether the connection and the battery together carry the site's nominal peak load
    (``load.peak_kw`` <= import limit + storage power [kW])."""
    power = site.storage.power_kw if site.storage is not None else 0.0
    return site.load.peak_kw <= site.grid.import_limit_kw + power


def _perfect_day(solver: PersistentDispatch, p: DispatchProblem, realised_cost: float,
                 at_stake: float) -> float:
    """The day's cost with perfect foresight [yuan]: the plan on the actual data from the
    same morning state, or the realised day itself when that is cheaper (it is one of the
    plans open to perfect foresight, so the result never exceeds ``realised_cost``)."""
    try:
        plan = solver.solve(p, strict=False, gap_floor_yuan=at_stake)
    except InfeasiblePlanError:  # e.g. the realised day broke the import limit
        return realised_cost
    return min(plan.objective_yuan, realised_cost)


def _month_row(site: Site, tariff: Tariff, month: str, acc: dict[str, float], peak: float,
               base_peak: float, level: float, opts: SimulationOptions) -> dict:
    """A month's row: the days' sums, the month's bill on its peak, the ratios."""
    grid = grid_spec(site, tariff)
    row: dict[str, Any] = {"site_id": site.id, "month": month, **acc}
    row["demand_charge_yuan"] = month_demand_charge_yuan(grid, peak)
    row["demand_charge_without_storage_yuan"] = month_demand_charge_yuan(grid, base_peak)
    row["net_cost_yuan"] = (acc["energy_cost_yuan"] - acc["export_revenue_yuan"]
                            + row["demand_charge_yuan"] + acc["degradation_cost_yuan"]
                            - acc["subsidy_yuan"])
    row["net_cost_without_storage_yuan"] = (acc["energy_cost_without_storage_yuan"]
                                            - acc["export_revenue_without_storage_yuan"]
                                            + row["demand_charge_without_storage_yuan"])
    row["savings_yuan"] = row["net_cost_without_storage_yuan"] - row["net_cost_yuan"]
    e = {"discharge_kwh": acc["discharge_kwh"], "pv_available_kwh": acc["pv_kwh"],
         "pv_self_consumed_kwh": acc["pv_self_consumed_kwh"], "load_kwh": acc["consumption_kwh"]}
    r = ratios(e, site.storage.energy_kwh if site.storage else 0.0)
    row["equivalent_full_cycles"] = r["equivalent_full_cycles"]
    row["pv_self_consumption_frac"] = r["self_consumption_ratio"]
    row["renewable_share_frac"] = r["renewable_share"]
    row["peak_kw"] = peak
    row["peak_without_storage_kw"] = base_peak
    row["co2_avoided_t"] = co2_avoided_t(acc["consumption_kwh"],
                                         acc["import_kwh"] - acc["export_kwh"],
                                         opts.emission_factor_t_per_mwh)
    row["soc_end_kwh"] = level
    row["side_end"] = row["held_end_h"] = row["rested_end_h"] = float("nan")  # set by the run
    if not (opts.compare_perfect and opts.foresight == "forecast"):
        row["perfect_net_cost_yuan"] = float("nan")
    if not opts.compare_blind:
        row["subsidy_only_discharge_kwh"] = float("nan")
    for k in COUNT_COLUMNS:
        row[k] = int(acc[k])
    return {k: row[k] for k in MONTH_COLUMNS}


# --------------------------------------------------------------------------- many sites


@dataclass
class SimulationResult:
    """All sites' month and day rows, per-site timing, and the run's description."""

    months: pd.DataFrame
    days: pd.DataFrame
    timing: dict[str, SiteTiming]
    options: SimulationOptions
    failures: dict[str, str] = field(default_factory=dict)
    wall_seconds: float = 0.0

    def fleet_totals(self) -> dict[str, float]:
        """Sums over sites and months of every additive column [yuan, kWh, t]; a column no
        month has (``perfect_net_cost_yuan`` without ``compare_perfect``) is left out rather
        than summed to 0."""
        additive = [c for c in MONTH_COLUMNS[3:] if c.endswith(("_kwh", "_yuan", "_t"))
                    and c != "soc_end_kwh"]
        return {c: float(self.months[c].sum()) for c in additive
                if self.months[c].notna().any()}


def check_simulation(catalog: Catalog, opts: SimulationOptions,
                     site_ids: list[str] | None) -> list[str]:
    """The site ids a simulation covers, after checking what can be checked before any
    work: the subsidy rate against the policy, known sites, a tariff version for the
    period's first day. A site named twice is simulated once."""
    rate, cap = opts.subsidy_rate_yuan_per_kwh, catalog.policy.max_rate_yuan_per_kwh
    if rate is not None and rate > cap:
        raise InvalidInputError(f"subsidy_rate_yuan_per_kwh={rate}: allowed range [0, {cap}] "
                                f"under {catalog.policy.version}", "invalid simulation options")
    ids = list(dict.fromkeys(site_ids)) if site_ids else [s.id for s in catalog.fleet.sites]
    version = forced_version(opts)
    known = {s.id for s in catalog.fleet.sites}
    unknown = [f"sites[{i}]={sid!r}: not in the fleet" for i, sid in enumerate(ids)
               if sid not in known]
    if unknown:
        unknown[-1] += f" (known sites: {', '.join(sorted(known))})"
        raise InvalidInputError(unknown, "invalid simulation options")
    for sid in ids:
        site = catalog.fleet.site(sid)
        try:
            catalog.tariffs.select(site.tariff_id, opts.start, version)
        except InvalidInputError as exc:
            if version is None:
                raise
            raise exc.naming(f"tariff_policy={opts.tariff_policy!r}: ") from None
    return ids


def run_key(opts: SimulationOptions, site_ids: list[str], extra: dict) -> str:
    """A digest of everything that decides a run's numbers (for resuming into a folder)."""
    text = json.dumps({"options": opts.describe(), "sites": site_ids, **extra}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _task(catalog: Catalog, site_id: str, opts: SimulationOptions, errors: ErrorModel,
          weather: Weather | None, out: str | None, actuals: pd.DataFrame | None = None):
    months, days, timing = simulate_site(catalog, site_id, opts, errors, weather,
                                         Path(out) if out else None, actuals=actuals)
    return site_id, months, days, timing


def _progress_count(folder: Path | None, site_ids: list[str]) -> int:
    if folder is None:
        return 0
    total = 0
    for s in site_ids:
        f = folder / f"{s}.months.csv"
        if f.is_file():
            with f.open() as fh:
                total += max(0, sum(1 for _ in fh) - 1)
    return total


def simulate(
    catalog: Catalog, opts: SimulationOptions, site_ids: list[str] | None = None, *,
    errors: ErrorModel | None = None, weather: Weather | None = None,
    out: str | Path | None = None, jobs: int = 1,
    executor: Literal["local", "dask"] = "local", address: str | None = None,
    on_progress: Callable[[int, int, float], None] | None = None,
    actuals: dict[str, pd.DataFrame] | None = None,
) -> SimulationResult:
    """Simulate ``site_ids`` (default all) over the period.

    Parameters
    ----------
    out : path, optional
        Folder for incremental results (``sites/<id>.months.csv`` and ``.days.csv``) and
        ``run.json``; a folder holding an interrupted run of the same simulation resumes it,
        one holding a different simulation is refused.
    jobs : int
        Worker processes (``local``) or Dask workers of a local cluster.
    executor : {"local", "dask"}
        ``local``: this process (``jobs=1``) or a process pool; ``dask``: Dask distributed,
        a ``LocalCluster`` of ``jobs`` workers, or the scheduler at ``address``.
    on_progress : callable, optional
        ``on_progress(site_months_done, site_months_total, elapsed_s)`` about every second.
    actuals : dict, optional
        Measured history by site id (see :func:`site_series`, :func:`read_actuals`).
    """
    if jobs < 1:
        raise InvalidInputError(f"jobs={jobs}: allowed range [1, inf)")
    if executor not in ("local", "dask"):
        raise InvalidInputError(f"executor={executor!r}: allowed local, dask")
    errors = errors or load_error_model()
    ids = check_simulation(catalog, opts, site_ids)
    folder = Path(out) / "sites" if out else None
    if out:
        _claim(Path(out), opts, ids, errors, weather, actuals or {}, catalog)
    t0 = time.perf_counter()
    index = period(opts)
    n_months = len(pd.period_range(index[0].date(), index[-1].date(), freq="M"))
    total = n_months * len(ids)
    results: dict[str, tuple] = {}
    failures: dict[str, str] = {}
    args = (opts, errors, weather, str(folder) if folder else None)

    def tick() -> None:
        if on_progress:
            on_progress(_progress_count(folder, ids), total, time.perf_counter() - t0)

    def settle(site_id: str, outcome: Callable[[], tuple]) -> None:
        """Keep a site's rows, or its failure (one bad site does not stop the others)."""
        try:
            _, months, days, timing = outcome()
            results[site_id] = (months, days, timing)
        except (InvalidInputError, InfeasiblePlanError) as exc:
            failures[site_id] = str(exc)

    measured = actuals or {}
    if executor == "local" and (jobs == 1 or len(ids) == 1):
        for s in ids:
            settle(s, lambda s=s: _task(catalog, s, *args, measured.get(s)))
            tick()
    elif executor == "local":
        with ProcessPoolExecutor(min(jobs, len(ids))) as pool:
            futures = {pool.submit(_task, catalog, s, *args, measured.get(s)): s for s in ids}
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                for fut in finished:
                    settle(futures[fut], fut.result)
                tick()
    else:
        _run_dask(catalog, ids, args, jobs, address, settle, tick, measured)
    months = pd.DataFrame([r for s in ids if s in results for r in results[s][0]],
                          columns=list(MONTH_COLUMNS))
    days = pd.DataFrame([r for s in ids if s in results for r in results[s][1]],
                        columns=list(DAY_COLUMNS))
    if len(months):
        months = months.astype({c: (int if c in COUNT_COLUMNS else float)
                                for c in MONTH_COLUMNS[2:]})
    if len(days):
        days = days.astype({c: float for c in DAY_COLUMNS[3:]})
    timing = {s: results[s][2] for s in ids if s in results}
    return SimulationResult(months, days, timing, opts, failures, time.perf_counter() - t0)


def _run_dask(catalog, ids, args, jobs, address, settle, tick, actuals) -> None:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InvalidInputError("executor='dask' needs Dask distributed: "
                                "pip install 'changzhou-vpp[cluster]'") from None
    cluster = None
    if address is None:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    client = Client(address or cluster)
    try:
        futures = {client.submit(_task, catalog, s, *args, actuals.get(s),
                                 key=f"simulate-{s}-{i}", pure=False): s
                   for i, s in enumerate(ids)}
        for fut in as_completed(list(futures)):
            settle(futures[fut], fut.result)
            tick()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _claim(out: Path, opts: SimulationOptions, ids: list[str], errors: ErrorModel,
           weather: Weather | None, actuals: dict[str, pd.DataFrame],
           catalog: Catalog) -> None:
    """Write ``run.json`` or check that the folder holds the same simulation: the same
    options, sites (and each one's definition), error model, weather, measured actuals and
    data files (tariffs, policy, fleet, load archetypes, feeders, PV calibrations)."""
    out.mkdir(parents=True, exist_ok=True)
    extra = {"data": catalog.fingerprint,
             # each simulated site as this run sees it (a site registered or changed through
             # the API since is another simulation)
             "site_specs": {sid: hashlib.sha256(catalog.fleet.site(sid).model_dump_json()
                                                .encode()).hexdigest()[:16] for sid in ids},
             "errors": dataclasses.asdict(errors),
             "weather": weather.source if weather is not None else None,
             "actuals": {sid: hashlib.sha256(pd.util.hash_pandas_object(df).values.tobytes())
                         .hexdigest()[:16] for sid, df in sorted(actuals.items())}}
    key = run_key(opts, ids, extra)
    doc = {"options": opts.describe(), "sites": ids, **extra}  # what the key digests
    manifest = out / "run.json"
    if manifest.is_file():
        try:
            old = json.loads(manifest.read_text())
        except json.JSONDecodeError:
            old = {}
        if old.get("key") != key:
            def same(a: object, b: object) -> bool:
                return (json.dumps(a, sort_keys=True, default=str)
                        == json.dumps(b, sort_keys=True, default=str))

            differ = [k for k in doc if not same(old.get(k), doc[k])]
            if "options" in differ and isinstance(old.get("options"), dict):
                differ[differ.index("options")] = ", ".join(
                    k for k in doc["options"] if not same(old["options"].get(k),
                                                          doc["options"][k]))
            names = {"data": "the data files (tariffs, policy, fleet, load archetypes, "
                             "feeders or PV calibrations)",
                     "site_specs": "the sites' definitions"}
            what = ", ".join(names.get(d, d) for d in differ) or "its key"
            raise InvalidInputError(
                f"{out} holds results of a different simulation: {what} differ from this run's "
                f"(run.json key {old.get('key')!r}, this run {key!r}); choose another output "
                "folder")
        return
    manifest.write_text(json.dumps({"key": key, **doc, "data_versions": _data_versions(catalog)},
                                   indent=2, ensure_ascii=False))


def _data_versions(catalog: Catalog) -> dict[str, object]:
    """The versions of the data a run used, for people reading ``run.json``."""
    tariffs = catalog.tariffs
    return {"tariffs": sorted(f"{i} {t.version}" for i in tariffs.ids
                              for t in tariffs.versions(i)),
            "subsidy_policy": [p.version for p in catalog.policies.versions],
            "fleet": catalog.fleet.version}
