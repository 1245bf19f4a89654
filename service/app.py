"""The HTTP service: FastAPI under ``/v1``, plans stored in a database, API-key access.

``create_app(database_url)`` builds the app; ``vpp serve`` runs it with uvicorn. Every error is
a JSON body: 401 without a valid key, 403 outside the key's scope, 404, 409 for an infeasible
plan (with the reasons), 422 naming the field, the value and the allowed range.
"""


import dataclasses
import datetime as dt
import json
import logging
import os
import re
import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from models.errors import InfeasiblePlanError, InvalidInputError
from service.auth import Principal, authenticate
from service.db import (
    JobFile,
    PlanRecord,
    SiteRecord,
    make_engine,
    migrate,
    session_factory,
)
from service.jobs import SOLVE_LOCK, JobRunner
from vpp.catalog import Catalog
from vpp.coupled import plan_vpp
from vpp.finance import load_finance_inputs
from vpp.network import EventSpec, to_events
from vpp.options import MAX_DAYS, PlanOptions, SimulationOptions, parse
from vpp.plan_io import plan_csv, plan_json, plot_plan
from vpp.planning import plan_site, usable_cores
from vpp.sim_report import write_report
from vpp.simulation import check_simulation, simulate
from vpp.sites import Site, parse_site
from vpp.subsidy import subsidy_window
from vpp.tariffs import price_series
from vpp.timebase import TZ, horizon

log = logging.getLogger(__name__)
API_VERSION = "1"
DEFAULT_DB = "sqlite:///vpp-service.sqlite3"
#: Where simulation jobs write their results (``$VPP_SIMULATIONS_DIR`` overrides).
DEFAULT_SIMULATIONS_DIR = "vpp-simulations"
#: Files a finished simulation offers for download, and their media types.
SIMULATION_FILES = {"report.md": "text/markdown; charset=utf-8",
                    "report.html": "text/html; charset=utf-8",
                    "months.csv": "text/csv", "sites.csv": "text/csv", "days.csv": "text/csv",
                    "subsidy_by_month.png": "image/png", "renewable_share.png": "image/png",
                    "net_cost.png": "image/png"}


def _iso_date(value: Any) -> Any:
    """Dates only as ``YYYY-MM-DD`` text: no numbers read as epoch days."""
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("a date as YYYY-MM-DD")
    return dt.date.fromisoformat(value)


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                          description="API key from `vpp keys create`")


class PlanRequest(BaseModel):
    """A day-ahead plan request; ranges as in ``vpp plan``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    site_id: str = Field(min_length=1, max_length=64)
    date: IsoDate = Field(description="first day, local time (Asia/Shanghai)")
    days: int = Field(default=1, ge=1, le=MAX_DAYS)
    subsidy_aware: bool = True
    subsidy_rate_yuan_per_kwh: float | None = Field(default=None, ge=0, le=0.3)
    month_peak_kw: float = Field(default=0.0, ge=0, le=1e7)
    soc_initial_frac: float | None = Field(default=None, ge=0, le=1)
    soc_terminal_min_frac: float | None = Field(default=None, ge=0, le=1)
    pv_quantile: Literal["p10", "p50", "p90"] = "p50"
    mip_rel_gap: float = Field(default=1e-3, ge=0, le=0.05)
    pv_kw: list[Annotated[float, Field(ge=0, le=1e7)]] | None = Field(
        default=None, description="PV forecast override, one value per 15 minutes [kW]")
    load_kw: list[Annotated[float, Field(ge=0, le=1e7)]] | None = Field(
        default=None, description="load override, one value per 15 minutes [kW]")


class FleetPlanRequest(BaseModel):
    """Plans for every site of the fleet for ``date``, with the feeder limits and, given
    ``events``, demand-response events (the event file's fields, see docs/vpp.md)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    date: IsoDate
    events: list[EventSpec] | None = Field(default=None, max_length=20)
    use_feeders: bool = True
    mip_rel_gap: float = Field(default=1e-3, ge=0, le=0.05)


class SimulationRequest(BaseModel):
    """A simulation of months of operation (see docs/simulation.md); ranges as in
    ``vpp simulate``. ``sites`` empty or omitted: every site of the fleet."""

    model_config = ConfigDict(extra="forbid", strict=True)
    sites: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=500)
    start: IsoDate = Field(description="first simulated day, local time (Asia/Shanghai)")
    months: int = Field(default=24, ge=1, le=60)
    days: int | None = Field(default=None, ge=1, le=1826,
                             description="simulate this many days instead of months")
    tariff_policy: Literal["in-force", "2025", "2023"] = "in-force"
    subsidy_rate_yuan_per_kwh: float | None = Field(default=None, ge=0, le=0.3)
    subsidy_aware: bool = True
    foresight: Literal["forecast", "perfect"] = "forecast"
    compare_perfect: bool = False
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    mip_rel_gap: float = Field(default=5e-3, ge=0, le=0.05)
    emission_factor_t_per_mwh: float = Field(default=0.5703, ge=0, le=2)
    capex_yuan_per_wh: float | None = Field(default=None, gt=0, le=5)
    life_years: int | None = Field(default=None, ge=1, le=30)
    discount_rate: float | None = Field(default=None, ge=0, le=0.5)


