"""The service's configuration: one :class:`Settings` object, read from the environment.

Every variable is ``VPP_<FIELD>`` (``VPP_SIMULATIONS_DIR``, ``VPP_MAX_QUEUED_JOBS``, ...);
the database URL is also read from ``DATABASE_URL``. ``vpp serve`` options override the
environment; ``create_app(settings)`` takes the object directly (tests, embedding).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DB = "sqlite:///vpp-service.sqlite3"


class Settings(BaseSettings):
    """Everything an operator may configure, with its unit and default."""

    model_config = SettingsConfigDict(env_prefix="VPP_", extra="ignore", frozen=True,
                                      populate_by_name=True)

    database_url: str = Field(
        DEFAULT_DB, validation_alias=AliasChoices("VPP_DATABASE_URL", "DATABASE_URL"),
        description="SQLAlchemy URL: a SQLite file or postgresql+psycopg://...")
    data_dir: str | None = Field(None, description="data folder laid out like vpp/data")
    fleet: str | None = Field(None, description="fleet file instead of the shipped one")
    calibrations: str | None = Field(
        None, description="folder of PV calibrations (<site>.toml from `vpp pv calibrate "
                          "--save`); default <data dir>/calibrations if it exists")
    feeders: str | None = Field(None, description="feeder file instead of the shipped one")
    simulations_dir: Path = Field(
        Path("vpp-simulations"),
        description="where simulation jobs work; an interrupted run's months stay here")
    max_simulation_site_months: int = Field(1800, ge=1, description="per simulation")
    job_slots: int = Field(
        1, ge=0, le=64, description="jobs this server process runs at once (0: none, an "
                                    "API-only process)")
    max_queued_jobs: int = Field(
        20, ge=1, description="jobs waiting across the service; more is a 503")
    job_lease_s: float = Field(
        30.0, gt=0, description="a running job whose owner has not renewed its lease for "
                                "this long is marked interrupted [s]")
    job_heartbeat_s: float = Field(5.0, gt=0, description="lease renewal period [s]")
    job_nice: int = Field(
        19, ge=0, le=19, description="CPU niceness of job processes: plans come first")
    retry_after_s: int = Field(5, ge=1, description="Retry-After of every 503 [s]")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="request body limit [bytes]")
    db_pool_size: int = Field(5, ge=1, description="pooled connections kept per process")
    db_max_overflow: int = Field(35, ge=0, description="extra connections under load")
    db_pool_timeout_s: float = Field(
        10.0, gt=0, description="wait for a pooled connection before a 503 [s]")
    sqlite_busy_timeout_s: float = Field(
        5.0, ge=0, description="wait for SQLite's write lock before a 503 [s]")
    operate_enabled: bool = Field(
        False, description="run a control step for every site with fresh measurements on "
                           "a schedule (vpp serve turns it on unless --no-operate)")
    operate_cadence_minutes: int = Field(
        15, ge=15, le=60, multiple_of=15, description="time between control steps [min]")
    operate_delay_s: float = Field(
        30.0, ge=0, lt=900, description="steps start this long after each cadence boundary, "
                                        "so that the interval just ended can arrive [s]")
    operate_max_age_minutes: float = Field(
        60.0, gt=0, le=1440, description="a site is operated only with a measurement this "
                                         "recent [min]")
    dashboard_stale_minutes: float = Field(
        30.0, gt=0, le=1440, description="the dashboard marks measured data older than this "
                                         "stale (two 15-minute intervals) [min]")
    operate_lease_s: float = Field(
        300.0, gt=0, description="a step's lease: another process may take the site after "
                                 "it expires [s]")
    operate_horizon_hours: float = Field(24.0, ge=24, le=48,
                                         description="horizon of every re-plan [h]")
    session_secret: SecretStr | None = Field(
        None, description="key signing the dashboard's session cookies; unset: a random one "
                          "per start of `vpp serve` (sessions then end with a restart)")
    session_hours: float = Field(
        12.0, gt=0, le=24 * 30, description="a dashboard session's lifetime [h]")
