"""Every request and response body of the API, and the dates it accepts.

The request schemas of plans and simulations *are* the option schemas of ``vpp plan`` and
``vpp simulate`` (:mod:`vpp.options`: every field, range and description declared once),
extended with what only a request carries (the site, the day, forecast overrides, the sites
to simulate) and made strict for JSON (no text read as a number, dates only as
``YYYY-MM-DD`` text inside :data:`SUPPORTED_DATES`). The subsidy rate's maximum is policy data:
the options are parsed again against the loaded policy (:func:`vpp.options.with_policy`) before
anything is computed, so a replaced policy file needs no code change.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from vpp.measurements import MAX_BATCH_ROWS
from vpp.network import EventSpec
from vpp.options import (
    DATE_MAX,
    DATE_MIN,
    MAX_DAYS,
    FinanceChoices,
    PlanOptions,
    SimulationOptions,
    SolverChoices,
)
from vpp.sites import SiteId

#: The dates the service plans and simulates: every day of a request (a plan's horizon, a
#: simulation's period, a tariff or subsidy query) lies in [first, last]. Inside it a day
#: without a tariff version in force is a 422 that names the tariff's first day.
SUPPORTED_DATES = (DATE_MIN, DATE_MAX)
SUPPORTED_RANGE_TEXT = f"{SUPPORTED_DATES[0]} to {SUPPORTED_DATES[1]}"


def _iso_date(value: Any) -> Any:
    """Dates only as ``YYYY-MM-DD`` text (no numbers read as epoch days), inside
    :data:`SUPPORTED_DATES`."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        day = value
    elif isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError("a date as YYYY-MM-DD") from None
    else:
        raise ValueError("a date as YYYY-MM-DD")
    if not SUPPORTED_DATES[0] <= day <= SUPPORTED_DATES[1]:
        raise ValueError(f"a date from {SUPPORTED_RANGE_TEXT} (the supported range)")
    return day


def parse_date(value: str) -> dt.date:
    """A ``YYYY-MM-DD`` text inside :data:`SUPPORTED_DATES` (``ValueError`` otherwise)."""
    return _iso_date(value)


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date),
                    Field(description=f"YYYY-MM-DD, from {SUPPORTED_RANGE_TEXT}")]
Kw = Annotated[float, Field(ge=0, le=1e7)]


