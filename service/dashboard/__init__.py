"""The web dashboard of ``vpp serve``: pages under ``/ui`` for park energy managers and
pilot evaluators, in Chinese by default and in English.

Same process, keys, database and scoping as the API (see docs/dashboard.md). Templates
(Jinja2) in ``templates/``, words in ``locales/``, a little JS and Apache ECharts (vendored,
``static/echarts``) in ``static/``. :func:`install` adds it to the app.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from itsdangerous import URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.errors import InfeasiblePlanError, InvalidInputError
from service.config import Settings
from service.dashboard.session import CsrfFailed, LoginRequired, make_serializer
from service.store import Forbidden, NotFound

if TYPE_CHECKING:
    from service.dashboard.measurements import MeasuredCache

ECHARTS_VERSION = "6.1.0"
HERE = Path(__file__).resolve().parent
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dashboard:
    """What the pages share: the template environment, the cookie signer and the cache of
    measured month-to-dates and states (:mod:`service.dashboard.measurements`)."""

    templates: Environment
    serializer: URLSafeTimedSerializer
    cache: MeasuredCache


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.globals["echarts_version"] = ECHARTS_VERSION
    return env


def install(app: FastAPI, settings: Settings) -> None:
    """Add the dashboard's routes, static files and HTML error pages to ``app``; keep the
    measured state of a site that just received measurements ready for the pages."""
    from functools import partial

    from service.dashboard.measurements import MeasuredCache, warm, warm_overview
    from service.dashboard.routes import ServerTiming, render, router, translator

    secret = (settings.session_secret.get_secret_value() if settings.session_secret
              else secrets.token_urlsafe(32))
    app.state.dashboard = Dashboard(_environment(), make_serializer(secret), MeasuredCache())
    if hasattr(app.state, "measurement_hooks"):
        app.state.measurement_hooks.append(partial(warm, app))
    if hasattr(app.state, "startup_hooks"):
        app.state.startup_hooks.append(partial(warm_overview, app))
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    app.include_router(router)
    app.add_middleware(ServerTiming)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET" or target.endswith(".json"):
            return RedirectResponse("/ui/login", status_code=303)
        from urllib.parse import quote

        return RedirectResponse(f"/ui/login?next={quote(target, safe='/')}", status_code=303)

    # errors on /ui pages are pages in the user's language; elsewhere the API's JSON
    statuses = {NotFound: 404, Forbidden: 403, CsrfFailed: 403, InvalidInputError: 422,
                InfeasiblePlanError: 409, RequestValidationError: 422}
    for cls in (*statuses, StarletteHTTPException, Exception):
        api_handler = app.exception_handlers.get(cls)
        app.add_exception_handler(cls, _html_for_ui(cls, statuses, api_handler, render,
                                                    translator))


def _html_for_ui(cls: type, statuses: dict[type, int], api_handler: Any, render: Any,
                 translator: Any) -> Any:
    async def handle(request: Request, exc: Exception) -> Response:
        if not request.url.path.startswith("/ui"):
            if api_handler is None:
                raise exc
            return await api_handler(request, exc)
        status = (exc.status_code if isinstance(exc, StarletteHTTPException)
                  else statuses.get(cls, 500))
        if status == 500:
            log.exception("unexpected error on a dashboard page", exc_info=exc)
        tr = translator(request)
        detail = ("" if status == 500 else tr.t("error.csrf") if isinstance(exc, CsrfFailed)
                  else str(getattr(exc, "detail", "") or exc))
        return render(request, "error.html", tr, status, code=status, detail=detail)

    return handle
