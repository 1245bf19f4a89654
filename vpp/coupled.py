"""The VPP day: every site's plan, shared feeder limits, demand-response events, settlement.

1. Every site is planned on its own (in parallel processes).
2. A feeder whose cap those plans break (on the net flow at the feeder head,
   :mod:`models.fleet`) has its sites re-planned jointly. Where no cap binds the independent
   plans are the joint optimum: dropping the coupling constraints can only lower the cost,
   and the independent plans already satisfy them.
3. With events, each participant's plan from 1-2 is its *baseline*; the participants are then
   planned jointly with the events and their feeders, delivering the requested change of
   aggregate import at least cost or reporting the shortfall. A feeder's cap is on the flow
   of every site behind it, so the other sites of a participant's feeder join the group
   (re-planned, counted in no event's delivery). The settlement compares each site's event
   plan with its baseline.

Every plan solved jointly carries its ``coupling`` (:func:`coupling_document`): the feeders
and events it was solved under, the group's certificate, and its cost above its own
stand-alone plan from step 1 - a plan can be certified for the group and still cost its
site more than planning alone would.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forecasts.weather import Weather
from models import GAP_FLOOR_YUAN, Directions, DREvent, FeederCap, FleetProblem, solve_fleet
from vpp.catalog import Catalog
from vpp.network import EventSpec, to_events
from vpp.planning import (
    INTERVAL_MINUTES,
    PlanOptions,
    SiteInputs,
    build_inputs,
    describe_plan,
    horizon,
)
from vpp.planning import plan_fleet as plan_independent

TOL_KW = 1e-4


@dataclass
class VppDay:
    """Everything one VPP run produced (see the module docstring)."""

    plans: dict[str, dict[str, Any]]
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    settlement: pd.DataFrame | None = None
    feeders: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def _series(plan: dict, key: str) -> np.ndarray:
    return np.asarray(plan["intervals"][key], dtype=float)


def net_import(plan: dict) -> np.ndarray:
    """Grid import minus export [kW] per interval of a plan."""
    return _series(plan, "grid_import_kw") - _series(plan, "grid_export_kw")


def feeder_report(plans: dict[str, dict], feeders: tuple[FeederCap, ...]) -> list[dict]:
    """Peak net import and net export of each feeder against its caps [kW]: the flow at the
    feeder head, the sites' net meter readings added up (see :mod:`models.fleet`)."""
    out = []
    for f in feeders:
        members = [s for s in f.members if s in plans]
        if not members:
            continue
        net = sum(net_import(plans[s]) for s in members)
        over_i = f.import_cap_kw is not None and net.max() > f.import_cap_kw + TOL_KW
        over_e = f.export_cap_kw is not None and -net.min() > f.export_cap_kw + TOL_KW
        out.append({"feeder": f.name, "sites": members, "flows": "net",
                    "import_cap_kw": f.import_cap_kw,
                    "peak_net_import_kw": max(0.0, float(net.max())),
                    "export_cap_kw": f.export_cap_kw,
                    "peak_net_export_kw": max(0.0, float(-net.min())),
                    "violated": bool(over_i or over_e)})
    return out


def coupling_document(site_id: str, site_ids: list[str], feeders: tuple[FeederCap, ...],
                      events: tuple[DREvent, ...], index: pd.DatetimeIndex, why: str,
                      res: Any, standalone: dict | None) -> dict[str, Any]:
    """What a plan solved jointly was solved under, and what that cost the site (see
    docs/plan-format.md): the feeders and events of the joint model, the group's certificate,
    and the site's cost above its own stand-alone plan [yuan]."""
    step = pd.Timedelta(minutes=INTERVAL_MINUTES)
    own = res.sites[site_id].objective_yuan
    doc: dict[str, Any] = {
        "reason": why,
        "solved_with": [x for x in site_ids if x != site_id],
        "feeders": [{"name": f.name, "sites": list(f.members), "flows": "net",
                     "import_cap_kw": f.import_cap_kw, "export_cap_kw": f.export_cap_kw}
                    for f in feeders],
        "events": [{"id": e.name, "type": e.kind, "start": index[e.start].isoformat(),
                    "end": (index[e.end - 1] + step).isoformat(),
                    "requested_kw": e.requested_kw,
                    "compensation_yuan_per_kwh": e.compensation_yuan_per_kwh,
                    "compensation_yuan_per_kw": e.compensation_yuan_per_kw,
                    "shortfall_penalty_yuan_per_kwh": e.shortfall_penalty_yuan_per_kwh,
                    "participants": list(e.participants or site_ids)}
                   for e in events],
        "group_status": res.status,
        "group_objective_yuan": res.objective_yuan,
        "group_objective_bound_yuan": res.objective_bound_yuan,
        "group_optimality_gap": res.optimality_gap,
        "site_objective_yuan": own,
        "standalone_objective_yuan": None,
        "standalone_optimality_gap": None,
        "cost_above_standalone_yuan": None,
        "cost_above_standalone_share": None,
    }
    if standalone is not None:
        alone = standalone["solver"]["objective_yuan"]
        doc.update(standalone_objective_yuan=alone,
                   standalone_optimality_gap=standalone["solver"]["optimality_gap"],
                   cost_above_standalone_yuan=own - alone,
                   cost_above_standalone_share=(own - alone) / max(abs(alone),
                                                                   GAP_FLOOR_YUAN))
    return doc


