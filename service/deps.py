"""The dependencies every route declares, in one place, as ``Annotated`` aliases.

* :data:`SessionDep` - a database session for the request (connections go back to the pool
  at the end of each transaction);
* :data:`CurrentKey` - the caller's key (401 without a valid one), checked in a short
  transaction of its own;
* :data:`CatalogDep` - the shipped data with the sites registered through the API;
* :data:`SettingsDep`, :data:`RunnerDep` - the configuration and the job runner.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader
from sqlalchemy.orm import Session

from service.auth import Principal, authenticate
from service.config import Settings
from service.jobs import JobRunner
from service.store import catalog_with_sites
from vpp.catalog import Catalog

key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                          description="API key from `vpp keys create`")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def get_runner(request: Request) -> JobRunner:
    return request.app.state.jobs


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
RunnerDep = Annotated[JobRunner, Depends(get_runner)]


def get_current_key(request: Request,
                    key: Annotated[str | None, Depends(key_header)]) -> Principal:
    with request.app.state.sessions() as db:  # its own transaction: no connection kept
        who = authenticate(db, key)
    if who is None:
        raise HTTPException(401, "missing or invalid API key (header X-API-Key)")
    return who


CurrentKey = Annotated[Principal, Depends(get_current_key)]


def get_catalog(request: Request, db: SessionDep) -> Catalog:
    return catalog_with_sites(db, request.app.state.catalog)


CatalogDep = Annotated[Catalog, Depends(get_catalog)]