class JobStatus(BaseModel):
    id: str
    kind: str
    status: Literal["queued", "running", "done", "failed", "interrupted"]
    progress: str
    error: str | None
    result: dict[str, Any] | None
    url: str


class PlanSummary(BaseModel):
    id: str
    site_id: str
    date: str
    created_at: dt.datetime
    url: str


class SiteSummary(BaseModel):
    id: str
    name: str
    district: str
    pv_kwp: float
    storage_kw: float | None
    storage_kwh: float | None
    source: Literal["fleet file", "api"]


class ErrorBody(BaseModel):
    """Every error: a readable ``detail``, and where it applies the failing ``errors``
    (field, message, value, allowed range), ``problems`` or the solver's ``reasons``."""

    detail: str
    errors: list[dict[str, Any]] | None = None
    problems: list[str] | None = None
    reasons: list[str] | None = None
    solver_status: str | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "a body that is not JSON"},
    401: {"model": ErrorBody, "description": "missing or invalid API key"},
    403: {"model": ErrorBody, "description": "outside this key's scope"},
    404: {"model": ErrorBody, "description": "no such site or plan"},
    409: {"model": ErrorBody, "description": "no feasible plan; the reasons say why"},
    422: {"model": ErrorBody, "description": "invalid input: field, value, allowed range"},
}


def _error(status: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail, **extra})


