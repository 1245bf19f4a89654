"""The dashboard's pages under ``/ui``: server-rendered templates over the same keys, scoping
and computations as the API (``service.store``, ``service.routes``), no second copy.

Every page needs a session (:mod:`service.dashboard.session`); every form that changes
something carries the session's CSRF token. Bad input in a form is answered with the page
again, each bad field named in the user's language with its allowed range (422), never a 500.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import Field, ValidationError

from models.errors import InfeasiblePlanError, InvalidInputError
from service.auth import authenticate
from service.dashboard import measurements, views
from service.dashboard.forms import (
    FORM_RULE,
    option_fields,
    parse_form,
    problems_text,
    validation_problems,
)
from service.dashboard.session import (
    LANG_COOKIE,
    LOGIN_COOKIE,
    LOGIN_MAX_AGE_S,
    LoginRequired,
    Session,
    check_csrf,
    current_session,
    end_session,
    login_token,
    set_cookie,
    start_session,
)
from service.db import JobFile
from service.deps import CatalogDep, RunnerDep, SessionDep, SettingsDep
from service.routes.fleet import submit_fleet_plan
from service.routes.plans import solve_and_store
from service.routes.simulations import submit_simulation
from service.routing import CheckedRoute
from service.schemas import (
    FleetPlanRequest,
    IsoDate,
    PlanRequest,
    SimulationRequest,
    parse_date,
)
from service.store import (
    Forbidden,
    NotFound,
    list_jobs,
    list_plans,
    may_change_job,
    owned_job,
    readable_job,
    readable_plan,
    readable_site,
    readable_sites,
)
from service.tasks import SIMULATION_FILES
from vpp.i18n import LANGS, Translator, normalise_lang
from vpp.options import MAX_MONTHS, FinanceChoices, PlanOptions, SimulationOptions, with_policy
from vpp.plan_io import plan_csv
from vpp.sites import SITE_ID_PATTERN

HERE = Path(__file__).resolve().parent
LOCALES = HERE / "locales"
router = APIRouter(prefix="/ui", include_in_schema=False, route_class=CheckedRoute)
SitePath = Annotated[str, PathParam(pattern=SITE_ID_PATTERN)]
IdPath = Annotated[str, PathParam(max_length=64)]
FLEX_HOURS = 2.0


class PlanForm(PlanOptions):
    """The site page's plan form: the options of a plan and its first day."""

    date: IsoDate = Field(description="first day, local time (Asia/Shanghai)")


class SimulationForm(SimulationOptions, FinanceChoices):
    """The simulations page's form: a simulation's options and finance choices, with the
    form's own defaults - a year of day-ahead control (finance from a whole year, in about a
    minute per ten sites; the closed loop, the API's default, takes ~50 s per site-month) -
    which an emptied field also means."""

    months: int = Field(12, ge=1, le=MAX_MONTHS, description="Calendar months to simulate")
    control: Literal["mpc", "day-ahead"] = Field("day-ahead", description=(
        SimulationOptions.model_fields["control"].description))


# ------------------------------------------------------------------------------ helpers


def translator(request: Request) -> Translator:
    """The user's language: the language cookie, else Chinese."""
    return Translator(request.cookies.get(LANG_COOKIE), (LOCALES,))


def require_session(request: Request) -> Session:
    s = current_session(request)
    if s is None:
        raise LoginRequired()
    request.state.dashboard_session = s
    return s


UserDep = Annotated[Session, Depends(require_session)]
TrDep = Annotated[Translator, Depends(translator)]


def render(request: Request, template: str, tr: Translator, status: int = 200,
           **context: Any) -> HTMLResponse:
    """``template`` with the page's common context (language, session, CSRF token)."""
    env = request.app.state.dashboard.templates
    session = getattr(request.state, "dashboard_session", None)
    html = env.get_template(template).render(
        tr=tr, langs=LANGS, session=session, who=session.who if session else None,
        csrf=session.csrf if session else "", path=request.url.path,
        query=str(request.url.query), **context)
    # a signed-in page holds a park's data: never stored, so Back after logging out (or
    # another user of the browser) cannot show it from the cache
    headers = {"Cache-Control": "no-store"} if session else None
    return HTMLResponse(html, status_code=status, headers=headers)


