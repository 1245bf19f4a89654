"""Day-ahead plans: assemble a site's inputs, solve, and describe the result.

A plan is a plain dict (JSON-ready, columnar per-interval arrays) that carries every input and
parameter it was solved with, so that anyone can audit it (:mod:`vpp.audit`) or re-solve it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from forecasts.load import archetype_profile
from forecasts.pv_forecast import forecast_pv
from forecasts.weather import Weather
from models.dispatch import (
    CONTRACT_TOLERANCE,
    DispatchProblem,
    DispatchResult,
    GridSpec,
    ShiftableLoad,
    SolveOptions,
    StorageSpec,
    solve_dispatch,
)
from models.errors import InvalidInputError
from vpp.catalog import Catalog
from vpp.pv_inputs import site_pv_model
from vpp.sites import Site, clock_minutes
from vpp.subsidy import subsidy_rate_series, subsidy_window
from vpp.tariffs import price_series

log = logging.getLogger(__name__)

TZ = "Asia/Shanghai"
INTERVAL_MINUTES = 15
PLAN_SCHEMA = "vpp.plan/1"
MAX_DAYS = 7


@dataclass(frozen=True)
class PlanOptions:
    """What a user may choose about a plan; every field is validated by :meth:`validate`.

    Parameters
    ----------
    days : int
        Horizon in calendar days from 00:00 of the start date, in [1, 7].
    subsidy_aware : bool
        Let the subsidy into the objective (default); False plans subsidy-blind (the subsidy
        the plan would still earn is reported either way).
    subsidy_rate_yuan_per_kwh : float, optional
        Rate in [0, policy maximum]; default the policy's rate.
    month_peak_kw : float
        Highest 15-minute import so far this month [kW]; only demand above it costs. 0 (the
        default) is the first day of a billing month.
    soc_initial_frac, soc_terminal_min_frac : float, optional
        Override the site's initial state of charge and the end-of-horizon floor (default: the
        initial state), as shares of nameplate energy [-].
    tariff_version : str, optional
        Force a tariff version (e.g. ``su-fagaijiage-2023-555``) instead of the one in force.
    mip_rel_gap : float
        Certified relative optimality gap every plan must reach, in [0, 0.05].
    time_limit_s : float
        HiGHS time limit per call [s].
    method : {"auto", "milp"}
        See :class:`models.dispatch.SolveOptions`.
    pv_quantile : {"p50", "p10", "p90"}
        Which PV forecast quantile the plan dispatches against (P10: a cautious plan).
    """

    days: int = 1
    subsidy_aware: bool = True
    subsidy_rate_yuan_per_kwh: float | None = None
    month_peak_kw: float = 0.0
    soc_initial_frac: float | None = None
    soc_terminal_min_frac: float | None = None
    tariff_version: str | None = None
    mip_rel_gap: float = 1e-3
    time_limit_s: float = 60.0
    method: Literal["auto", "milp"] = "auto"
    pv_quantile: Literal["p10", "p50", "p90"] = "p50"

    def validate(self) -> None:
        problems = []
        if not 1 <= self.days <= MAX_DAYS:
            problems.append(f"days={self.days}: allowed range [1, {MAX_DAYS}]")
        if self.month_peak_kw < 0:
            problems.append(f"month_peak_kw={self.month_peak_kw}: allowed range [0, inf) kW")
        for name in ("soc_initial_frac", "soc_terminal_min_frac"):
            v = getattr(self, name)
            if v is not None and not 0.0 <= v <= 1.0:
                problems.append(f"{name}={v}: allowed range [0, 1]")
        if self.subsidy_rate_yuan_per_kwh is not None and self.subsidy_rate_yuan_per_kwh < 0:
            problems.append(
                f"subsidy_rate_yuan_per_kwh={self.subsidy_rate_yuan_per_kwh}: must be >= 0"
            )
        if self.pv_quantile not in ("p10", "p50", "p90"):
            problems.append(f"pv_quantile={self.pv_quantile!r}: allowed p10, p50, p90")
        if problems:
            raise InvalidInputError(problems, "invalid plan options")
        self.solve_options().validate()

    def solve_options(self) -> SolveOptions:
        return SolveOptions(
            mip_rel_gap=self.mip_rel_gap, time_limit_s=self.time_limit_s, method=self.method
        )


def usable_cores() -> int:
    """CPU cores this process may use (its affinity mask, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def horizon(start: dt.date, days: int = 1) -> pd.DatetimeIndex:
    """15-minute interval starts from 00:00 of ``start`` (Asia/Shanghai) for ``days`` days."""
    first = pd.Timestamp(start).tz_localize(TZ)
    return pd.date_range(first, periods=days * 24 * 60 // INTERVAL_MINUTES,
                         freq=f"{INTERVAL_MINUTES}min")


def align_series(series: pd.Series, index: pd.DatetimeIndex, name: str) -> np.ndarray:
    """Values of a user series on the plan's intervals; an error names missing intervals."""
    s = series.copy()
    if s.index.tz is None:
        s.index = s.index.tz_localize(TZ)
    s = s.reindex(index)
    if s.isna().any():
        first = s.index[s.isna()][0]
        raise InvalidInputError(
            f"{name}: no value for {int(s.isna().sum())} of {len(index)} plan intervals "
            f"(first {first.isoformat()}); give 15-minute values covering the whole horizon"
        )
    values = s.to_numpy(dtype=float)
    if (values < 0).any():
        raise InvalidInputError(f"{name}: values must be >= 0 kW, minimum {values.min():g}")
    return values


def shiftable_loads(site: Site, index: pd.DatetimeIndex) -> tuple[ShiftableLoad, ...]:
    """One :class:`ShiftableLoad` per flexible load and calendar day of the horizon."""
    out = []
    per_day = 24 * 60 // INTERVAL_MINUTES
    days = len(index) // per_day
    for d in range(days):
        day = index[d * per_day].date().isoformat()
        for fl in site.flexible_loads:
            a = clock_minutes(fl.window_start) // INTERVAL_MINUTES
            b = clock_minutes(fl.window_end) // INTERVAL_MINUTES
            name = fl.name if days == 1 else f"{fl.name} {day}"
            out.append(
                ShiftableLoad(name, fl.energy_kwh, d * per_day + a, d * per_day + b,
                              fl.p_max_kw, fl.p_min_kw)
            )
    return tuple(out)


@dataclass(frozen=True)
class SiteInputs:
    """A site's plan inputs on one horizon, before solving."""

    site: Site
    index: pd.DatetimeIndex
    problem: DispatchProblem
    subsidy_rate_yuan_per_kwh: np.ndarray
    periods: np.ndarray
    tariff: Any
    sources: dict[str, Any]
    pv_bands: dict[str, np.ndarray]


def build_inputs(
    catalog: Catalog,
    site: Site,
    start: dt.date,
    options: PlanOptions,
    pv_kw: pd.Series | None = None,
    load_kw: pd.Series | None = None,
    weather: Weather | None = None,
) -> SiteInputs:
    """Everything the dispatch model needs for ``site`` from 00:00 on ``start``.

    PV: ``pv_kw`` if given, else the site's pvlib forecast (its stored calibration applied)
    from ``weather``, or from the climatology without it; ``options.pv_quantile`` picks the
    quantile.
    """
    options.validate()
    index = horizon(start, options.days)
    n = len(index)
    dt_h = INTERVAL_MINUTES / 60.0
    prices = price_series(catalog.tariffs, site.tariff_id, index, site.grid.transformer_kva,
                          options.tariff_version)
    tariff = catalog.tariffs.select(site.tariff_id, start, options.tariff_version)
    bands: dict[str, np.ndarray] = {}
    if pv_kw is not None:
        pv = align_series(pv_kw, index, "pv_kw")
        pv_source = "user-supplied PV forecast"
    elif site.pv_arrays:
        model = site_pv_model(site, catalog.calibrations)
        fc = forecast_pv(model, index, weather)
        pv = fc.frame[f"{options.pv_quantile}_kw"].to_numpy()
        bands = {q: fc.frame[f"{q}_kw"].to_numpy() for q in ("p10", "p50", "p90")}
        calibrated = (f"; calibrated ({model.calibrated.get('file')})" if model.calibrated
                      else "; nominal parameters")
        pv_source = (f"{options.pv_quantile.upper()} of the pvlib forecast from {fc.source}"
                     f"{calibrated}")
    else:
        pv = np.zeros(n)
        pv_source = "no PV arrays"
    if load_kw is not None:
        load = align_series(load_kw, index, "load_kw")
        load_source = "user-supplied load"
    else:
        shape = catalog.archetypes[site.load.archetype]
        load = archetype_profile(shape, site.load.peak_kw, index).to_numpy()
        load_source = f"archetype {site.load.archetype} x {site.load.peak_kw:g} kW peak"

    st = site.storage
    storage = None
    subsidy = np.zeros(n)
    if st is not None:
        subsidy = subsidy_rate_series(catalog.policy, st.power_kw, st.grid_connection_date,
                                      index, options.subsidy_rate_yuan_per_kwh).to_numpy()
        init = st.soc_initial_frac if options.soc_initial_frac is None else options.soc_initial_frac
        term = options.soc_terminal_min_frac
        storage = StorageSpec(
            power_kw=st.power_kw,
            energy_kwh=st.energy_kwh,
            eta_charge=st.eta_charge,
            eta_discharge=st.eta_discharge,
            soc_min_kwh=st.soc_min_frac * st.energy_kwh,
            soc_max_kwh=st.soc_max_frac * st.energy_kwh,
            soc_initial_kwh=init * st.energy_kwh,
            soc_terminal_min_kwh=None if term is None else term * st.energy_kwh,
            degradation_yuan_per_kwh=st.degradation_yuan_per_kwh,
            max_cycles_per_day=st.max_cycles_per_day,
        )
    demand_rate = tariff.demand_yuan_per_kw_month if site.billing_basis == "demand" else 0.0
    grid = GridSpec(
        import_limit_kw=site.grid.import_limit_kw,
        export_limit_kw=site.grid.export_limit_kw,
        demand_rate_yuan_per_kw_month=demand_rate,
        month_peak_kw=options.month_peak_kw,
        contract_demand_kw=site.grid.contract_demand_kw,
    )
    local = index.tz_convert(TZ)
    day0 = local[0].normalize()
    problem = DispatchProblem(
        dt_h=dt_h,
        load_kw=load,
        pv_kw=pv,
        import_price_yuan_per_kwh=prices["import_price_yuan_per_kwh"].to_numpy(),
        export_price_yuan_per_kwh=prices["export_price_yuan_per_kwh"].to_numpy(),
        subsidy_yuan_per_kwh=subsidy if options.subsidy_aware else np.zeros(n),
        day_of_interval=np.asarray((local.normalize() - day0).days, dtype=int),
        storage=storage,
        grid=grid,
        shiftable=shiftable_loads(site, index),
        interval_labels=tuple(local.strftime("%Y-%m-%d %H:%M")),
    )
    sources = {"pv_forecast": pv_source, "load": load_source}
    return SiteInputs(site, index, problem, subsidy, prices["period"].to_numpy(), tariff, sources,
                      bands)


def baseline(p: DispatchProblem) -> dict[str, np.ndarray | float]:
    """The same day without storage or flexibility: shiftable loads spread evenly over their
    windows, PV first to the load, surplus exported up to the limit, the rest curtailed."""
    flex = np.zeros(p.n)
    for sh in p.shiftable:
        flex[sh.start : sh.end] += sh.energy_kwh / ((sh.end - sh.start) * p.dt_h)
    net = p.load_kw + flex - p.pv_kw
    imp = np.clip(net, 0.0, None)
    exp = np.minimum(np.clip(-net, 0.0, None), p.grid.export_limit_kw)
    return {"flexible_load_kw": flex, "grid_import_kw": imp, "grid_export_kw": exp,
            "pv_used_kw": p.pv_kw - (np.clip(-net, 0.0, None) - exp)}


def demand_charge_yuan(grid: GridSpec, imports_kw: np.ndarray) -> float:
    """Increase of the month's demand charge caused by ``imports_kw`` [yuan]."""
    rate = grid.demand_rate_yuan_per_kw_month
    peak = max(float(np.max(imports_kw, initial=0.0)), grid.month_peak_kw)
    cost = rate * (peak - grid.month_peak_kw)
    if grid.contract_demand_kw is not None:
        threshold = CONTRACT_TOLERANCE * grid.contract_demand_kw
        cost += rate * (max(0.0, peak - threshold) - max(0.0, grid.month_peak_kw - threshold))
    return cost


def kpis(si: SiteInputs, r: DispatchResult) -> dict[str, float]:
    """Costs [yuan], energies [kWh] and ratios [-] of a solved plan and its baseline."""
    p = si.problem
    dt_h = p.dt_h
    pi, pe = p.import_price_yuan_per_kwh, p.export_price_yuan_per_kwh
    energy_cost = float(dt_h * np.sum(pi * r.grid_import_kw))
    export_rev = float(dt_h * np.sum(pe * r.grid_export_kw))
    demand = demand_charge_yuan(p.grid, r.grid_import_kw)
    discharge_kwh = float(dt_h * r.discharge_kw.sum())
    deg = p.storage.degradation_yuan_per_kwh * discharge_kwh if p.storage else 0.0
    subsidy = float(dt_h * np.sum(si.subsidy_rate_yuan_per_kwh * r.discharge_kw))
    net_cost = energy_cost - export_rev + demand + deg - subsidy
    b = baseline(p)
    b_cost = (float(dt_h * np.sum(pi * b["grid_import_kw"] - pe * b["grid_export_kw"]))
              + demand_charge_yuan(p.grid, b["grid_import_kw"]))
    pv_kwh = float(dt_h * p.pv_kw.sum())
    consumption = float(dt_h * (p.load_kw.sum() + r.flexible_load_kw.sum()))
    export_kwh = float(dt_h * r.grid_export_kw.sum())
    self_used = max(0.0, float(dt_h * r.pv_used_kw.sum()) - export_kwh)
    energy_kwh = p.storage.energy_kwh if p.storage else 0.0
    return {
        "energy_cost_yuan": energy_cost,
        "export_revenue_yuan": export_rev,
        "demand_charge_yuan": demand,
        "degradation_cost_yuan": deg,
        "discharge_kwh": discharge_kwh,
        "charge_kwh": float(dt_h * r.charge_kw.sum()),
        "subsidy_yuan": subsidy,
        "objective_yuan": r.objective_yuan,
        "net_cost_yuan": net_cost,
        "baseline_cost_yuan": b_cost,
        "savings_yuan": b_cost - net_cost,
        "import_kwh": float(dt_h * r.grid_import_kw.sum()),
        "export_kwh": export_kwh,
        "load_kwh": consumption,
        "pv_available_kwh": pv_kwh,
        "pv_curtailed_kwh": float(dt_h * r.pv_curtailed_kw.sum()),
        "peak_import_kw": float(np.max(r.grid_import_kw, initial=0.0)),
        "baseline_peak_import_kw": float(np.max(b["grid_import_kw"], initial=0.0)),
        "equivalent_full_cycles": discharge_kwh / energy_kwh if energy_kwh else 0.0,
        "self_consumption_ratio": self_used / pv_kwh if pv_kwh > 0 else 0.0,
        "renewable_share": min(1.0, self_used / consumption) if consumption > 0 else 0.0,
    }


def _list(a: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in a]


def describe_plan(catalog: Catalog, si: SiteInputs, r: DispatchResult,
                  options: PlanOptions) -> dict[str, Any]:
    """The self-describing plan document (see docs/plan-format.md)."""
    p = si.problem
    site = si.site
    st = site.storage
    window = None
    if st is not None:
        w = subsidy_window(catalog.policy, st.power_kw, st.grid_connection_date)
        window = {
            "eligible": w is not None,
            "first_paid_day": w[0].isoformat() if w else None,
            "last_paid_day": w[1].isoformat() if w else None,
        }
    end = si.index[-1] + pd.Timedelta(minutes=INTERVAL_MINUTES)
    return {
        "schema": PLAN_SCHEMA,
        "site_id": site.id,
        "site_name": site.name,
        "start": si.index[0].isoformat(),
        "end": end.isoformat(),
        "interval_minutes": INTERVAL_MINUTES,
        "status": "optimal",
        "solver": {
            "name": r.solver_name,
            "version": r.solver_version,
            "method": r.method,
            "seconds": round(r.solve_seconds, 4),
            "highs_seconds": round(r.highs_seconds, 4),
            "solves": r.solves,
            "binaries": r.binaries,
            "objective_yuan": r.objective_yuan,
            "objective_bound_yuan": r.objective_bound_yuan,
            "optimality_gap": r.optimality_gap,
            "mip_rel_gap_required": options.mip_rel_gap,
            "notes": r.log,
        },
        "options": asdict(options),
        "sources": {
            **si.sources,
            "tariff": f"{si.tariff.id} / {si.tariff.version}: {si.tariff.source}",
            "subsidy_policy": f"{catalog.policy.version}: {catalog.policy.source}",
            "fleet": f"{catalog.fleet.version}" + (" (illustrative)"
                                                    if catalog.fleet.illustrative else ""),
        },
        "parameters": {
            "storage": None if p.storage is None else {
                **asdict(p.storage), "soc_terminal_min_kwh": p.storage.terminal_min_kwh,
                "grid_connection_date": st.grid_connection_date.isoformat(),
            },
            "grid": {**asdict(p.grid), "transformer_kva": site.grid.transformer_kva,
                     "billing_basis": site.billing_basis,
                     "capacity_charge_yuan_per_month": (
                         si.tariff.capacity_yuan_per_kva_month * site.grid.transformer_kva
                         if site.billing_basis == "capacity" else 0.0)},
            "tariff": si.tariff.describe(),
            "subsidy": {**catalog.policy.describe(), "window": window,
                        "counted_in_objective": options.subsidy_aware},
            "shiftable_loads": [asdict(s) for s in p.shiftable],
        },
        "inputs": {
            "timestamps": [t.isoformat() for t in si.index],
            "period": [str(x) for x in si.periods],
            "pv_forecast_kw": _list(p.pv_kw),
            "load_kw": _list(p.load_kw),
            "import_price_yuan_per_kwh": _list(p.import_price_yuan_per_kwh),
            "export_price_yuan_per_kwh": _list(p.export_price_yuan_per_kwh),
            "subsidy_yuan_per_kwh": _list(si.subsidy_rate_yuan_per_kwh),
            **{f"pv_{q}_kw": _list(v) for q, v in si.pv_bands.items()},
        },
        "intervals": {
            "pv_used_kw": _list(r.pv_used_kw),
            "pv_curtailed_kw": _list(r.pv_curtailed_kw),
            "charge_kw": _list(r.charge_kw),
            "discharge_kw": _list(r.discharge_kw),
            "soc_kwh": _list(r.soc_kwh),
            "grid_import_kw": _list(r.grid_import_kw),
            "grid_export_kw": _list(r.grid_export_kw),
            "flexible_load_kw": _list(r.flexible_load_kw),
        },
        "kpis": kpis(si, r),
    }


def plan_site(
    catalog: Catalog,
    site: Site | str,
    start: dt.date,
    options: PlanOptions | None = None,
    pv_kw: pd.Series | None = None,
    load_kw: pd.Series | None = None,
    weather: Weather | None = None,
) -> dict[str, Any]:
    """Solve and describe the day-ahead plan of one site (see :func:`build_inputs`).

    Raises
    ------
    InvalidInputError
        Bad options or inputs (every problem listed).
    InfeasiblePlanError
        No plan meets the constraints; the message names the blocking constraint group.
    """
    return _plan_with_inputs(catalog, site, start, options, pv_kw, load_kw, weather)[0]


def _plan_with_inputs(
    catalog: Catalog, site: Site | str, start: dt.date, options: PlanOptions | None = None,
    pv_kw: pd.Series | None = None, load_kw: pd.Series | None = None,
    weather: Weather | None = None,
) -> tuple[dict[str, Any], SiteInputs]:
    options = options or PlanOptions()
    if isinstance(site, str):
        site = catalog.fleet.site(site)
    si = build_inputs(catalog, site, start, options, pv_kw, load_kw, weather)
    result = solve_dispatch(si.problem, options.solve_options())
    return describe_plan(catalog, si, result, options), si


_worker_catalog: Catalog | None = None


def _init_worker(catalog: Catalog) -> None:
    global _worker_catalog
    _worker_catalog = catalog


def _plan_in_worker(site_id: str, start: dt.date, options: PlanOptions,
                    weather: Weather | None) -> tuple[dict[str, Any], SiteInputs]:
    assert _worker_catalog is not None, "worker not initialised"
    return _plan_with_inputs(_worker_catalog, site_id, start, options, weather=weather)


def plan_fleet(
    catalog: Catalog,
    start: dt.date,
    options: PlanOptions | None = None,
    site_ids: list[str] | None = None,
    on_plan: Callable[[str, dict | None, Exception | None], None] | None = None,
    jobs: int = 1,
    weather: Weather | None = None,
    inputs: dict[str, SiteInputs] | None = None,
) -> dict[str, dict[str, Any]]:
    """Plans for many sites, each solved independently; a failing site does not stop the others.

    Parameters
    ----------
    jobs : int
        Worker processes; 1 solves in this process, one site after another. Plans do not
        depend on ``jobs``.
    on_plan : callable, optional
        ``on_plan(site_id, plan, error)`` after each site, in the order they finish (for
        progress and incremental output).
    weather : Weather, optional
        One weather forecast for every site (the pilots lie within ~50 km); default the
        climatology.
    inputs : dict, optional
        Filled with each planned site's :class:`SiteInputs` (for joint re-plans that need
        the same forecasts without computing them again).

    Returns
    -------
    dict
        The successful plans by site id, in fleet order.
    """
    options = options or PlanOptions()
    options.validate()
    if jobs < 1:
        raise InvalidInputError(f"jobs={jobs}: allowed range [1, inf)")
    sites = [catalog.fleet.site(s) for s in site_ids] if site_ids else list(catalog.fleet.sites)
    done: dict[str, dict[str, Any]] = {}

    def record(site_id: str, out: tuple[dict, SiteInputs] | None,
               exc: Exception | None) -> None:
        plan = None
        if exc is not None:
            log.warning("%s: %s", site_id, exc)
        else:
            plan, si = out
            done[site_id] = plan
            if inputs is not None:
                inputs[site_id] = si
        if on_plan:
            on_plan(site_id, plan, exc)

    if jobs == 1 or len(sites) == 1:
        for site in sites:
            try:
                record(site.id, _plan_with_inputs(catalog, site, start, options,
                                                  weather=weather), None)
            except (InvalidInputError, RuntimeError) as exc:
                record(site.id, None, exc)
    else:
        workers = min(jobs, len(sites))
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(catalog,)) as pool:
            futures = {pool.submit(_plan_in_worker, s.id, start, options, weather): s.id
                       for s in sites}
            for fut in as_completed(futures):
                try:
                    record(futures[fut], fut.result(), None)
                except (InvalidInputError, RuntimeError) as exc:
                    record(futures[fut], None, exc)
    return {s.id: done[s.id] for s in sites if s.id in done}