def _iso_month(value: Any) -> Any:
    """Months only as ``YYYY-MM`` text, inside :data:`SUPPORTED_DATES`; the month's first
    day."""
    from vpp.ledger import parse_month

    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.replace(day=1)
    try:
        month = parse_month(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    if not SUPPORTED_DATES[0] <= month <= SUPPORTED_DATES[1]:
        raise ValueError(f"a month from {SUPPORTED_DATES[0]:%Y-%m} to "
                         f"{SUPPORTED_DATES[1]:%Y-%m} (the supported range)")
    return month


IsoMonth = Annotated[dt.date, BeforeValidator(_iso_month),
                     Field(description=f"YYYY-MM, from {SUPPORTED_DATES[0]:%Y-%m} to "
                                       f"{SUPPORTED_DATES[1]:%Y-%m}")]


def _last_day_supported(first: dt.date, last: dt.date, what: str) -> None:
    if last > SUPPORTED_DATES[1]:
        raise ValueError(f"{what} ends on {last}, after {SUPPORTED_DATES[1]}: every day must "
                         f"lie from {SUPPORTED_RANGE_TEXT}")


#: What a request schema adds to an options schema: strict JSON types, finite numbers.
STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class PlanRequest(PlanOptions):
    """A day-ahead plan request: the options of ``vpp plan`` (:class:`vpp.options.
    PlanOptions`), the site, the day and optional forecast overrides."""

    model_config = STRICT
    site_id: SiteId
    date: IsoDate = Field(description="first day, local time (Asia/Shanghai)")
    pv_kw: list[Kw] | None = Field(
        default=None, max_length=MAX_DAYS * 96,
        description="PV forecast override, one value per 15 minutes [kW]")
    load_kw: list[Kw] | None = Field(
        default=None, max_length=MAX_DAYS * 96,
        description="load override, one value per 15 minutes [kW]")

    def options(self) -> dict[str, Any]:
        """The fields of :class:`vpp.options.PlanOptions`, for :func:`vpp.options.parse`."""
        return self.model_dump(include=set(PlanOptions.model_fields))

    @model_validator(mode="after")
    def _horizon_supported(self) -> PlanRequest:
        _last_day_supported(self.date, self.date + dt.timedelta(days=self.days - 1),
                            "the plan's horizon")
        return self


class FleetPlanRequest(SolverChoices):
    """Plans for every site of the fleet for ``date``, with the feeder limits and, given
    ``events``, demand-response events (the event file's fields, see docs/vpp.md)."""

    model_config = STRICT
    date: IsoDate
    events: list[EventSpec] | None = Field(default=None, max_length=20)
    use_feeders: bool = True

    @model_validator(mode="after")
    def _events_in_supported_dates(self) -> FleetPlanRequest:
        for e in self.events or ():
            for t in (e.start, e.end):
                if not SUPPORTED_DATES[0] <= t.date() <= SUPPORTED_DATES[1]:
                    raise ValueError(f"event {e.id}: {t.isoformat()} outside the supported "
                                     f"dates {SUPPORTED_RANGE_TEXT}")
            if len(e.sites or ()) > 1000:
                raise ValueError(f"event {e.id}: at most 1000 sites")
        return self


class SimulationRequest(SimulationOptions, FinanceChoices):
    """A simulation of months of operation (see docs/simulation.md): the options of
    ``vpp simulate`` (:class:`vpp.options.SimulationOptions`, :class:`vpp.options.
    FinanceChoices`) and the sites; ``sites`` empty or omitted: every site of the fleet."""

    model_config = STRICT
    sites: list[SiteId] | None = Field(default=None, max_length=500)
    start: IsoDate = Field(description="first simulated day, local time (Asia/Shanghai)")

    def options(self) -> dict[str, Any]:
        """The fields of :class:`vpp.options.SimulationOptions`."""
        return self.model_dump(include=set(SimulationOptions.model_fields))

    def finance(self) -> dict[str, Any]:
        """The fields of :class:`vpp.options.FinanceChoices`."""
        return self.model_dump(include=set(FinanceChoices.model_fields))


class MeasurementBatchRequest(BaseModel):
    """A batch of site measurements (see docs/operations.md): every row is checked against
    the site's own limits by :func:`vpp.measurements.validate_batch`, which names each bad
    row, field, value and allowed range; a rejected batch stores nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    interval_minutes: Literal[1, 3, 5, 15] = Field(
        15, description="resolution [min]: power fields average [timestamp, timestamp + "
                        "interval); timestamps lie on this grid")
    rows: list[dict[str, Any]] = Field(
        description="rows of `timestamp` (ISO 8601 with +08:00 or Z) and any of "
                    "grid_import_kw, grid_export_kw, pv_kw, load_kw, battery_kw (discharge "
                    "positive) [kW, interval averages], soc_kwh, import_counter_kwh, "
                    "export_counter_kwh [kWh, readings at the timestamp]; at most "
                    f"{MAX_BATCH_ROWS} rows",
        json_schema_extra={"examples": [[{"timestamp": "2026-07-15T10:00:00+08:00",
                                          "grid_import_kw": 3120.5, "pv_kw": 850.0,
                                          "battery_kw": -400.0, "soc_kwh": 2210.0}]]})


JobState = Literal["queued", "running", "done", "failed", "interrupted", "cancelled"]


class JobStatus(BaseModel):
    """A fleet plan or simulation run outside the request."""

    id: str
    kind: str
    status: JobState
    progress: str
    error: str | None
    result: dict[str, Any] | None
    url: str
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    cancel_requested: bool = False


class PlanSummary(BaseModel):
    id: str
    site_id: str
    date: str
    created_at: dt.datetime
    url: str


class SiteSummary(BaseModel):
    id: str
    name: str
    district: str
    pv_kwp: float
    storage_kw: float | None
    storage_kwh: float | None
    source: Literal["fleet file", "api"]


class Health(BaseModel):
    """Whether the service and each dependency it needs are usable."""

    status: Literal["ok", "unavailable"]
    api_version: str
    database: str = Field(description="'ok' or why the database cannot be used")
    jobs: dict[str, int] = Field(default_factory=dict,
                                 description="jobs by state (when the database answers)")
    operate: dict[str, Any] = Field(default_factory=dict, description=(
        "the scheduled control steps of this server process: enabled, cadence_minutes, "
        "last_round (at, slot, done, taken by another process, failed)"))


class ErrorBody(BaseModel):
    """Every error: a readable ``detail``, and where it applies the failing ``errors``
    (field, message, value, allowed range), ``problems`` or the solver's ``reasons``."""

    detail: str
    errors: list[dict[str, Any]] | None = None
    problems: list[str] | None = None
    reasons: list[str] | None = None
    solver_status: str | None = None
    dependency: str | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "a body that is not JSON"},
    401: {"model": ErrorBody, "description": "missing or invalid API key"},
    403: {"model": ErrorBody, "description": "outside this key's scope"},
    404: {"model": ErrorBody, "description": "no such site, plan or job"},
    413: {"model": ErrorBody, "description": "request body too large"},
    422: {"model": ErrorBody, "description": "invalid input: field, value, allowed range"},
    503: {"model": ErrorBody,
          "description": "the database (named in `dependency`) or the job queue is "
                         "unavailable or full; retry after `Retry-After` seconds"},
}