def create_app(database_url: str | None = None, data_dir: str | None = None,
               fleet: str | None = None, recover_jobs: bool | None = None,
               simulations_dir: str | None = None,
               max_simulation_site_months: int | None = None) -> FastAPI:
    """The service on ``database_url`` (default ``$DATABASE_URL`` or a SQLite file in the
    working directory), with the data of ``data_dir`` / ``fleet`` (default: ``$VPP_DATA_DIR``,
    ``$VPP_FLEET`` or the shipped data). ``recover_jobs`` (default: unless
    ``$VPP_NO_JOB_RECOVERY`` is set) marks jobs a previous run left unfinished; with several
    worker processes the parent does it once instead. Simulation results go to
    ``simulations_dir`` (default ``$VPP_SIMULATIONS_DIR`` or ``./vpp-simulations``); one
    simulation may cover at most ``max_simulation_site_months`` site-months (default
    ``$VPP_MAX_SIMULATION_SITE_MONTHS`` or 1,800 = 30 sites x 60 months)."""
    url = database_url or os.environ.get("DATABASE_URL") or DEFAULT_DB
    if recover_jobs is None:
        recover_jobs = not os.environ.get("VPP_NO_JOB_RECOVERY")
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    base = Catalog.load(data_dir, fleet or os.environ.get("VPP_FLEET"))
    app = FastAPI(title="Changzhou microgrid & VPP dispatch service", version=API_VERSION,
                  description="Day-ahead dispatch plans for Changzhou's pilot microgrids.")
    app.state.engine = engine
    runner = JobRunner(sessions)
    interrupted = runner.recover() if recover_jobs else 0
    if interrupted:
        log.warning("%d unfinished job(s) from a previous run marked interrupted", interrupted)
    app.state.jobs = runner

    def session() -> Session:
        with sessions() as s:
            yield s

    def principal(key: Annotated[str | None, Depends(key_header)],
                  db: Annotated[Session, Depends(session)]) -> Principal:
        who = authenticate(db, key)
        if who is None:
            raise HTTPException(401, "missing or invalid API key (header X-API-Key)")
        return who

    DB = Annotated[Session, Depends(session)]
    Who = Annotated[Principal, Depends(principal)]

    def catalog(db: Session) -> Catalog:
        """The shipped catalog with the sites registered through the API."""
        records = db.scalars(select(SiteRecord)).all()
        if not records:
            return base
        sites = {s.id: s for s in base.fleet.sites}
        for r in records:
            sites[r.id] = Site.model_validate_json(r.body)
        return dataclasses.replace(base, fleet=base.fleet.model_copy(
            update={"sites": tuple(sites.values())}))

    def readable_site(db: Session, who: Principal, site_id: str) -> Site:
        if not who.can_read(site_id):
            raise HTTPException(403, f"this key may not read site {site_id}")
        try:
            return catalog(db).fleet.site(site_id)
        except InvalidInputError:
            raise HTTPException(404, f"site {site_id} does not exist") from None

    # ----------------------------------------------------------------------- errors
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            field = ".".join(str(p) for p in e.get("loc", ()))
            ctx = e.get("ctx") or {}
            value = e.get("input")
            if not isinstance(value, str | int | float | bool | type(None)):
                value = None  # bodies, bytes, objects: the field and message say enough
            errors.append({"field": field, "message": e.get("msg", ""), "value": value,
                           "allowed": {k: str(v) for k, v in ctx.items()} or None})
        text = "; ".join(f"{x['field']}: {x['message']}" for x in errors)
        return _error(422, f"invalid request: {text}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # name every method the path has, not only one route's
            methods = set()
            for route in router.routes:  # the /v1 routes, with their full paths
                match, _ = route.matches({**request.scope, "method": "GET"})
                if match != Match.NONE and getattr(route, "methods", None):
                    methods |= route.methods
            if methods:
                headers["Allow"] = ", ".join(sorted(methods))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=headers)

    @app.exception_handler(InvalidInputError)
    async def invalid_input(_: Request, exc: InvalidInputError) -> JSONResponse:
        return _error(422, exc.context, problems=exc.problems)

    @app.exception_handler(InfeasiblePlanError)
    async def infeasible(_: Request, exc: InfeasiblePlanError) -> JSONResponse:
        return _error(409, "no feasible plan", solver_status=exc.status, reasons=exc.reasons)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return _error(500, f"internal error ({type(exc).__name__}); the request changed "
                           "nothing")

    # ----------------------------------------------------------------------- routes
    router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)

    @router.get("/health", tags=["service"])
    def health() -> dict[str, str]:
        """Liveness: no key needed."""
        return {"status": "ok", "api_version": API_VERSION}

    @router.get("/sites", tags=["sites"], response_model=list[SiteSummary])
    def list_sites(db: DB, who: Who) -> list[SiteSummary]:
        """The sites this key may read."""
        api_ids = set(db.scalars(select(SiteRecord.id)).all())
        out = []
        for s in catalog(db).fleet.sites:
            if who.can_read(s.id):
                st = s.storage
                out.append(SiteSummary(
                    id=s.id, name=s.name, district=s.district, pv_kwp=s.pv_dc_kwp,
                    storage_kw=st.power_kw if st else None,
                    storage_kwh=st.energy_kwh if st else None,
                    source="api" if s.id in api_ids else "fleet file"))
        return out

    @router.get("/sites/{site_id}", tags=["sites"])
    def read_site(site_id: str, db: DB, who: Who) -> dict[str, Any]:
        """The full site document (the fleet file's schema)."""
        return readable_site(db, who, site_id).model_dump(mode="json")

    @router.put("/sites/{site_id}", tags=["sites"])
    def put_site(site_id: str, body: Site, db: DB, who: Who) -> dict[str, Any]:
        """Register or replace a site (admin keys); validated exactly like the fleet file
        (field ranges here, cross-field rules and known tariffs/archetypes after)."""
        if who.role != "admin":
            raise HTTPException(403, "only admin keys register or update sites")
        if body.id != site_id:
            raise InvalidInputError(f"id={body.id!r} must equal the path's {site_id!r}",
                                    "invalid site")
        site = parse_site(body.model_dump(), tariff_ids=base.tariffs.ids,
                          archetypes=set(base.archetypes))
        rec = db.get(SiteRecord, site_id)
        text = site.model_dump_json()
        if rec is None:
            db.add(SiteRecord(id=site_id, body=text))
        else:
            rec.body = text
            rec.updated_at = dt.datetime.now(dt.UTC)
        db.commit()
        return site.model_dump(mode="json")

    @router.post("/plans", tags=["plans"], status_code=201,
              responses={201: {"description": "the plan document with its id"},
                         409: {"description": "no feasible plan; the reasons say why"}})
    def create_plan(req: PlanRequest, db: DB, who: Who) -> Response:
        """Solve, store and return a day-ahead plan (park keys: own sites only)."""
        if not who.can_plan(req.site_id):
            raise HTTPException(403, f"this key may not plan site {req.site_id}")
        cat = catalog(db)
        try:
            cat.fleet.site(req.site_id)
        except InvalidInputError:
            raise HTTPException(404, f"site {req.site_id} does not exist") from None
        options = PlanOptions(
            days=req.days, subsidy_aware=req.subsidy_aware,
            subsidy_rate_yuan_per_kwh=req.subsidy_rate_yuan_per_kwh,
            month_peak_kw=req.month_peak_kw, soc_initial_frac=req.soc_initial_frac,
            soc_terminal_min_frac=req.soc_terminal_min_frac, pv_quantile=req.pv_quantile,
            mip_rel_gap=req.mip_rel_gap)
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
        with SOLVE_LOCK:
            plan = plan_site(cat, req.site_id, req.date, options, **overrides)
        plan_id = store_plan(db, plan, who.key_id)
        db.commit()
        body = db.get(PlanRecord, plan_id).body
        return Response(body, status_code=201, media_type="application/json",
                        headers={"Location": f"/v1/plans/{plan_id}"})

    def stored(db: Session, who: Principal, plan_id: str) -> PlanRecord:
        rec = db.get(PlanRecord, plan_id)
        if rec is None:
            raise HTTPException(404, f"plan {plan_id} does not exist")
        if not who.can_read(rec.site_id):
            # a park key learns nothing about other parks' plans, not even that they exist
            raise HTTPException(404, f"plan {plan_id} does not exist")
        return rec

    @router.get("/plans", tags=["plans"], response_model=list[PlanSummary])
    def list_plans(db: DB, who: Who, site_id: str | None = None,
                   date: Annotated[IsoDate | None, Query()] = None,
                   limit: int = Query(100, ge=1, le=1000)) -> list[PlanSummary]:
        """Stored plans this key may read, newest first, by site and first day."""
        q = select(PlanRecord).order_by(PlanRecord.created_at.desc()).limit(limit)
        if site_id:
            q = q.where(PlanRecord.site_id == site_id)
        if date:
            q = q.where(PlanRecord.start_date == date.isoformat())
        if who.role == "park":
            q = q.where(PlanRecord.site_id.in_(sorted(who.site_ids)))
        return [PlanSummary(id=r.id, site_id=r.site_id, date=r.start_date,
                            created_at=r.created_at, url=f"/v1/plans/{r.id}")
                for r in db.scalars(q).all()]

    @router.get("/plans/{plan_id}.csv", tags=["plans"],
             responses={200: {"content": {"text/csv": {}}}})
    def plan_as_csv(plan_id: str, db: DB, who: Who) -> Response:
        """The plan's intervals as CSV (one row per 15 minutes)."""
        rec = stored(db, who, plan_id)
        return Response(plan_csv(json.loads(rec.body)), media_type="text/csv")

    @router.get("/plans/{plan_id}.png", tags=["plans"],
             responses={200: {"content": {"image/png": {}}}})
    def plan_as_png(plan_id: str, db: DB, who: Who) -> Response:
        """The plan's chart."""
        rec = stored(db, who, plan_id)
        with tempfile.TemporaryDirectory() as tmp, SOLVE_LOCK:  # pyplot is global state
            path = Path(tmp) / "plan.png"
            plot_plan(json.loads(rec.body), str(path))
            return Response(path.read_bytes(), media_type="image/png")

    @router.get("/plans/{plan_id}", tags=["plans"])
    def read_plan(plan_id: str, db: DB, who: Who) -> Response:
        """The stored plan, byte for byte as it was returned when created."""
        rec = stored(db, who, plan_id)
        return Response(rec.body, media_type="application/json")

    def store_plan(db: Session, plan: dict[str, Any], key_id: int | None) -> str:
        plan_id = str(uuid.uuid4())
        db.add(PlanRecord(id=plan_id, site_id=plan["site_id"], start_date=plan["start"][:10],
                          created_by=key_id, body=plan_json({"id": plan_id, **plan})))
        return plan_id

    @router.post("/fleet-plans", tags=["fleet"], status_code=202, response_model=JobStatus)
    def create_fleet_plan(req: FleetPlanRequest, db: DB, who: Who) -> JobStatus:
        """Plan every site (feeders, events) as a job; poll ``/v1/jobs/{id}``. Evaluator and
        admin keys (a fleet plan covers every park)."""
        if who.role not in ("evaluator", "admin"):
            raise HTTPException(403, "fleet plans cover every park: evaluator or admin keys")
        cat = catalog(db)
        if req.events:  # refuse bad events now, not minutes later in the job
            to_events(req.events, horizon(req.date), cat.fleet)
        options = PlanOptions(mip_rel_gap=req.mip_rel_gap)

        def work(_params: dict[str, Any], progress: Any) -> dict[str, Any]:
            count = [0]

            def on_plan(site_id: str, _p: Any, _e: Any) -> None:
                count[0] += 1
                progress(f"{count[0]}/{len(cat.fleet.sites)} sites planned")

            with SOLVE_LOCK:
                day = plan_vpp(cat, req.date, options,
                               cat.feeder_caps if req.use_feeders else (), req.events, None,
                               1, on_plan=on_plan)
            with sessions() as s:
                ids = {sid: store_plan(s, p, who.key_id) for sid, p in day.plans.items()}
                s.commit()
            return {"plans": {sid: f"/v1/plans/{pid}" for sid, pid in ids.items()},
                    "feeders": day.feeders, "events": day.events,
                    "settlement": None if day.settlement is None else
                    day.settlement.round(6).to_dict(orient="index"),
                    "timings_s": day.timings}

        job_id = runner.submit("fleet-plan", req.model_dump(mode="json"), who.key_id, work)
        return job_view(runner.get(job_id))

    def job_view(rec: Any) -> JobStatus:
        where = "simulations" if rec.kind == "simulation" else "jobs"
        return JobStatus(id=rec.id, kind=rec.kind, status=rec.status, progress=rec.progress,
                         error=rec.error,
                         result=json.loads(rec.result) if rec.result else None,
                         url=f"/v1/{where}/{rec.id}")

    sim_root = Path(simulations_dir or os.environ.get("VPP_SIMULATIONS_DIR")
                    or DEFAULT_SIMULATIONS_DIR)
    sim_cap = int(max_simulation_site_months
                  or os.environ.get("VPP_MAX_SIMULATION_SITE_MONTHS") or 1800)

    @router.post("/simulations", tags=["simulations"], status_code=202,
                 response_model=JobStatus)
    def create_simulation(req: SimulationRequest, db: DB, who: Who) -> JobStatus:
        """Simulate months of operation as a job: progress at ``/v1/simulations/{id}``, and
        when done the report and tables at ``/v1/simulations/{id}/{file}``. Evaluator and
        admin keys."""
        if who.role not in ("evaluator", "admin"):
            raise HTTPException(403, "simulations are for evaluator or admin keys")
        cat = catalog(db)
        ids = req.sites or None
        opts = parse(SimulationOptions, dict(
            start=req.start, months=req.months, days=req.days,
            tariff_policy=req.tariff_policy,
            subsidy_rate_yuan_per_kwh=req.subsidy_rate_yuan_per_kwh,
            subsidy_aware=req.subsidy_aware, foresight=req.foresight,
            compare_perfect=req.compare_perfect, seed=req.seed,
            mip_rel_gap=req.mip_rel_gap,
            emission_factor_t_per_mwh=req.emission_factor_t_per_mwh),
            "invalid simulation request")
        check_simulation(cat, opts, ids)  # a 422 now rather than a failed job later
        n_sites = len(ids) if ids else len(cat.fleet.sites)
        size = n_sites * (req.months if req.days is None else -(-req.days // 30))
        if size > sim_cap:
            raise InvalidInputError(
                f"simulation of {n_sites} sites x {req.months if req.days is None else req.days}"
                f" {'months' if req.days is None else 'days'} = {size} site-months: this "
                f"server runs at most {sim_cap} site-months per simulation",
                "simulation too large")
        fin = load_finance_inputs(capex_yuan_per_wh=req.capex_yuan_per_wh,
                                  life_years=req.life_years, discount_rate=req.discount_rate)

        def work(params: dict[str, Any], progress: Any) -> dict[str, Any]:
            folder = sim_root / params["job_id"]

            def tick(done: int, total: int, elapsed: float) -> None:
                progress(f"{done}/{total} site-months, {elapsed:.0f} s")

            with SOLVE_LOCK:
                res = simulate(cat, opts, ids, out=folder, jobs=usable_cores(),
                               on_progress=tick)
                write_report(res, cat, folder, fin)
            names = [n for n in SIMULATION_FILES if (folder / n).is_file()]
            with sessions() as s:  # kept with the job: any server process can serve them
                for n in names:
                    s.add(JobFile(job_id=params["job_id"], name=n,
                                  media_type=SIMULATION_FILES[n],
                                  content=(folder / n).read_bytes()))
                s.commit()
            url = f"/v1/simulations/{params['job_id']}"
            return {"totals": {k: round(v, 3) for k, v in res.fleet_totals().items()},
                    "failures": res.failures, "wall_seconds": round(res.wall_seconds, 1),
                    "files": {n: f"{url}/{n}" for n in names}}

        job_id = runner.submit("simulation", req.model_dump(mode="json"), who.key_id, work)
        return job_view(runner.get(job_id))

    def simulation_job(job_id: str, who: Principal) -> Any:
        rec = runner.get(job_id)
        if (rec is None or rec.kind != "simulation"
                or (who.role == "park" and rec.created_by != who.key_id)):
            raise HTTPException(404, f"simulation {job_id} does not exist")
        return rec

    @router.get("/simulations/{job_id}", tags=["simulations"], response_model=JobStatus)
    def read_simulation(job_id: str, who: Who) -> JobStatus:
        """A simulation's state, progress and (when done) its totals and file links."""
        return job_view(simulation_job(job_id, who))

    @router.get("/simulations/{job_id}/{name}", tags=["simulations"],
                responses={200: {"content": {t.split(";")[0]: {} for t in
                                             set(SIMULATION_FILES.values())}}})
    def simulation_file(job_id: str, name: str, db: DB, who: Who) -> Response:
        """A finished simulation's report (``report.md``, ``report.html``), tables
        (``months.csv``, ``sites.csv``, ``days.csv``) or charts (``*.png``)."""
        rec = simulation_job(job_id, who)
        if name not in SIMULATION_FILES:
            raise HTTPException(404, f"no file {name!r}; available: "
                                     f"{', '.join(SIMULATION_FILES)}")
        f = db.get(JobFile, (rec.id, name))
        if f is None:
            raise HTTPException(404, f"{name} of simulation {job_id} is not available "
                                     f"(status {rec.status})")
        return Response(f.content, media_type=f.media_type)

    @router.get("/jobs/{job_id}", tags=["fleet"], response_model=JobStatus)
    def read_job(job_id: str, who: Who) -> JobStatus:
        """A job's state, progress and (when done) its result."""
        rec = runner.get(job_id)
        if rec is None or (who.role == "park" and rec.created_by != who.key_id):
            raise HTTPException(404, f"job {job_id} does not exist")
        return job_view(rec)

    @router.get("/tariffs", tags=["tariffs"])
    def tariffs(db: DB, who: Who, date: Annotated[IsoDate, Query()],
                site_id: str | None = None,
                ) -> dict[str, Any]:
        """Tariff in force on ``date`` and its 15-minute import prices [yuan/kWh]."""
        cat = catalog(db)
        tariff_id = (readable_site(db, who, site_id).tariff_id if site_id
                     else sorted(cat.tariffs.ids)[0])
        t = cat.tariffs.select(tariff_id, date)
        idx = horizon(date)
        kva = readable_site(db, who, site_id).grid.transformer_kva if site_id else 1000.0
        prices = price_series(cat.tariffs, tariff_id, idx, kva)
        return {"tariff": t.describe(), "timestamps": [x.isoformat() for x in idx],
                "period": [str(p) for p in prices["period"]],
                "import_price_yuan_per_kwh": [float(v) for v in
                                              prices["import_price_yuan_per_kwh"]]}

    @router.get("/sites/{site_id}/subsidy", tags=["sites"])
    def subsidy(site_id: str, db: DB, who: Who, start: Annotated[IsoDate, Query()],
                end: Annotated[IsoDate, Query()],
                ) -> dict[str, Any]:
        """The site's subsidy window and, from its stored plans in [start, end], the
        discharge [kWh] and subsidy [yuan] they project."""
        if end < start:
            raise InvalidInputError(f"end={end} must not be before start={start}",
                                    "invalid period")
        site = readable_site(db, who, site_id)
        st = site.storage
        w = subsidy_window(base.policy, st.power_kw, st.grid_connection_date) if st else None
        q = select(PlanRecord).where(PlanRecord.site_id == site_id,
                                     PlanRecord.start_date >= start.isoformat(),
                                     PlanRecord.start_date <= end.isoformat())
        latest: dict[str, dict] = {}
        for r in db.scalars(q.order_by(PlanRecord.created_at)).all():
            latest[r.start_date] = json.loads(r.body)
        return {
            "site_id": site_id, "eligible": w is not None,
            "first_paid_day": w[0].isoformat() if w else None,
            "last_paid_day": w[1].isoformat() if w else None,
            "rate_yuan_per_kwh": base.policy.describe().get("rate_yuan_per_kwh"),
            "planned_days": len(latest),
            "planned_discharge_kwh": sum(p["kpis"]["discharge_kwh"] for p in latest.values()),
            "planned_subsidy_yuan": sum(p["kpis"]["subsidy_yuan"] for p in latest.values()),
            "timezone": TZ,
        }

    app.include_router(router)
    return app
