"""Dashboard sessions: an API key exchanged once for a signed, HttpOnly, SameSite cookie.

* **Login** (``POST /ui/login``, a form): the key is checked with :func:`service.auth.
  authenticate` - the same keys, roles and scopes as the API - and never stored, echoed,
  logged or put in a URL. The session cookie carries only the key's database id, a CSRF
  token and the time it was issued, signed (``itsdangerous``) with the service's session
  secret; each request looks the key up again (:func:`service.auth.principal_by_id`), so a
  revoked key ends its sessions at once.
* **CSRF**: every form that changes something carries the session's token in a hidden field
  and is refused (403) without it; the login form, before any session exists, uses the
  same token in a short-lived pre-login cookie (double submit). Cookies are ``SameSite=Lax``
  and ``HttpOnly`` (``Secure`` on HTTPS), scoped to ``/ui``.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from service.auth import Principal, principal_by_id

SESSION_COOKIE = "vpp_session"
LOGIN_COOKIE = "vpp_login_csrf"
LANG_COOKIE = "vpp_lang"
COOKIE_PATH = "/ui"
LOGIN_MAX_AGE_S = 30 * 60


class LoginRequired(Exception):
    """No valid session: the dashboard answers with the login page."""


class CsrfFailed(PermissionError):
    """A form without the session's CSRF token (403)."""


@dataclass(frozen=True)
class Session:
    """A logged-in dashboard user: the key's principal and the session's CSRF token."""

    who: Principal
    csrf: str


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return request.app.state.dashboard.serializer


def make_serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="vpp-dashboard-session")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(request: Request, response: Response, name: str, value: str,
               max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, httponly=True,
                        samesite="lax", secure=_secure(request))


def start_session(request: Request, response: Response, who: Principal) -> None:
    """Set the session cookie of ``who`` (a fresh CSRF token) and drop the login cookie."""
    token = _serializer(request).dumps({"k": who.key_id, "c": secrets.token_urlsafe(24)})
    hours = request.app.state.settings.session_hours
    set_cookie(request, response, SESSION_COOKIE, token, round(hours * 3600))
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)


def current_session(request: Request) -> Session | None:
    """The request's session, or None (no cookie, a bad or expired signature, a revoked
    key)."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    hours = request.app.state.settings.session_hours
    try:
        data: dict[str, Any] = _serializer(request).loads(raw, max_age=round(hours * 3600))
        key_id, csrf = int(data["k"]), str(data["c"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    with request.app.state.sessions() as db:
        who = principal_by_id(db, key_id)
    return None if who is None else Session(who, csrf)


def login_token(request: Request) -> str:
    """The pre-login CSRF token: the cookie's if it has one, else a new one."""
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)


def check_csrf(expected: str | None, given: str | None) -> None:
    if not expected or not given or not hmac.compare_digest(expected, given):
        raise CsrfFailed("the form's security token is missing or stale: reload the page")
