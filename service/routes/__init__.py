"""One router per resource; :data:`ROUTERS` is what the app includes under ``/v1``."""

from __future__ import annotations

from service.routes import (
    fleet,
    health,
    jobs,
    operations,
    plans,
    simulations,
    sites,
    tariffs,
)

ROUTERS = (health.router, sites.router, plans.router, fleet.router, jobs.router,
           simulations.router, tariffs.router, operations.router)
