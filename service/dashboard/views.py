"""What each dashboard page shows, computed from the catalog and the store.

Plain functions: a page's numbers in, plain dicts out for the templates and the charts.
Every read goes through :mod:`service.store`'s scoping (``readable_sites``,
``plans_of_day``, ``list_jobs``...), so a park key's page holds only its own sites.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from service.auth import Principal
from service.dashboard import measurements
from service.db import JobFile
from service.store import list_jobs, plans_of_day, readable_sites
from vpp.catalog import Catalog
from vpp.i18n import Translator
from vpp.sites import Site
from vpp.timebase import TZ

#: Tariff period colours of the charts (the same as the PNG plan chart's bands).
PERIOD_COLOURS = {"deep_valley": "rgba(46,139,87,0.22)", "valley": "rgba(60,179,113,0.14)",
                  "flat": "rgba(160,160,160,0.10)", "peak": "rgba(255,165,0,0.16)",
                  "critical_peak": "rgba(220,20,60,0.18)"}


def today() -> dt.date:
    """Today in Changzhou (Asia/Shanghai)."""
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(TZ)).date()


def site_name(site: Site, tr: Translator) -> str:
    """The site's name in the user's language (``name_zh`` in Chinese, where it has one)."""
    return site.name_zh if tr.lang == "zh-CN" and site.name_zh else site.name


def subsidy_state(catalog: Catalog, site: Site, day: dt.date) -> dict[str, Any]:
    """The site's subsidy window and where ``day`` falls in it: ``paid`` (inside),
    ``before``, ``ended``, or ``ineligible`` (no storage, or below the policy's power)."""
    w = catalog.paid_window(site)
    if w is None:
        return {"state": "ineligible", "first": None, "last": None}
    state = "before" if day < w[0] else "ended" if day > w[1] else "paid"
    return {"state": state, "first": w[0], "last": w[1]}


def _net_import(plan: dict[str, Any]) -> np.ndarray:
    iv = plan["intervals"]
    return np.asarray(iv["grid_import_kw"], float) - np.asarray(iv["grid_export_kw"], float)


def overview(db: Session, catalog: Catalog, who: Principal, day: dt.date,
             tr: Translator, cache: measurements.MeasuredCache) -> dict[str, Any]:
    """Every site this key reads: size, subsidy window, the day's plan KPIs, the measured
    billing month of the day so far (at the day's end, or now while it runs); the feeder
    groups with their caps and the planned flow at their heads."""
    sites = readable_sites(catalog, who)
    plans = plans_of_day(db, who, day)
    now = measurements.as_of(day)
    mtd = measurements.month_to_date_of(db, catalog, sites, now, cache,
                                        measurements.billing_month(day))
    rows = []
    for s in sites:
        p = plans.get(s.id)
        st = s.storage
        rows.append({
            "id": s.id, "name": site_name(s, tr), "district": s.district,
            "pv_kwp": s.pv_dc_kwp, "storage_kw": st.power_kw if st else None,
            "storage_kwh": st.energy_kwh if st else None,
            "subsidy": subsidy_state(catalog, s, day),
            "plan_id": p.get("id") if p else None, "kpis": p["kpis"] if p else None,
            "mtd": mtd.get(s.id)})
    totals = {k: sum(r["kpis"][k] for r in rows if r["kpis"]) for k in (
        "net_cost_yuan", "savings_yuan", "subsidy_yuan", "discharge_kwh")}
    visible = {s.id for s in sites}
    feeders = []
    for f in (catalog.feeders.feeders if catalog.feeders else ()):
        members = [sid for sid in f.site_ids if sid in visible]
        if not members:
            continue
        complete = len(members) == len(f.site_ids) and all(m in plans for m in members)
        peak = float(sum(_net_import(plans[m]) for m in members).max()) if complete else None
        feeders.append({"name": f.name, "sites": members, "hidden": len(f.site_ids)
                        - len(members), "import_cap_kw": f.import_cap_kw,
                        "export_cap_kw": f.export_cap_kw, "planned_peak_kw": peak})
    counted = [m.month for m in mtd.values() if m is not None and m.month is not None]
    measured = {"as_of": now, "sites": sum(m is not None for m in mtd.values()),
                "demand_charge_yuan": sum(m.demand_charge_yuan for m in counted),
                "subsidy_yuan": sum(m.subsidy_yuan for m in counted)}
    return {"rows": rows, "totals": totals, "planned": len(plans), "feeders": feeders,
            "measured": measured}


def plan_chart(plan: dict[str, Any], tr: Translator) -> dict[str, Any]:
    """The data of a plan's interactive chart: power series [kW], SOC [%], tariff bands,
    the peak target and import limit [kW], with localised names."""
    inp, iv = plan["inputs"], plan["intervals"]
    stamps = [dt.datetime.fromisoformat(t) for t in inp["timestamps"]]
    multi = stamps[-1].date() != stamps[0].date()
    labels = [t.strftime("%m-%d %H:%M" if multi else "%H:%M") for t in stamps]
    bands, periods = [], inp["period"]
    start = 0
    for i in range(1, len(periods) + 1):
        if i == len(periods) or periods[i] != periods[start]:
            # the axis has a point per interval start: a band runs to the next band's first
            # point (its intervals end there), the last one to the axis' end
            bands.append({"from": labels[start], "to": labels[min(i, len(labels) - 1)],
                          "period": periods[start],
                          "name": tr.t(f"period.{periods[start]}"),
                          "colour": PERIOD_COLOURS.get(periods[start], "rgba(0,0,0,0.05)")})
            start = i
    st = plan["parameters"]["storage"]
    load = np.asarray(inp["load_kw"], float) + np.asarray(iv["flexible_load_kw"], float)

    def r(x: Any) -> list[float]:
        return [round(float(v), 1) for v in x]

    soc = ([round(100 * v / st["energy_kwh"], 1) for v in iv["soc_kwh"]]
           if st and st["energy_kwh"] else None)
    grid = plan["parameters"]["grid"]
    return {
        "labels": labels, "bands": bands,
        "load_kw": r(load), "pv_used_kw": r(iv["pv_used_kw"]),
        "import_kw": r(_net_import(plan)),
        "battery_kw": r(np.asarray(iv["discharge_kw"], float)
                        - np.asarray(iv["charge_kw"], float)),
        "soc_pct": soc, "price": [round(float(v), 4) for v in inp["import_price_yuan_per_kwh"]],
        "peak_target_kw": round(max(grid["month_peak_kw"], plan["kpis"]["peak_import_kw"]), 1),
        "import_limit_kw": grid["import_limit_kw"],
        "names": {k: tr.t(f"chart.{k}") for k in (
            "load", "pv_used", "import", "battery", "soc", "peak_target", "import_limit",
            "kw", "soc_axis", "price")},
    }


def actual_chart(pva: dict[str, Any], site: Site, tr: Translator) -> dict[str, Any]:
    """The data of the site page's plan-against-actual chart (:func:`vpp.state.
    plan_vs_actual`): planned and metered import, battery and PV power [kW] per 15 minutes
    (battery: discharge positive), SOC [% of the battery's energy], with localised names;
    None where an interval is not known."""
    labels = [dt.datetime.fromisoformat(t).strftime("%H:%M") for t in pva["timestamps"]]
    energy = site.storage.energy_kwh if site.storage else None

    def kw(values: list[float | None]) -> list[float | None]:
        return [None if v is None else round(v, 1) for v in values]

    def pct(values: list[float | None]) -> list[float | None] | None:
        if not energy:
            return None
        return [None if v is None else round(100.0 * v / energy, 1) for v in values]

    plan, act = pva["planned"], pva["actual"]
    sources = [s for s in plan["source"] if s is not None]
    return {
        "labels": labels,
        "planned_import_kw": kw(plan["grid_import_kw"]), "actual_import_kw": kw(
            act["grid_import_kw"]),
        "planned_battery_kw": kw(plan["battery_kw"]), "actual_battery_kw": kw(
            act["battery_kw"]),
        "planned_pv_kw": kw(plan["pv_kw"]), "actual_pv_kw": kw(act["pv_kw"]),
        "planned_soc_pct": pct(plan["soc_kwh"]), "actual_soc_pct": pct(act["soc_kwh"]),
        "sources": {k: sources.count(k) for k in ("setpoints", "plan")},
        "names": {k: tr.t(f"actual.{k}") for k in (
            "planned_import", "actual_import", "planned_battery", "actual_battery",
            "planned_pv", "actual_pv", "planned_soc", "actual_soc")} | {"kw": tr.t("chart.kw"),
                                            "soc_axis": tr.t("chart.soc_axis")},
    }


def setpoints_view(doc: dict[str, Any] | None, rows: int = 8) -> dict[str, Any] | None:
    """The latest control step for the site page: its header and the first ``rows``
    intervals of its horizon (time, battery set-point [kW], planned import [kW], SOC
    [kWh])."""
    if doc is None:
        return None
    n = min(rows, len(doc["timestamps"]))
    return {**{k: doc.get(k) for k in ("decided_at", "start", "defended_peak_kw",
                                        "optimality_gap", "status", "notes", "source")},
            "horizon_h": len(doc["timestamps"]) * doc["interval_minutes"] / 60.0,
            "rows": [{"at": doc["timestamps"][i], "setpoint_kw": doc["setpoint_kw"][i],
                      "grid_import_kw": doc["grid_import_kw"][i],
                      "soc_kwh": doc["soc_kwh"][i]} for i in range(n)]}


def fleet_chart(plans: dict[str, dict[str, Any]], tr: Translator,
                envelope: Any | None) -> dict[str, Any] | None:
    """The VPP page's chart: fleet net import, PV used, storage net discharge [kW] and the
    flexibility envelope (import the fleet can add or shed for the window) [kW]."""
    if not plans:
        return None
    first = next(iter(plans.values()))
    labels = [dt.datetime.fromisoformat(t).strftime("%H:%M")
              for t in first["inputs"]["timestamps"]]
    n = len(labels)
    same = [p for p in plans.values() if len(p["inputs"]["timestamps"]) == n]

    def total(fn: Any) -> list[float]:
        return [round(float(v), 1) for v in sum(fn(p) for p in same)]

    out = {
        "labels": labels,
        "import_kw": total(_net_import),
        "pv_used_kw": total(lambda p: np.asarray(p["intervals"]["pv_used_kw"], float)),
        "battery_kw": total(lambda p: np.asarray(p["intervals"]["discharge_kw"], float)
                            - np.asarray(p["intervals"]["charge_kw"], float)),
        "names": {k: tr.t(f"chart.{k}") for k in (
            "fleet_import", "pv_used", "battery", "env_up", "env_down", "kw")},
    }
    if envelope is not None:
        net = envelope["fleet_net_import_kw"].to_numpy()

        def clean(x: Any) -> list[float | None]:
            return [None if not np.isfinite(v) else round(float(v), 1) for v in x]

        out["env_up_kw"] = clean(net + envelope["fleet_up_kw"].to_numpy())
        out["env_down_kw"] = clean(net - envelope["fleet_down_kw"].to_numpy())
    return out


def fleet_job_of_day(db: Session, who: Principal, day: dt.date) -> dict[str, Any] | None:
    """The newest finished fleet-plan job of ``day`` this key may see: its events and
    settlement."""
    for job in list_jobs(db, who, "fleet-plan", limit=100, status="done"):
        params = json.loads(job.params)
        if params.get("date") == day.isoformat() and job.result:
            return {"id": job.id, "finished_at": job.finished_at, **json.loads(job.result)}
    return None


def finished_simulations(db: Session, who: Principal, limit: int = 20) -> list[Any]:
    """The newest finished simulations this key may see that have a per-site summary."""
    return [job for job in list_jobs(db, who, "simulation", limit=limit, status="done")
            if db.get(JobFile, (job.id, "sites.csv")) is not None]


def simulation_sites(db: Session, who: Principal, job_id: str | None = None,
                     ) -> tuple[Any, list[dict]] | None:
    """A finished simulation this key may see (``job_id``, else the newest) and its
    per-site summary (``sites.csv``); None when there is none (or ``job_id`` is not one)."""
    import csv
    import io

    for job in finished_simulations(db, who):
        if job_id is None or job.id == job_id:
            f = db.get(JobFile, (job.id, "sites.csv"))
            return job, list(csv.DictReader(io.StringIO(f.content.decode("utf-8"))))
    return None


def simulation_label(job: Any, tr: Translator) -> str:
    """A finished simulation as a user picks it: its id, period, sites and control."""
    import json

    params = json.loads(job.params)
    req = params.get("request", params)
    n = len(req.get("sites") or []) or tr.t("eval.all_sites")
    span = (tr.t("eval.span_days", n=req["days"]) if req.get("days")
            else tr.t("eval.span_months", n=req.get("months", 24)))
    return tr.t("eval.choice", id=job.id[:8], start=req.get("start", "?"), span=span, sites=n,
                control=req.get("control", "mpc"), when=tr.datetime(job.finished_at))