def parse_day(value: str | None, tr: Translator) -> tuple[dt.date, str]:
    """The page's day from ``?date=`` (default today in Changzhou), and an error text."""
    if not value:
        return views.today(), ""
    try:
        return parse_date(value), ""  # the API's own date rule
    except ValueError:
        return views.today(), tr.t("form.bad_date", first="2000-01-01", last="2099-12-31")


def local_next(value: str | None) -> str:
    """A redirect target inside the dashboard only (no open redirect)."""
    if value and re.fullmatch(r"/ui(/[A-Za-z0-9_\-./]*)?(\?[A-Za-z0-9_\-=&.%]*)?", value) \
            and "//" not in value and ".." not in value:
        return value
    return "/ui/"


async def form_of(request: Request, session: Session) -> dict[str, Any]:
    """The submitted form after its CSRF check; checkbox lists under ``name[]`` keys."""
    form = await request.form()
    check_csrf(session.csrf, form.get("csrf"))
    out: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    out["sites[]"] = [v for v in form.getlist("sites") if isinstance(v, str)]
    return out


# ---------------------------------------------------------------------------- login


@router.get("/login")
def login_page(request: Request, tr: TrDep, next: str | None = None) -> HTMLResponse:
    token = login_token(request)
    resp = render(request, "login.html", tr, login_csrf=token, next=local_next(next),
                  error="")
    set_cookie(request, resp, LOGIN_COOKIE, token, LOGIN_MAX_AGE_S)
    return resp


@router.post("/login")
async def login(request: Request, tr: TrDep) -> Response:
    """Exchange an API key for a session cookie. The key is read from the form only,
    checked, and forgotten."""
    form = await request.form()
    nxt = local_next(str(form.get("next") or ""))
    expected = request.cookies.get(LOGIN_COOKIE)
    token = login_token(request)
    try:
        check_csrf(expected, str(form.get("csrf") or ""))
    except PermissionError:
        resp = render(request, "login.html", tr, 403, login_csrf=token, next=nxt,
                      error=tr.t("login.stale"))
        set_cookie(request, resp, LOGIN_COOKIE, token, LOGIN_MAX_AGE_S)
        return resp
    key = str(form.get("api_key") or "").strip()

    def check() -> Any:
        with request.app.state.sessions() as db:
            return authenticate(db, key)

    who = await run_in_threadpool(check)
    if who is None:
        resp = render(request, "login.html", tr, 401, login_csrf=token, next=nxt,
                      error=tr.t("login.invalid"))
        set_cookie(request, resp, LOGIN_COOKIE, token, LOGIN_MAX_AGE_S)
        return resp
    resp = RedirectResponse(nxt, status_code=303)
    start_session(request, resp, who)
    return resp


@router.post("/logout")
async def logout(request: Request, session: UserDep) -> Response:
    await form_of(request, session)
    resp = RedirectResponse("/ui/login", status_code=303)
    end_session(resp)
    return resp


@router.get("/lang")
def switch_language(request: Request, to: str, next: str | None = None) -> Response:
    """Set the language cookie and go back to the page."""
    resp = RedirectResponse(local_next(next), status_code=303)
    set_cookie(request, resp, LANG_COOKIE, normalise_lang(to), 365 * 86400)
    return resp


# ---------------------------------------------------------------------------- pages


@router.get("/")
def fleet_overview(request: Request, db: SessionDep, cat: CatalogDep, session: UserDep,
                   tr: TrDep, date: str | None = None) -> HTMLResponse:
    """Every site this key reads, the day's plans, subsidy windows, feeders."""
    day, error = parse_day(date, tr)
    data = views.overview(db, cat, session.who, day, tr, request.app.state.dashboard.cache)
    return render(request, "overview.html", tr, 422 if error else 200, day=day,
                  date_error=error, data=data, policy=cat.policy,
                  stale_after_s=_stale_after_s(request))


def _stale_after_s(request: Request) -> float:
    """Measured data older than this is marked stale (``dashboard_stale_minutes``) [s]."""
    return request.app.state.settings.dashboard_stale_minutes * 60.0


