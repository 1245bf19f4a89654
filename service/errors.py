"""Every error the service answers, turned into an HTTP response in this one place.

Always a JSON body with ``detail`` (see :class:`service.schemas.ErrorBody`): 400 a body that
is not JSON, 401/403/404, 409 no feasible plan (the solver's ``reasons``) or a state that
forbids the action, 413 a body too large, 422 invalid input (``errors`` field by field, or
``problems`` across fields), 503 with ``Retry-After`` when the database or the job queue
cannot take the request (``dependency`` names which). Nothing a client sends is echoed
unless it is plain, finite, encodable and short.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from models.errors import InfeasiblePlanError, InvalidInputError
from service.jobs import QueueFull
from service.routing import BodyNotJson, BodyTooLarge
from service.store import Forbidden, NotFound
from vpp.measurements import MeasurementError

log = logging.getLogger(__name__)
MAX_ECHO = 200


class Conflict(RuntimeError):
    """The resource's state forbids the action (409), e.g. cancelling a finished job."""


def safe_text(text: str, limit: int = MAX_ECHO) -> str:
    """``text`` encodable as UTF-8 (lone surrogates escaped), at most ``limit`` chars."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[:limit] + "..."


def safe_value(value: Any) -> Any:
    """A value fit to quote back in JSON: plain scalars only, finite, encodable, short."""
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value if not isinstance(value, int) or abs(value) < 2**63 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return safe_text(value)
    return None  # bodies, bytes, objects: the field and message say enough


def error_response(status: int, detail: str, headers: dict[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": safe_text(detail, 4000),
                                                     **extra}, headers=headers)


def unavailable(request: Request, detail: str, dependency: str) -> JSONResponse:
    retry = str(request.app.state.settings.retry_after_s)
    return error_response(503, detail, {"Retry-After": retry}, dependency=dependency)


def describe_db_error(exc: BaseException) -> str:
    """The database's own first line, without the SQL statement or parameters."""
    orig = getattr(exc, "orig", None) or exc
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return safe_text(first)


#: A problem that names its field: ``name=value: message`` (the core's own form).
_FIELD_PROBLEM = re.compile(r"^(?P<field>[A-Za-z_][\w.\[\]]*)=(?P<value>[^:]{0,200}): "
                            r"(?P<message>.+)$", re.S)
_ALLOWED = re.compile(r"allowed(?: range)? (?P<allowed>[\[(][^\])]*[\])])")


def field_error(problem: str) -> dict[str, Any] | None:
    """The ``errors`` entry (field, message, allowed) of a problem that names its field, as
    the request validation's are; None for a problem across fields."""
    m = _FIELD_PROBLEM.match(problem)
    if m is None:
        return None
    allowed = _ALLOWED.search(m["message"])
    return {"field": m["field"].replace("[", ".").replace("]", ""),
            "message": m["message"], "value": None,
            "allowed": {"range": allowed["allowed"]} if allowed else None}


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            if e.get("type") == "json_invalid":  # FastAPI's own parse, should ours not run
                return error_response(400, "the body is not valid JSON")
            field = ".".join(safe_text(str(p), 100) for p in e.get("loc", ()))
            ctx = e.get("ctx") or {}
            errors.append({"field": field, "message": safe_text(str(e.get("msg", ""))),
                           "value": safe_value(e.get("input")),
                           "allowed": {k: safe_text(str(v)) for k, v in ctx.items()} or None})
        text = "; ".join(f"{x['field']}: {x['message']}" for x in errors)
        return error_response(422, f"invalid request: {text}", errors=errors)

    @app.exception_handler(BodyNotJson)
    async def not_json(_: Request, exc: BodyNotJson) -> JSONResponse:
        return error_response(400, str(exc))

    @app.exception_handler(BodyTooLarge)
    async def too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
        return error_response(413, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method the path has, not only one route's
            methods = {m.upper() for template, ops in app.openapi()["paths"].items()
                       if compile_path(template)[0].match(request.url.path) for m in ops}
            if methods:
                headers["Allow"] = ", ".join(sorted(methods))
        return error_response(exc.status_code, str(exc.detail), headers)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return error_response(404, str(exc))

    @app.exception_handler(Forbidden)
    async def forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        return error_response(403, str(exc))

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSONResponse:
        return error_response(409, str(exc))

    @app.exception_handler(MeasurementError)
    async def bad_measurements(_: Request, exc: MeasurementError) -> JSONResponse:
        rows = [{k: safe_value(v) if k in ("value", "timestamp") else v
                 for k, v in e.items()} for e in exc.errors[:1000]]
        return error_response(422, f"{exc.context}: {len(exc.errors)} problem(s), nothing "
                                   "stored", errors=rows,
                              problems=[safe_text(p, 1000) for p in exc.problems[:1000]])

    @app.exception_handler(InvalidInputError)
    async def invalid_input(_: Request, exc: InvalidInputError) -> JSONResponse:
        problems = [safe_text(p, 1000) for p in exc.problems]
        errors = [e for e in map(field_error, problems) if e is not None]
        return error_response(422, exc.context, problems=problems,
                              **({"errors": errors} if errors else {}))

    @app.exception_handler(InfeasiblePlanError)
    async def infeasible(_: Request, exc: InfeasiblePlanError) -> JSONResponse:
        return error_response(409, "no feasible plan", solver_status=exc.status,
                              reasons=[safe_text(r, 1000) for r in exc.reasons])

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, exc: QueueFull) -> JSONResponse:
        return unavailable(request, f"job queue full: {exc}", "job queue")

    @app.exception_handler(sa_exc.DataError)
    async def unstorable(_: Request, exc: sa_exc.DataError) -> JSONResponse:
        log.warning("value refused by the database: %s", describe_db_error(exc))
        return error_response(422, "a value the database cannot store: "
                                   + describe_db_error(exc))

    @app.exception_handler(sa_exc.IntegrityError)
    async def integrity(_: Request, exc: sa_exc.IntegrityError) -> JSONResponse:
        return error_response(409, "conflicting change, retry: " + describe_db_error(exc))

    @app.exception_handler(sa_exc.TimeoutError)
    async def pool_timeout(request: Request, exc: sa_exc.TimeoutError) -> JSONResponse:
        log.warning("no database connection free: %s", exc)
        return unavailable(request, "database busy: no connection free", "database")

    @app.exception_handler(sa_exc.DBAPIError)
    async def database_down(request: Request, exc: sa_exc.DBAPIError) -> JSONResponse:
        # OperationalError (server down, file locked), InterfaceError, DatabaseError
        # (a damaged file): the database, not the request, is at fault
        log.warning("database unavailable: %s", describe_db_error(exc))
        return unavailable(request, "database unavailable: " + describe_db_error(exc),
                           "database")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, f"internal error ({type(exc).__name__}); the request "
                                   "changed nothing")
