"""Checks every request gets before FastAPI validates it against a route's schema.

:class:`CheckedRoute` (the route class of every router) refuses, naming the place:

* a body larger than ``max_body_bytes`` (413);
* on a route that takes a body, one that is not JSON: not ``Content-Type:
  application/json``, not UTF-8, not parsable, nested more than :data:`MAX_DEPTH` deep (400);
* anywhere in a JSON body (keys too): numbers that are not finite (``NaN``, ``Infinity``,
  ``1e400``), strings with a lone surrogate (``"\\ud800"``, not encodable text) or a NUL
  character (422, field by field);
* path and query parameters with a NUL character (422).

So that no such value reaches the application, the database or an error message.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

#: Deepest nesting of arrays and objects a JSON body may have (the site document needs 3).
MAX_DEPTH = 32
_BAD_TEXT = re.compile("[\ud800-\udfff\x00]")


class BodyNotJson(ValueError):
    """A body that is not JSON (400)."""


class BodyTooLarge(ValueError):
    """A body above the configured limit (413)."""


def _text_problem(value: str) -> str | None:
    m = _BAD_TEXT.search(value)
    if m is None:
        return None
    if m.group() == "\x00":
        return "must not contain NUL characters"
    return "must be valid Unicode text (a lone surrogate cannot be encoded)"


def _error(loc: tuple[Any, ...], message: str, kind: str) -> dict[str, Any]:
    return {"type": kind, "loc": loc, "msg": message, "input": None}


def unsafe_values(value: Any, loc: tuple[Any, ...] = ("body",),
                  depth: int = 0) -> Iterator[dict[str, Any]]:
    """Validation errors for every non-finite number and unencodable or NUL-bearing
    string (keys too) in a parsed JSON document, and for nesting deeper than
    :data:`MAX_DEPTH`."""
    if depth > MAX_DEPTH:
        yield _error(loc, f"nested more than {MAX_DEPTH} levels deep", "too_deep")
        return
    if isinstance(value, float) and not math.isfinite(value):
        yield _error(loc, "Input should be a finite number", "finite_number")
    elif isinstance(value, str):
        problem = _text_problem(value)
        if problem:
            yield _error(loc, problem, "string_unicode")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from unsafe_values(item, (*loc, i), depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = _text_problem(key)
            if problem:
                yield _error((*loc, key), f"key {problem}", "string_unicode")
                continue
            yield from unsafe_values(item, (*loc, key), depth + 1)


def parse_json_body(body: bytes, content_type: str | None) -> Any:
    """The parsed body; :class:`BodyNotJson` or :class:`RequestValidationError` if it is
    not acceptable (see the module's description)."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/")
                                            and media.endswith("+json")):
        raise BodyNotJson("the body must be JSON, sent with Content-Type: application/json")
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BodyNotJson("the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise BodyNotJson(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} "
                          f"column {exc.colno}") from None
    except RecursionError:
        raise BodyNotJson(f"the body is nested more than {MAX_DEPTH} levels deep") from None
    errors = list(unsafe_values(data))
    if errors:
        raise RequestValidationError(errors)
    return data


def _check_parameters(request: Request) -> None:
    errors = []
    for where, params in (("path", request.path_params.items()),
                          ("query", request.query_params.multi_items())):
        for name, value in params:
            problem = isinstance(value, str) and _text_problem(value)
            if problem:
                errors.append(_error((where, name), problem, "string_unicode"))
    if errors:
        raise RequestValidationError(errors)


class CheckedRoute(APIRoute):
    """An :class:`APIRoute` whose requests pass the checks of this module first."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None

        async def checked(request: Request) -> Response:
            _check_parameters(request)
            if request.method in ("POST", "PUT", "PATCH"):
                limit = request.app.state.settings.max_body_bytes
                declared = request.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise BodyTooLarge(f"the body has {declared} bytes; at most {limit}")
                chunks, size = [], 0
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise BodyTooLarge(f"the body has more than {limit} bytes")
                    chunks.append(chunk)
                body = b"".join(chunks)
                request._body = body  # Starlette's cache: the handler reads it from here
                if takes_body and body:
                    request._json = parse_json_body(body, request.headers.get("content-type"))
            return await handler(request)

        return checked
