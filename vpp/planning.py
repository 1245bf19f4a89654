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
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from forecasts.load import archetype_profile
from forecasts.pv_forecast import forecast_pv
from forecasts.weather import Weather
from models import DispatchProblem, DispatchResult, InvalidInputError, solve_dispatch
from vpp.accounting import kpis, valley_cycling_kwh
from vpp.catalog import Catalog
from vpp.options import PlanOptions
from vpp.problem import site_problem
from vpp.pv_inputs import site_pv_model
from vpp.sites import Site
from vpp.subsidy import annual_budget_kwh, model_rule, subsidy_rate_series
from vpp.tariffs import price_series
from vpp.timebase import INTERVAL_MINUTES, PER_DAY, align_series, horizon

log = logging.getLogger(__name__)

PLAN_SCHEMA = "vpp.plan/1"


def usable_cores() -> int:
    """CPU cores this process may use (its affinity mask, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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
    index = horizon(start, options.days)
    n = len(index)
    prices = price_series(catalog.tariffs, site.tariff_id, index, site.grid.transformer_kva,
                          options.tariff_version)
    tariff = catalog.tariffs.select(site.tariff_id, start, options.tariff_version)
    # each billing month the horizon touches is billed under the version in force in it
    firsts = sorted({d.date() for d in index[::PER_DAY] if d.day == 1} | {start})
    tariffs = [catalog.tariffs.select(site.tariff_id, d, options.tariff_version)
               for d in firsts]
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
    policy = catalog.policy_for(site)
    subsidy = np.zeros(n)
    if st is not None:
        subsidy = subsidy_rate_series(policy, st.power_kw, st.grid_connection_date,
                                      index, options.subsidy_rate_yuan_per_kwh,
                                      prices["period"].to_numpy()).to_numpy()
    energy = st.energy_kwh if st is not None else 0.0
    init, term = options.soc_initial_frac, options.soc_terminal_min_frac
    if st is not None:  # the options' names and units, not the model's kWh
        bad = [f"{name}={v:g}: allowed range [{st.soc_min_frac:g}, {st.soc_max_frac:g}] for "
               f"{site.id} (its SOC window, share of {energy:g} kWh)"
               for name, v in (("soc_initial_frac", init), ("soc_terminal_min_frac", term))
               if v is not None and not st.soc_min_frac <= v <= st.soc_max_frac]
        if bad:
            raise InvalidInputError(bad, "invalid plan options")
    problem = site_problem(
        site, index, load_kw=load, pv_kw=pv,
        import_price=prices["import_price_yuan_per_kwh"].to_numpy(),
        export_price=prices["export_price_yuan_per_kwh"].to_numpy(), subsidy_rate=subsidy,
        tariff=tariffs, month_peak_kw=options.month_peak_kw,
        soc_initial_kwh=None if init is None else init * energy,
        soc_terminal_min_kwh=None if term is None else term * energy,
        subsidy_aware=options.subsidy_aware, subsidy_rule=model_rule(policy),
        subsidy_budget_kwh=(annual_budget_kwh(policy, st.power_kw) if st is not None
                            else None))
    sources = {"pv_forecast": pv_source, "load": load_source}
    return SiteInputs(site, index, problem, subsidy, prices["period"].to_numpy(), tariff, sources,
                      bands)


def _list(a: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in a]


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    """A spec's fields as JSON-ready values (arrays and tuples as lists)."""
    return {k: (_list(v) if isinstance(v, np.ndarray) else list(v) if isinstance(v, tuple)
                else v) for k, v in d.items()}


