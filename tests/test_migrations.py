"""The schema migrations on SQLite and PostgreSQL: one linear chain, the newest revision
builds exactly the tables the models describe, and 0006 (measurement versions) carries the
sites measured before it over, counts each later write, and goes back down cleanly."""

from __future__ import annotations

import datetime as dt

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from service.db import MIGRATIONS, Base, make_engine, session_factory
from service.operations import ingest
from vpp.catalog import Catalog


def config(conn) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def to(engine, revision: str, down: bool = False) -> None:
    with engine.begin() as conn:
        (command.downgrade if down else command.upgrade)(config(conn), revision)


def test_the_revisions_form_one_chain_ending_in_0006():
    script = ScriptDirectory.from_config(config(None))
    assert script.get_heads() == ["0006"]
    chain = [r.revision for r in script.walk_revisions("base", "heads")]
    assert chain == ["0006", "0005", "0004", "0003", "0002", "0001"]
    assert script.get_revision("0006").down_revision == "0005"


def test_0006_on_existing_measurements_then_each_write_counts(database_url):
    """Two sites measured under 0005 (CZ-MG-01 in two batches, CZ-MG-02 once): after 0006
    each starts at version 1 with ``changed_at`` its newest ``received_at``; a batch stored
    afterwards raises CZ-MG-01 to 2; the head schema is what the models say; going down
    to 0005 removes the table and keeps the measurements."""
    engine = make_engine(database_url)
    to(engine, "0005")
    received = [dt.datetime(2026, 7, 15, 2, m, tzinfo=dt.UTC) for m in (0, 5, 7)]
    with engine.begin() as conn:
        for site, ts, at in (("CZ-MG-01", "2026-07-15 02:00:00", received[0]),
                             ("CZ-MG-01", "2026-07-15 02:15:00", received[1]),
                             ("CZ-MG-02", "2026-07-15 02:00:00", received[2])):
            conn.execute(text(
                "INSERT INTO measurements (site_id, ts, interval_minutes, grid_import_kw, "
                "received_at) VALUES (:s, :ts, 15, 1000.0, :at)"),
                {"s": site, "ts": dt.datetime.fromisoformat(ts).replace(tzinfo=dt.UTC)
                 if engine.dialect.name == "postgresql" else ts,
                 "at": at if engine.dialect.name == "postgresql"
                 else at.replace(tzinfo=None).isoformat(sep=" ")})
    to(engine, "head")

    def versions() -> dict[str, tuple[int, dt.datetime]]:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT site_id, version, changed_at FROM "
                                     "measurement_versions ORDER BY site_id")).all()
        out = {}
        for sid, version, at in rows:
            at = dt.datetime.fromisoformat(at) if isinstance(at, str) else at
            out[sid] = (version, at if at.tzinfo else at.replace(tzinfo=dt.UTC))
        return out

    assert versions() == {"CZ-MG-01": (1, received[1]), "CZ-MG-02": (1, received[2])}
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    catalog = Catalog.load()
    with session_factory(engine)() as db:
        ingest(db, catalog.fleet.site("CZ-MG-01"),
               [{"timestamp": "2026-07-15T10:30:00+08:00", "grid_import_kw": 1200.0}], 15,
               dt.datetime(2026, 7, 15, 3, 0, tzinfo=dt.UTC))
    assert versions()["CZ-MG-01"][0] == 2 and versions()["CZ-MG-02"][0] == 1
    to(engine, "0005", down=True)
    tables = inspect(engine).get_table_names()
    assert "measurement_versions" not in tables and "measurements" in tables
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM measurements")).scalar() == 4
    engine.dispose()


def test_the_app_migrates_a_fresh_sqlite_file_at_start(tmp_path):
    from service.app import create_app

    path = tmp_path / "fresh.sqlite3"
    app = create_app(f"sqlite:///{path}", job_slots=0)
    with app.state.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0006"
    assert "measurement_versions" in inspect(app.state.engine).get_table_names()
    app.state.engine.dispose()
