"""What requests compute in the server process: plans and plan charts.

Each server process solves one plan at a time on its solver thread (HiGHS' first instance
in a process, and Pyomo's solver interface, capture the process's output descriptors, which
is not safe from two threads at once) and draws one chart at a time on its plotting thread
(pyplot is global state). A request waiting for either holds no thread of the request pool
and no database connection; ``vpp serve --workers N`` solves N plans in parallel. Jobs run
in processes of their own (:mod:`service.jobs`) and never delay these.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from models.errors import InvalidInputError
from service.schemas import PlanRequest, SimulationRequest
from vpp.catalog import Catalog
from vpp.network import EventSpec, to_events
from vpp.options import PlanOptions, SimulationOptions, parse, with_policy
from vpp.plan_io import plot_plan
from vpp.planning import plan_site
from vpp.problem import demand_rate
from vpp.simulation import check_simulation
from vpp.state import API_REMEDY, InitialState, apply_initial_state, month_peak_warning
from vpp.timebase import horizon

T = TypeVar("T")


class Workers:
    """The process's solver and plotting threads."""

    def __init__(self) -> None:
        self.solver = ThreadPoolExecutor(1, thread_name_prefix="vpp-solve")
        self.plotter = ThreadPoolExecutor(1, thread_name_prefix="vpp-plot")

    async def solve(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self.solver.submit(fn, *args))

    async def plot(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self.plotter.submit(fn, *args))

    def shutdown(self) -> None:
        self.solver.shutdown(wait=False, cancel_futures=True)
        self.plotter.shutdown(wait=False, cancel_futures=True)


def plan_for_request(catalog: Catalog, req: PlanRequest,
                     state: InitialState | None = None) -> dict[str, Any]:
    """The plan document a :class:`PlanRequest` asks for (see :func:`vpp.planning.
    plan_site`), from the measured ``state`` where the request gives no month-to-date peak
    or initial SOC (:func:`vpp.state.apply_initial_state`)."""
    options = parse(with_policy(PlanOptions, catalog.policy.max_rate_yuan_per_kwh),
                    req.options(), "invalid plan request")
    site = catalog.fleet.site(req.site_id)
    options, initial = apply_initial_state(options, set(req.model_fields_set), state, site,
                                           req.date)
    index = horizon(req.date, req.days)
    overrides = {}
    for name in ("pv_kw", "load_kw"):
        values = getattr(req, name)
        if values is not None:
            if len(values) != len(index):
                raise InvalidInputError(
                    f"{name}: {len(values)} values given, the plan has {len(index)} "
                    "15-minute intervals", "invalid plan request")
            overrides[name] = pd.Series(values, index=index)
    plan = plan_site(catalog, req.site_id, req.date, options, **overrides)
    plan["initial_state"] = initial
    if "month_peak_kw" not in req.model_fields_set:
        warning = month_peak_warning(
            req.date, options.month_peak_kw, site,
            demand_rate(site, catalog.tariffs.select(site.tariff_id, req.date,
                                                     options.tariff_version)), API_REMEDY)
        if warning and initial["month_peak_source"].startswith("default"):
            plan.setdefault("flags", []).append(warning)
    return plan


def plan_png(plan: dict[str, Any]) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.png"
        plot_plan(plan, str(path))
        return path.read_bytes()


def simulation_options(catalog: Catalog, req: SimulationRequest) -> SimulationOptions:
    """The request's options, checked against the loaded subsidy policy."""
    return parse(with_policy(SimulationOptions, catalog.policy.max_rate_yuan_per_kwh),
                 req.options(), "invalid simulation request")


def check_simulation_request(catalog: Catalog, req: SimulationRequest, cap: int) -> None:
    """Everything that can be checked before a simulation job exists (options, known
    sites, a tariff in force on the first day, the server's size limit): 422 now, not a
    failed job later."""
    ids = check_simulation(catalog, simulation_options(catalog, req), req.sites or None)
    size = len(ids) * (req.months if req.days is None else -(-req.days // 30))
    if size > cap:
        span = f"{req.months} months" if req.days is None else f"{req.days} days"
        raise InvalidInputError(
            f"simulation of {len(ids)} sites x {span} = {size} site-months: this server "
            f"runs at most {cap} site-months per simulation", "simulation too large")


def check_fleet_plan_request(catalog: Catalog, date: dt.date,
                             events: list[EventSpec] | None) -> None:
    """Bad events and a day without a tariff in force are 422s now, not a failed job."""
    if events:
        to_events(events, horizon(date), catalog.fleet)
    for tariff_id in sorted({s.tariff_id for s in catalog.fleet.sites}):
        catalog.tariffs.select(tariff_id, date)