def describe_plan(catalog: Catalog, si: SiteInputs, r: DispatchResult,
                  options: PlanOptions) -> dict[str, Any]:
    """The self-describing plan document (see docs/plan-format.md)."""
    p = si.problem
    site = si.site
    st = site.storage
    policy = catalog.policy_for(site)
    changes: list[dict[str, str]] = []
    for day in sorted({t.date() for t in si.index}):
        v = catalog.tariffs.select(site.tariff_id, day, options.tariff_version).version
        if not changes or changes[-1]["version"] != v:
            changes.append({"from": day.isoformat(), "version": v})
    window = None
    if st is not None:
        w = catalog.paid_window(site)
        window = {
            "eligible": w is not None,
            "first_paid_day": w[0].isoformat() if w else None,
            "last_paid_day": w[1].isoformat() if w else None,
        }
    storage_note = "none"
    if st is not None:
        storage_note = (f"{st.power_kw:g} kW / {st.energy_kwh:g} kWh, grid connection "
                        f"{st.grid_connection_date}")
        if p.storage is None:
            storage_note += (": not in service before its grid connection, planned without "
                             "it")
    end = si.index[-1] + pd.Timedelta(minutes=INTERVAL_MINUTES)
    return {
        "schema": PLAN_SCHEMA,
        "site_id": site.id,
        "site_name": site.name,
        "start": si.index[0].isoformat(),
        "end": end.isoformat(),
        "interval_minutes": INTERVAL_MINUTES,
        "status": r.status,
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
        "options": options.model_dump(mode="json"),
        "sources": {
            **si.sources,
            "storage": storage_note,
            "tariff": f"{si.tariff.id} / {si.tariff.version}: {si.tariff.source}" + "".join(
                f"; from {c['from']}: {c['version']}" for c in changes[1:]),
            "subsidy_policy": f"{policy.version}: {policy.source}",
            "fleet": f"{catalog.fleet.version}" + (" (illustrative)"
                                                    if catalog.fleet.illustrative else ""),
        },
        "parameters": {
            "storage": None if p.storage is None else {
                **_plain(asdict(p.storage)), "soc_terminal_min_kwh": p.storage.terminal_min_kwh,
                "grid_connection_date": st.grid_connection_date.isoformat(),
            },
            "grid": {**_plain(asdict(p.grid)), "transformer_kva": site.grid.transformer_kva,
                     "billing_basis": site.billing_basis,
                     "capacity_charge_yuan_per_month": (
                         si.tariff.capacity_yuan_per_kva_month * site.grid.transformer_kva
                         if site.billing_basis == "capacity" else 0.0)},
            "tariff": si.tariff.describe(),
            # the version in force from each day where it changes (the first day's above)
            "tariff_versions": changes,
            "subsidy": {**policy.describe(), "window": window,
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
        "kpis": {**kpis(p, r, si.subsidy_rate_yuan_per_kwh),
                 "objective_yuan": r.objective_yuan},
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
    plan = describe_plan(catalog, si, result, options)
    add_subsidy_effect(plan, si, result, options)
    return plan, si


def add_subsidy_effect(plan: dict[str, Any], si: SiteInputs, result: DispatchResult,
                       options: PlanOptions) -> None:
    """What the subsidy does to a subsidy-aware plan: the discharge that exists only because
    of it (this plan's minus the same problem planned subsidy-blind [kWh]) and the energy
    cycled inside one valley stretch [kWh]; both in ``kpis``, named in ``flags``."""
    p, k = si.problem, plan["kpis"]
    k["valley_cycling_kwh"] = valley_cycling_kwh(si.periods, result.charge_kw,
                                                 result.discharge_kw, p.dt_h)
    k["subsidy_only_discharge_kwh"] = 0.0
    if options.subsidy_aware and p.storage is not None and np.any(p.subsidy_yuan_per_kwh > 0):
        blind = solve_dispatch(replace(p, subsidy_yuan_per_kwh=np.zeros(p.n)),
                               options.solve_options())
        k["subsidy_only_discharge_kwh"] = float(
            p.dt_h * (result.discharge_kw.sum() - blind.discharge_kw.sum()))
    flags = plan.setdefault("flags", [])
    if k["subsidy_only_discharge_kwh"] > 1.0:
        flags.append(f"{k['subsidy_only_discharge_kwh']:,.0f} kWh discharged only because of "
                     "the subsidy (this plan against the same day planned subsidy-blind)")
    if k["valley_cycling_kwh"] > 1.0:
        flags.append(f"valley-to-valley cycling: {k['valley_cycling_kwh']:,.0f} kWh charged "
                     "and discharged inside one valley stretch")


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
