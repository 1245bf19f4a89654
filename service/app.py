"""The HTTP service: FastAPI under ``/v1``, plans stored in a database, API-key access.

``create_app(settings)`` builds the app: the database migrated, the data loaded, one router
per resource (:mod:`service.routes`), the dependencies of :mod:`service.deps`, every error
turned into a JSON response by :mod:`service.errors`, jobs run by :class:`service.jobs.
JobRunner`, and the dashboard's pages under ``/ui`` (:mod:`service.dashboard`). ``vpp
serve`` runs it with uvicorn (each ``--workers`` process builds it from the environment,
see :mod:`service.serve`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from service import dashboard, errors
from service.compute import Workers
from service.config import Settings
from service.db import make_engine, migrate, session_factory
from service.jobs import JobRunner
from service.routes import ROUTERS
from service.routes.health import API_VERSION
from service.scheduler import OperateScheduler
from service.schemas import ERROR_RESPONSES
from service.store import catalog_with_sites
from vpp.catalog import Catalog

log = logging.getLogger(__name__)


def create_app(settings: Settings | str | None = None, **overrides: Any) -> FastAPI:
    """The service configured by ``settings`` (default: from the environment; a string is
    taken as the database URL), with ``overrides`` of single fields (``fleet=...``)."""
    if isinstance(settings, str):
        overrides = {"database_url": settings, **overrides}
        settings = None
    settings = Settings(**{**(settings.model_dump() if settings else {}), **overrides})

    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size,
                         max_overflow=settings.db_max_overflow,
                         pool_timeout_s=settings.db_pool_timeout_s,
                         busy_timeout_s=settings.sqlite_busy_timeout_s)
    migrate(engine)
    sessions = session_factory(engine)
    base = Catalog.load(settings.data_dir, settings.fleet, settings.calibrations,
                        settings.feeders)
    runner = JobRunner(sessions, settings, lambda db: catalog_with_sites(db, base))
    runner.reap()  # jobs of server processes that are gone: interrupted, never lost
    workers = Workers()
    operate = OperateScheduler(sessions, settings, lambda db: catalog_with_sites(db, base),
                               workers.solver)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runner.start()
        operate.start()
        for hook in app.state.startup_hooks:  # optimisations (caches): never hold the start
            threading.Thread(target=hook, name="startup-hook", daemon=True).start()
        yield
        operate.stop()
        runner.stop()
        workers.shutdown()

    app = FastAPI(title="Changzhou microgrid & VPP dispatch service", version=API_VERSION,
                  description="Day-ahead dispatch plans for Changzhou's pilot microgrids.",
                  lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.catalog = base
    app.state.jobs = runner
    app.state.workers = workers
    app.state.operate = operate
    app.state.measurement_hooks = []  # f(site_id) after a batch is stored through the API
    app.state.startup_hooks = []  # f() run in a thread of its own when the app starts
    errors.install(app)
    api = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)
    for router in ROUTERS:
        api.include_router(router)
    app.include_router(api)
    dashboard.install(app, settings)  # pages under /ui, after the API's error handlers
    return app
