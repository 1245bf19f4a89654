"""Storage of the service: SQLAlchemy models, the engine, and schema migrations (Alembic).

SQLite by default (one file, WAL journal so readers never block the writer), PostgreSQL when
``DATABASE_URL`` says ``postgresql+psycopg://...``. The schema is created and upgraded by the
migrations in ``service/migrations`` (never by ``create_all``), at start-up.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
    make_url,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")


log = logging.getLogger(__name__)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UtcDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on every database: PostgreSQL keeps the zone, SQLite
    stores the UTC wall time and this type gives the zone back when reading."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> Any:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> Any:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    pass


class ApiKey(Base):
    """An API key: only the SHA-256 of its secret is stored."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True, index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    site_ids: Mapped[str] = mapped_column(Text, default="")  # comma-separated, park keys
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime,
                                                           nullable=True)


class SiteRecord(Base):
    """A site registered or updated through the API (validated like the fleet file)."""

    __tablename__ = "sites"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[str] = mapped_column(Text)  # the site document as JSON
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class PlanRecord(Base):
    """A plan exactly as returned: ``body`` is the JSON text, served back byte for byte."""

    __tablename__ = "plans"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(64), index=True)
    start_date: Mapped[str] = mapped_column(String(10), index=True)  # local YYYY-MM-DD
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    body: Mapped[str] = mapped_column(Text)


def _private_sqlite_file(url: str) -> None:
    """Create the SQLite file readable and writable by its owner only (0600; SQLite gives
    its -wal and -shm files the same mode); an existing file is left as it is, with a
    warning when others may read it."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.exists():
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("database file %s is readable by other users (mode %o); "
                        "chmod 600 it", path, stat.S_IMODE(path.stat().st_mode))
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int = 35,
                pool_timeout_s: float = 10.0, busy_timeout_s: float = 5.0) -> Engine:
    """An engine for ``url``. SQLite files get WAL, a busy timeout and mode 0600; every
    connection is checked before use, so the engine recovers by itself when the database
    comes back after an outage. ``pool_timeout_s`` bounds the wait for a connection."""
    pool = {"pool_size": pool_size, "max_overflow": max_overflow,
            "pool_timeout": pool_timeout_s, "pool_pre_ping": True}
    if url.startswith("sqlite"):
        database = make_url(url).database
        if not database or database == ":memory:":
            pool = {}  # one in-memory database per connection: SQLAlchemy's own pool
        _private_sqlite_file(url)
        engine = create_engine(url, connect_args={"check_same_thread": False,
                                                  "timeout": busy_timeout_s}, **pool)
        busy_ms = round(busy_timeout_s * 1000)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={busy_ms}")
            cur.close()

        return engine
    return create_engine(url, **pool)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


class JobRecord(Base):
    """A long task (fleet plan, simulation) run outside the request: its state survives
    restarts, and a restart marks unfinished jobs ``interrupted`` instead of losing them."""

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)  # queued running done ...
    progress: Mapped[str] = mapped_column(String(200), default="")
    params: Mapped[str] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime,
                                                            nullable=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    #: The server process running the job (``host:pid:start``) and when it last renewed
    #: its lease; a lease older than the service's ``job_lease_s`` means the owner died.
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)


class JobFile(Base):
    """A file a job produced (a simulation's report, tables, charts), stored with it so any
    server process can serve it."""

    __tablename__ = "job_files"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class MeasurementRecord(Base):
    """One measurement row of a site (:mod:`vpp.measurements`): averages over
    ``[ts, ts + interval_minutes)`` [kW], readings at ``ts`` [kWh]; NULL: not measured. The
    primary key (site, time) is the index of range reads; ``ts`` alone finds fresh sites."""

    __tablename__ = "measurements"
    site_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ts: Mapped[dt.datetime] = mapped_column(UtcDateTime, primary_key=True)
    interval_minutes: Mapped[int] = mapped_column(Integer)
    grid_import_kw: Mapped[float | None] = mapped_column(Float, nullable=True)
    grid_export_kw: Mapped[float | None] = mapped_column(Float, nullable=True)
    pv_kw: Mapped[float | None] = mapped_column(Float, nullable=True)
    load_kw: Mapped[float | None] = mapped_column(Float, nullable=True)
    battery_kw: Mapped[float | None] = mapped_column(Float, nullable=True)
    soc_kwh: Mapped[float | None] = mapped_column(Float, nullable=True)
    import_counter_kwh: Mapped[float | None] = mapped_column(Float, nullable=True)
    export_counter_kwh: Mapped[float | None] = mapped_column(Float, nullable=True)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (Index("ix_measurements_ts", "ts"),)


class MeasurementVersion(Base):
    """A site's measurement version: raised by one in every transaction that writes any of
    its measurements (:func:`service.operations.upsert`), so that one indexed read tells a
    reader whether the site's data changed since it last looked."""

    __tablename__ = "measurement_versions"
    site_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    changed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class SetpointRecord(Base):
    """A control step's set-points (:class:`vpp.operate.Setpoints` as JSON in ``body``)."""

    __tablename__ = "setpoints"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(64))
    start: Mapped[dt.datetime] = mapped_column(UtcDateTime)  # first interval
    decided_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(32))  # cli, scheduler
    body: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_setpoints_site_start", "site_id", "start"),)


class OperateLease(Base):
    """Who runs a site's control step (``owner`` until ``lease_until``) and the last
    decision interval done: across server processes a step runs once per site and slot."""

    __tablename__ = "operate_leases"
    site_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    done_slot: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