def _joint(catalog: Catalog, start: dt.date, options: PlanOptions, site_ids: list[str],
           feeders: tuple[FeederCap, ...], events: tuple[DREvent, ...],
           baselines: dict[str, np.ndarray], weather: Weather | None, why: str,
           plans_now: dict[str, dict], known: dict[str, SiteInputs],
           standalone: dict[str, dict]) -> tuple[dict[str, dict], Any]:
    inputs = {s: known.get(s) or build_inputs(catalog, catalog.fleet.site(s), start, options,
                                              weather=weather) for s in site_ids}
    fp = FleetProblem({s: si.problem for s, si in inputs.items()}, feeders, events, baselines)
    # the sites' current plans (independent, or the baselines of an event) as a start
    hints = {s: Directions(*(_series(plans_now[s], k) for k in (
        "grid_import_kw", "grid_export_kw", "charge_kw", "discharge_kw")))
        for s in site_ids if s in plans_now}
    res = solve_fleet(fp, options.solve_options(), hints)
    t0 = time.perf_counter()
    plans = {}
    for s, si in inputs.items():
        p = describe_plan(catalog, si, res.sites[s], options)
        c = coupling_document(s, site_ids, feeders, events, si.index, why, res,
                              standalone.get(s))
        p["coupling"] = c
        note = f"solved jointly with {len(site_ids) - 1} other site(s): {why}; group gap " \
               f"{res.optimality_gap:.3%}"
        if c["cost_above_standalone_yuan"] is not None:
            note += (f"; the site's cost {c['cost_above_standalone_yuan']:+.2f} yuan "
                     f"({c['cost_above_standalone_share']:+.3%}) against its stand-alone plan")
        p["solver"]["notes"] = [*p["solver"]["notes"], note]
        plans[s] = p
    res.extract_seconds += time.perf_counter() - t0  # the plan documents too
    return plans, res


def plan_vpp(
    catalog: Catalog,
    start: dt.date,
    options: PlanOptions | None = None,
    feeders: tuple[FeederCap, ...] = (),
    events: list[EventSpec] | None = None,
    weather: Weather | None = None,
    jobs: int = 1,
    on_plan: Callable[[str, dict | None, Exception | None], None] | None = None,
) -> VppDay:
    """Plan the fleet for ``start`` with its feeder limits and demand-response events."""
    options = options or PlanOptions()
    t0 = time.perf_counter()
    index = horizon(start, options.days)
    dr = to_events(events, index, catalog.fleet) if events else ()
    known: dict[str, SiteInputs] = {}
    plans = plan_independent(catalog, start, options, on_plan=on_plan, jobs=jobs,
                             weather=weather, inputs=known)
    standalone = dict(plans)  # each site's own optimum, what coupled plans are measured by
    t1 = time.perf_counter()
    day = VppDay(plans=dict(plans))
    day.timings["independent_s"] = t1 - t0
    jointly: set[str] = set()
    for rep in feeder_report(day.plans, feeders):
        if rep["violated"]:
            f = next(x for x in feeders if x.name == rep["feeder"])
            joint, _ = _joint(catalog, start, options, rep["sites"], (f,), (), {}, weather,
                              f"shared limit of {f.name}", day.plans, known, standalone)
            day.plans.update(joint)
            jointly.add(f.name)
    day.timings["feeders_s"] = time.perf_counter() - t1
    if dr:
        t2 = time.perf_counter()
        part_set = {s for e in dr for s in (e.participants or day.plans)}
        # a participant's feeder comes whole: its cap is on the flow of every site behind
        # it, so the sites that share it are planned with the group (not paid for the event)
        fs = tuple(f for f in feeders if set(f.members) & part_set)
        group_set = part_set | {s for f in fs for s in f.members if s in day.plans}
        group = sorted(group_set, key=list(day.plans).index)
        fs = tuple(FeederCap(f.name, tuple(s for s in f.members if s in group_set),
                             f.import_cap_kw, f.export_cap_kw) for f in fs)
        day.baselines = {s: day.plans[s] for s in group}
        base_net = {s: net_import(day.plans[s]) for s in group}
        joint, res = _joint(catalog, start, options, group, fs, dr, base_net, weather,
                            "demand-response event(s) " + ", ".join(e.name for e in dr),
                            day.plans, known, standalone)
        day.plans.update(joint)
        day.events = [_event_report(o, index) for o in res.events]
        day.settlement = settlement(day.baselines, joint, res.events)
        jointly |= {f.name for f in fs}
        day.timings["events_s"] = time.perf_counter() - t2
        day.timings["events_build_s"] = res.build_seconds
        day.timings["events_solve_s"] = res.solve_seconds
        day.timings["events_highs_s"] = res.highs_seconds
        day.timings["events_extract_s"] = res.extract_seconds
    day.feeders = feeder_report(day.plans, feeders)
    for rep in day.feeders:
        rep["solved_jointly"] = rep["feeder"] in jointly
    day.timings["total_s"] = time.perf_counter() - t0
    return day