def _site_context(request: Request, db: Any, cat: Any, session: Session, tr: Translator,
                  site_id: str, day: dt.date) -> dict[str, Any]:
    site = readable_site(cat, session.who, site_id)
    recent = list_plans(db, session.who, site_id, None, 10)
    found = list_plans(db, session.who, site_id, day, 1)
    plan = json.loads(found[0].body) if found else None
    measured = measurements.site_panel(db, cat, site, day, request.app.state.dashboard.cache)
    actual = measured["actual"]
    return {"site": site, "name": views.site_name(site, tr), "day": day, "plan": plan,
            "chart": views.plan_chart(plan, tr) if plan else None, "recent": recent,
            "subsidy": views.subsidy_state(cat, site, day), "measured": measured,
            "actual_chart": views.actual_chart(actual, site, tr) if actual else None,
            "setpoints": views.setpoints_view(measured["setpoints"]),
            "stale_after_s": _stale_after_s(request),
            "can_plan": session.who.can_plan(site_id),
            "origin": _plan_origin(db, found[0], plan) if plan else None}


def _plan_origin(db: Any, rec: Any, plan: dict[str, Any]) -> dict[str, Any]:
    """Who made the shown plan and how: when, the role of the key (None for a key since
    deleted), and for a plan solved with other sites (a VPP day) their number and the
    demand-response events it answers."""
    from service.db import ApiKey

    key = db.get(ApiKey, rec.created_by) if rec.created_by is not None else None
    joint = plan.get("coupling") or {}
    return {"at": rec.created_at, "role": key.role if key else None,
            "joint": bool(joint), "with_sites": len(joint.get("solved_with", [])),
            "events": [e["id"] for e in joint.get("events", [])]}


def _plan_fields(cat: Any, tr: Translator, values: dict[str, Any] | None = None,
                 errors: dict[str, str] | None = None) -> list[Any]:
    model = with_policy(PlanForm, cat.policy.max_rate_yuan_per_kwh)
    return option_fields(model, tr, values, errors)


@router.get("/sites/{site_id}")
def site_page(site_id: SitePath, request: Request, db: SessionDep, cat: CatalogDep,
              session: UserDep, tr: TrDep, date: str | None = None) -> HTMLResponse:
    """A site's day: the plan chart, its KPIs, downloads, the plan form."""
    day, error = parse_day(date, tr)
    ctx = _site_context(request, db, cat, session, tr, site_id, day)
    return render(request, "site.html", tr, 422 if error else 200, date_error=error,
                  fields=_plan_fields(cat, tr, {"date": day.isoformat()}), problems=[],
                  **ctx)


@router.post("/sites/{site_id}/plans")
async def request_plan(site_id: SitePath, request: Request, db: SessionDep, cat: CatalogDep,
                       session: UserDep, tr: TrDep) -> Response:
    """Solve and store a plan from the site page's form; back to the site's day."""
    form = await form_of(request, session)
    readable_site(cat, session.who, site_id)
    if not session.who.can_plan(site_id):
        raise Forbidden(f"this key may not plan site {site_id}")
    model = with_policy(PlanForm, cat.policy.max_rate_yuan_per_kwh)
    parsed, errors = parse_form(model, form, tr)
    problems: list[str] = []
    status = 422
    if parsed is not None:
        # only what the user filled in: an empty field means the default, and for the month
        # peak and the SOC the default is the site's stored state (as in the API and the CLI)
        values = parsed.model_dump(exclude_unset=True)
        try:
            req = PlanRequest.model_validate({"site_id": site_id, **values})
            await solve_and_store(req, request, db, cat, session.who)
            return RedirectResponse(f"/ui/sites/{site_id}?date={values['date']}",
                                    status_code=303)
        except ValidationError as exc:
            problems = validation_problems(exc)
        except InvalidInputError as exc:
            problems = problems_text(exc)
        except InfeasiblePlanError as exc:
            problems, status = [tr.t("site.infeasible"), *exc.reasons], 409
    day = parsed.date if parsed is not None else views.today()  # type: ignore[attr-defined]
    ctx = await run_in_threadpool(_site_context, request, db, cat, session, tr, site_id, day)
    return render(request, "site.html", tr, status, date_error="",
                  fields=_plan_fields(cat, tr, form, errors), problems=problems,
                  form_errors=errors, **ctx)


