"""``/v1/health``: the service and the database it needs, no key."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from service.deps import RunnerDep, SessionDep, SettingsDep
from service.errors import describe_db_error
from service.routing import CheckedRoute
from service.schemas import Health

API_VERSION = "1"
router = APIRouter(tags=["service"], route_class=CheckedRoute)


@router.get("/health", response_model=Health,
            responses={503: {"model": Health, "description": "the database is unavailable"}})
def health(request: Request, db: SessionDep, runner: RunnerDep,
           settings: SettingsDep) -> JSONResponse:
    """200 when the database answers (its schema read back), else 503 naming it, with
    ``Retry-After``. No key needed."""
    try:
        db.execute(text("SELECT version_num FROM alembic_version")).all()
        db.rollback()
        counts = runner.counts()
    except (sa_exc.DBAPIError, sa_exc.TimeoutError) as exc:
        body = Health(status="unavailable", api_version=API_VERSION,
                      database=f"unavailable: {describe_db_error(exc)}")
        return JSONResponse(body.model_dump(), status_code=503,
                            headers={"Retry-After": str(settings.retry_after_s)})
    return JSONResponse(Health(status="ok", api_version=API_VERSION, database="ok",
                               jobs=counts,
                               operate=request.app.state.operate.status()).model_dump())