def _event_report(o: Any, index: pd.DatetimeIndex) -> dict[str, Any]:
    e = o.event
    dt_h = INTERVAL_MINUTES / 60
    w = slice(e.start, e.end)
    return {
        "id": e.name, "type": e.kind, "start": index[e.start].isoformat(),
        "end": (index[e.end - 1] + pd.Timedelta(minutes=INTERVAL_MINUTES)).isoformat(),
        "requested_kw": e.requested_kw,
        "delivered_kw": [round(float(v), 3) for v in o.delivered_kw[w]],
        "shortfall_kw": [round(float(v), 3) for v in o.shortfall_kw[w]],
        "delivered_kwh": float(o.delivered_kw[w].sum() * dt_h),
        "shortfall_kwh": float(o.shortfall_kw[w].sum() * dt_h),
        "min_delivered_kw": float(o.delivered_kw[w].min()),
        "compensation_yuan": o.compensation_yuan,
        "shortfall_penalty_yuan": o.penalty_yuan,
        "by_site_kwh": {s: float(v[w].sum() * dt_h) for s, v in o.by_site_kw.items()},
    }


def settlement(baselines: dict[str, dict], plans: dict[str, dict], outcomes: list[Any],
               ) -> pd.DataFrame:
    """Per site: energy delivered to the events [kWh] (positive = in the requested
    direction), compensation earned [yuan] (each event's compensation shared in proportion to
    the positive deliveries), extra cost of the event plan over the baseline [yuan], and the
    net benefit."""
    dt_h = INTERVAL_MINUTES / 60
    rows = {}
    for s in plans:
        rows[s] = {"delivered_kwh": 0.0, "compensation_yuan": 0.0}
    for o in outcomes:
        e = o.event
        kwh = {s: float(v[e.start:e.end].sum() * dt_h) for s, v in o.by_site_kw.items()}
        pos = sum(max(0.0, v) for v in kwh.values())
        for s, v in kwh.items():
            rows[s]["delivered_kwh"] += v
            if pos > 0:
                rows[s]["compensation_yuan"] += o.compensation_yuan * max(0.0, v) / pos
    for s, r in rows.items():
        r["baseline_cost_yuan"] = baselines[s]["kpis"]["net_cost_yuan"]
        r["event_plan_cost_yuan"] = plans[s]["kpis"]["net_cost_yuan"]
        r["extra_cost_yuan"] = r["event_plan_cost_yuan"] - r["baseline_cost_yuan"]
        r["net_benefit_yuan"] = r["compensation_yuan"] - r["extra_cost_yuan"]
    names = {"delivered_kwh": "delivered [kWh]", "compensation_yuan": "compensation [yuan]",
             "baseline_cost_yuan": "baseline cost [yuan]",
             "event_plan_cost_yuan": "event plan cost [yuan]",
             "extra_cost_yuan": "extra cost [yuan]", "net_benefit_yuan": "net benefit [yuan]"}
    df = pd.DataFrame(rows).T[list(names)].rename(columns=names)
    df = df.astype(float)
    df = df.where(df.abs() >= 1e-3, 0.0)  # solver noise of 1e-7 kWh is no delivery
    df.loc["TOTAL"] = df.sum()
    return df