@router.get("/plans/{plan_id}.json")
def plan_json_download(plan_id: IdPath, db: SessionDep, session: UserDep) -> Response:
    rec = readable_plan(db, session.who, plan_id)
    return Response(rec.body, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="plan-{rec.site_id}-{rec.start_date}'
                               f'-{rec.id[:8]}.json"'})


@router.get("/plans/{plan_id}.csv")
def plan_csv_download(plan_id: IdPath, db: SessionDep, session: UserDep) -> Response:
    rec = readable_plan(db, session.who, plan_id)
    return Response(plan_csv(json.loads(rec.body)), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="plan-{rec.site_id}-{rec.start_date}'
                               f'-{rec.id[:8]}.csv"'})


@router.get("/vpp")
def vpp_page(request: Request, db: SessionDep, cat: CatalogDep, session: UserDep, tr: TrDep,
             date: str | None = None) -> HTMLResponse:
    """The fleet as one plant: import, the flexibility envelope, events and settlement."""
    return _vpp(request, db, cat, session, tr, date)


def _vpp(request: Request, db: Any, cat: Any, session: Session, tr: Translator,
         date: str | None, status: int = 200, problems: list[str] | None = None,
         form: dict[str, Any] | None = None) -> HTMLResponse:
    from vpp.flexibility import fleet_envelope

    day, error = parse_day(date, tr)
    from service.store import plans_of_day

    plans = plans_of_day(db, session.who, day)
    same_day = {s: p for s, p in plans.items() if p["options"].get("days", 1) == 1}
    env = fleet_envelope(same_day, FLEX_HOURS, cat.feeder_caps) if same_day else None
    job = views.fleet_job_of_day(db, session.who, day)
    names = {s.id: views.site_name(s, tr) for s in cat.fleet.sites}
    return render(request, "vpp.html", tr, 422 if error else status, day=day,
                  date_error=error, chart=views.fleet_chart(same_day, tr, env),
                  flex_hours=FLEX_HOURS, job=job, names=names, problems=problems or [],
                  form=form or {}, planned=len(plans),
                  sites=len(readable_sites(cat, session.who)),
                  jobs=list_jobs(db, session.who, "fleet-plan", limit=5),
                  can_run=session.who.role in ("evaluator", "admin"))


@router.post("/vpp/fleet-plans")
async def request_fleet_plan(request: Request, db: SessionDep, cat: CatalogDep,
                             runner: RunnerDep, session: UserDep, tr: TrDep) -> Response:
    """Queue the VPP day of every site (feeders, optional demand-response events)."""
    form = await form_of(request, session)
    text = str(form.get("events") or "").strip()
    problems: list[str] = []
    try:
        events = json.loads(text) if text else None
        if isinstance(events, dict):
            # an event file ({"events": [...]}) or one event by itself
            events = events.get("events", [events])
        req = FleetPlanRequest.model_validate_json(json.dumps({
            "date": str(form.get("date") or ""), "use_feeders": "use_feeders" in form,
            "events": events}))
        job = await run_in_threadpool(submit_fleet_plan, req, cat, session.who, runner)
        return RedirectResponse(f"/ui/vpp?date={req.date}&job={job.id}", status_code=303)
    except json.JSONDecodeError as exc:
        problems = [tr.t("vpp.events_not_json", where=f"{exc.lineno}:{exc.colno}")]
    except ValidationError as exc:
        problems = validation_problems(exc, prefix=f"{tr.t('vpp.field')} ")
    except InvalidInputError as exc:
        problems = problems_text(exc)
    return await run_in_threadpool(_vpp, request, db, cat, session, tr,
                                   str(form.get("date") or ""), 422, problems, form)


def _simulation_fields(cat: Any, tr: Translator, values: dict[str, Any] | None = None,
                       errors: dict[str, str] | None = None) -> list[Any]:
    model = with_policy(SimulationForm, cat.policy.max_rate_yuan_per_kwh)
    finance = tuple(FinanceChoices.model_fields)  # after the simulation's own options
    return (option_fields(model, tr, values, errors, exclude=finance, words={"days": "sim_days"})
            + option_fields(FinanceChoices, tr, values, errors))


