"""API keys and roles.

A key reads ``vpp_<prefix>_<secret>``; the database keeps the prefix (to find the key) and
the SHA-256 of the secret (to check it, in constant time). Roles:

* ``park``: plan and read only its own sites (``site_ids``);
* ``evaluator``: read everything, run simulations;
* ``admin``: everything, including sites and keys.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db import ApiKey

Role = Literal["park", "evaluator", "admin"]
ROLES: tuple[str, ...] = ("park", "evaluator", "admin")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, role and (park keys) the sites it may touch."""

    key_id: int
    role: str
    site_ids: frozenset[str]

    def can_read(self, site_id: str) -> bool:
        return self.role in ("evaluator", "admin") or site_id in self.site_ids

    def can_plan(self, site_id: str) -> bool:
        return self.role == "admin" or (self.role == "park" and site_id in self.site_ids)

    def can_write(self, site_id: str) -> bool:
        """Send the site's measurements: its park key or an admin (as for plans)."""
        return self.can_plan(site_id)


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(session: Session, role: str, site_ids: list[str] | None = None,
               label: str = "") -> str:
    """Store a new key and return it in full (the only time it is ever shown)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    sites = sorted(set(site_ids or []))
    if role == "park" and not sites:
        raise ValueError("a park key needs the site ids it may plan and read")
    if role != "park" and sites:
        raise ValueError(f"site ids are for park keys; {role} keys read every site")
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(24)
    session.add(ApiKey(prefix=prefix, secret_sha256=_sha(secret), role=role,
                       site_ids=",".join(sites), label=label))
    session.commit()
    return f"vpp_{prefix}_{secret}"


def revoke_key(session: Session, prefix: str) -> bool:
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or key.revoked_at is not None:
        return False
    key.revoked_at = dt.datetime.now(dt.UTC)
    session.commit()
    return True


def _principal(key: ApiKey | None) -> Principal | None:
    if key is None or key.revoked_at is not None:
        return None
    return Principal(key.id, key.role, frozenset(s for s in key.site_ids.split(",") if s))


def principal_by_id(session: Session, key_id: int) -> Principal | None:
    """The principal of the key with this id, or None when it is gone or revoked (the
    dashboard's session cookie names the key by id, so revoking the key ends the session)."""
    return _principal(session.get(ApiKey, key_id))


def authenticate(session: Session, token: str | None) -> Principal | None:
    """The principal of a presented key, or None (unknown, malformed or revoked)."""
    if not token or not token.startswith("vpp_"):
        return None
    try:
        _, prefix, secret = token.split("_", 2)
    except ValueError:
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.secret_sha256, _sha(secret)):
        return None
    return _principal(key)