def _simulations(request: Request, db: Any, cat: Any, session: Session, tr: Translator,
                 status: int = 200, values: dict[str, Any] | None = None,
                 errors: dict[str, str] | None = None,
                 problems: list[str] | None = None) -> HTMLResponse:
    sites = readable_sites(cat, session.who)
    values = values or {"start": "2025-07-01"}  # SimulationForm's defaults for the rest
    return render(request, "simulations.html", tr, status,
                  jobs=list_jobs(db, session.who, "simulation", limit=30),
                  fields=_simulation_fields(cat, tr, values, errors),
                  sites=[(s.id, views.site_name(s, tr)) for s in sites],
                  chosen=set(values.get("sites[]", [])), problems=problems or [],
                  can_run=session.who.role in ("evaluator", "admin"))


@router.get("/simulations")
def simulations_page(request: Request, db: SessionDep, cat: CatalogDep, session: UserDep,
                     tr: TrDep) -> HTMLResponse:
    return _simulations(request, db, cat, session, tr)


@router.post("/simulations")
async def start_simulation(request: Request, db: SessionDep, cat: CatalogDep,
                           runner: RunnerDep, settings: SettingsDep, session: UserDep,
                           tr: TrDep) -> Response:
    """Queue a simulation from the form; its page shows the progress."""
    form = await form_of(request, session)
    if session.who.role not in ("evaluator", "admin"):
        raise Forbidden("simulations are for evaluator or admin keys")
    model = with_policy(SimulationForm, cat.policy.max_rate_yuan_per_kwh)
    parsed, errors = parse_form(model, form, tr)
    problems: list[str] = [errors.pop(FORM_RULE)] if FORM_RULE in errors else []
    if parsed is not None:
        try:
            req = SimulationRequest.model_validate(
                {**parsed.model_dump(exclude_none=True), "sites": form["sites[]"] or None})
            job = await run_in_threadpool(submit_simulation, req, cat, session.who, runner,
                                          settings)
            return RedirectResponse(f"/ui/simulations/{job.id}", status_code=303)
        except ValidationError as exc:
            problems = validation_problems(exc)
        except InvalidInputError as exc:
            problems = problems_text(exc)
    return await run_in_threadpool(_simulations, request, db, cat, session, tr, 422, form,
                                   errors, problems)


def _report_name(tr: Translator) -> str:
    return "report.zh-CN.html" if tr.lang == "zh-CN" else "report.html"


@router.get("/simulations/{job_id}")
def simulation_page(job_id: IdPath, request: Request, runner: RunnerDep, db: SessionDep,
                    session: UserDep, tr: TrDep) -> HTMLResponse:
    """A simulation: live progress while it runs, its report and downloads when done."""
    rec = readable_job(runner.get(job_id), session.who, job_id, "simulation")
    result = json.loads(rec.result) if rec.result else None
    names = [n for n in SIMULATION_FILES if db.get(JobFile, (rec.id, n)) is not None]
    params = json.loads(rec.params)
    return render(request, "simulation.html", tr, job=rec, result=result, files=names,
                  request_params=params.get("request", params),
                  progress=_progress_text(rec.progress, tr),
                  can_cancel=rec.status in ("queued", "running")
                  and may_change_job(rec, session.who),
                  report=_report_name(tr) if _report_name(tr) in names else (
                      "report.html" if "report.html" in names else None))


@router.post("/simulations/{job_id}/cancel")
async def cancel_simulation(job_id: IdPath, request: Request, runner: RunnerDep,
                            session: UserDep) -> Response:
    """Cancel a queued or running simulation (the key that started it, or an admin key),
    as ``POST /v1/jobs/{id}/cancel`` does; back to its page."""
    await form_of(request, session)
    rec = owned_job(runner.get(job_id), session.who, job_id, "simulation")
    if rec.status in ("queued", "running"):
        await run_in_threadpool(runner.cancel, job_id)
    return RedirectResponse(f"/ui/simulations/{job_id}", status_code=303)


def _progress_text(progress: str | None, tr: Translator) -> str:
    """A job's progress as shown: its count, or the translated word before the first."""
    return tr.t("job.starting") if progress == "starting" else (progress or "")


@router.get("/simulations/{job_id}/files/{name}")
def simulation_file(job_id: IdPath, name: IdPath, runner: RunnerDep, db: SessionDep,
                    session: UserDep) -> Response:
    rec = readable_job(runner.get(job_id), session.who, job_id, "simulation")
    f = db.get(JobFile, (rec.id, name)) if name in SIMULATION_FILES else None
    if f is None:
        raise NotFound(f"{name} of simulation {job_id} is not available")
    return Response(f.content, media_type=f.media_type)


@router.get("/jobs/{job_id}/status.json")
def job_state(job_id: IdPath, runner: RunnerDep, session: UserDep, tr: TrDep) -> JSONResponse:
    """A job's state for the page's progress bar (polled)."""
    rec = readable_job(runner.get(job_id), session.who, job_id)
    m = re.match(r"(\d+)/(\d+)", rec.progress or "")
    frac = int(m.group(1)) / int(m.group(2)) if m and int(m.group(2)) else None
    return JSONResponse({"status": rec.status, "status_text": tr.t(f"job.{rec.status}"),
                         "progress": _progress_text(rec.progress, tr), "fraction": frac,
                         "error": rec.error})


@router.get("/evaluator")
def evaluator_page(request: Request, db: SessionDep, cat: CatalogDep, session: UserDep,
                   tr: TrDep, date: str | None = None,
                   sim: Annotated[str | None, Query(max_length=36)] = None) -> HTMLResponse:
    """Indicators met or not per site (the finished simulation ``sim``, default the newest;
    the page lists the others to choose from), and the subsidy ledger of ``date``'s
    calendar year (default today) up to that day's end, per site with measurements."""
    from vpp.sim_report import load_indicators

    indicators = load_indicators(cat)
    latest = views.simulation_sites(db, session.who, sim)
    choices = [(j.id, views.simulation_label(j, tr))
               for j in views.finished_simulations(db, session.who)]
    rows = []
    if latest is not None:
        readable = {s.id for s in readable_sites(cat, session.who)}
        names = {s.id: views.site_name(s, tr) for s in cat.fleet.sites}
        for r in latest[1]:
            if r["site_id"] not in readable:
                continue
            cells = []
            for ind in indicators:
                v = float(r[ind.key])
                cells.append({"value": v, "met": ind.met(v)})
            rows.append({"id": r["site_id"], "name": names.get(r["site_id"], r["site_id"]),
                         "cells": cells, "subsidy_yuan": float(r["subsidy_yuan"])})
    day, error = parse_day(date, tr)
    as_of = measurements.as_of(day)
    sites = readable_sites(cat, session.who)
    ledgers = measurements.ledgers_of(db, cat, sites, as_of, request.app.state.dashboard.cache,
                                      day.year)
    ledger_rows = [{"id": s.id, "name": views.site_name(s, tr), "entry": ledgers[s.id]}
                   for s in sites if s.id in ledgers]
    return render(request, "evaluator.html", tr, 422 if error else 200, indicators=indicators,
                  rows=rows, job=latest[0] if latest else None,
                  met=[sum(r["cells"][i]["met"] for r in rows) for i in range(len(indicators))],
                  day=day, date_error=error, as_of=as_of, ledger_rows=ledger_rows,
                  policy=cat.policy, choices=choices, unknown_sim=sim is not None and not latest,
                  chosen=latest[0].id if latest else None)


# ----------------------------------------------------------------------- server timing


class ServerTiming:
    """ASGI middleware adding ``Server-Timing: app;dur=<ms>`` to every HTTP response: the
    time from the request's arrival to the response's start (the bench reads it)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()

        async def timed(message: dict) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - t0) * 1e3
                message = {**message, "headers": [*message.get("headers", []), (
                    b"server-timing", f"app;dur={ms:.2f}".encode())]}
            await send(message)

        await self.app(scope, receive, timed)
