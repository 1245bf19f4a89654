"""The ``vpp`` command with the service's commands added: ``vpp serve`` and ``vpp keys``
here, ``vpp measurements``, ``vpp state``, ``vpp ledger`` and ``vpp operate``
(:mod:`service.cli_ops`, loaded on first use), and the stored state ``vpp plan`` starts from.

The console script points here so that ``vpp/`` never imports ``service/``. FastAPI,
uvicorn, SQLAlchemy and the app are imported inside the commands that use them: ``vpp
--help`` and every other command start without them.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

import click

from vpp.cli import STATE_READERS, main

#: The database commands (service/cli_ops.py), loaded on first use like vpp's own.
main.lazy.update({
    "measurements": ("service.cli_ops:measurements", "Import site measurements (CSV)."),
    "state": ("service.cli_ops:state", "A site's measured state: SOC, month peak, costs."),
    "ledger": ("service.cli_ops:ledger", "A site's storage-subsidy ledger per month."),
    "operate": ("service.cli_ops:operate", "Control steps from stored measurements (MPC)."),
})
if "service.cli_ops:plan_state" not in STATE_READERS:
    STATE_READERS.append("service.cli_ops:plan_state")

DB_OPTION = click.option(
    "--db", "database_url", default=None, envvar="DATABASE_URL", show_envvar=True,
    help="SQLAlchemy URL (default sqlite:///vpp-service.sqlite3; PostgreSQL: "
         "postgresql+psycopg://...).")


#: The command line's data choices the service's settings take (``vpp --data-dir`` ...).
CATALOG_SETTINGS = ("data_dir", "fleet", "calibrations", "feeders")


def _settings(database_url: str | None, obj: dict[str, Any] | None = None,
              **fields: Any) -> Any:
    """The service's settings from the environment, with the command line's choices."""
    from service.config import Settings

    obj = obj or {}
    given = {"database_url": database_url, **{k: obj.get(k) for k in CATALOG_SETTINGS}}
    return Settings(**{k: v for k, v in given.items() if v}, **fields)


def missing_sqlite_file(url: str) -> str | None:
    """The file of a SQLite ``url`` when it does not exist (None: it exists, is in memory or
    the database is not SQLite)."""
    from sqlalchemy.engine import make_url

    if not url.startswith("sqlite"):
        return None
    db_file = make_url(url).database
    if not db_file or db_file == ":memory:" or os.path.isfile(db_file):
        return None
    return db_file


def _check_port(host: str, port: int) -> None:
    """Stop with a clear message when ``host:port`` cannot be bound (in use, or not an
    address of this machine), before saying the service is up."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise click.ClickException(f"--host {host}: {exc.strerror or exc}") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen on {host}:{port}: {exc.strerror or exc} (another `vpp serve`?"
                " choose another --port)") from None


def _sessions(database_url: str | None, existing: bool = False) -> Any:
    """Sessions on the service's database, migrated to the current schema. ``existing``: a
    command that only reads what was stored refuses a SQLite file that is not there (a
    mistyped ``--db``) instead of creating an empty one."""
    from service.db import make_engine, migrate, session_factory

    url = _settings(database_url).database_url
    missing = missing_sqlite_file(url) if existing else None
    if missing:
        raise click.ClickException(
            f"no database file {missing}: nothing is stored there (import measurements with "
            "`vpp measurements import FILE`, or check --db / DATABASE_URL)")
    engine = make_engine(url)
    migrate(engine)
    return session_factory(engine)


@main.command()
@DB_OPTION
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes: each solves one plan at a time and runs jobs.")
@click.option("--operate/--no-operate", default=True, show_default=True,
              help="Run control steps every 15 minutes for sites with fresh measurements "
                   "(VPP_OPERATE_CADENCE_MINUTES etc.; see docs/operations.md).")
@click.pass_context
def serve(ctx: click.Context, database_url: str | None, host: str, port: int,
          workers: int, operate: bool) -> None:
    """Run the HTTP service (OpenAPI docs at /docs) on a SQLite file by default."""
    import uvicorn

    from service.app import create_app

    settings = _settings(database_url, ctx.find_root().obj, operate_enabled=operate)
    _check_port(host, port)
    click.echo(f"serving on http://{host}:{port} (docs at /docs), database "
               f"{settings.database_url}, {workers} worker process(es)", err=True)
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
        return
    # several processes: migrate here once, then become uvicorn's supervisor (a small
    # main module, see service.serve); each worker builds the app from the environment
    create_app(settings)
    os.environ["VPP_DATABASE_URL"] = settings.database_url
    os.environ["VPP_OPERATE_ENABLED"] = "true" if settings.operate_enabled else "false"
    if settings.session_secret is None:  # one dashboard signing key for every worker
        import secrets

        os.environ["VPP_SESSION_SECRET"] = secrets.token_urlsafe(32)
    for name in CATALOG_SETTINGS:
        value = getattr(settings, name)
        if value:
            os.environ[f"VPP_{name.upper()}"] = str(value)
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "service.serve", host, str(port),
                              str(workers)])


@main.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@DB_OPTION
@click.option("--role", type=click.Choice(("park", "evaluator", "admin")), required=True)
@click.option("--sites", default="", help="Comma-separated site ids (park keys only).")
@click.option("--label", default="", help="Who the key is for.")
@click.pass_context
def keys_create(ctx: click.Context, database_url: str | None, role: str, sites: str,
                label: str) -> None:
    """Print a new key (shown once; only its hash is stored)."""
    from service.auth import create_key
    from service.store import catalog_with_sites
    from vpp.catalog import Catalog

    site_ids = [x.strip() for x in sites.split(",") if x.strip()]
    if site_ids and role != "park":
        raise click.UsageError(f"--sites is for park keys; {role} keys read every site")
    obj = ctx.find_root().obj or {}
    with _sessions(database_url)() as s:
        known = {x.id for x in catalog_with_sites(
            s, Catalog.load(obj.get("data_dir"), obj.get("fleet"))).fleet.sites}
        unknown = sorted(set(site_ids) - known)
        if unknown:
            raise click.UsageError(f"unknown site id(s): {', '.join(unknown)} (see vpp "
                                   "sites, or register them with PUT /v1/sites/{id})")
        try:
            key = create_key(s, role, site_ids, label)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    click.echo(key)


@keys.command("list")
@DB_OPTION
def keys_list(database_url: str | None) -> None:
    """Keys by prefix, role, sites and state (never the secret)."""
    from sqlalchemy import select

    from service.db import ApiKey

    with _sessions(database_url)() as s:
        for k in s.scalars(select(ApiKey).order_by(ApiKey.id)).all():
            state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
            click.echo(f"{k.prefix}  {k.role:<9} {state:<18} {k.site_ids or '-'}  {k.label}")


@keys.command("revoke")
@DB_OPTION
@click.argument("prefix")
def keys_revoke(database_url: str | None, prefix: str) -> None:
    """Revoke the key whose prefix (the part after ``vpp_``) is PREFIX."""
    from service.auth import revoke_key

    with _sessions(database_url)() as s:
        if not revoke_key(s, prefix):
            raise click.ClickException(f"no active key with prefix {prefix}")
    click.echo(f"revoked {prefix}")


def console() -> None:
    """The ``vpp`` console script: :data:`main`, then the objects still alive (the imported
    pandas, scipy, pvlib, ...) frozen out of the cyclic collector, so that the interpreter's
    final collection at exit skips them (about 0.1 s of a 2 s ``vpp plan --all``)."""
    try:
        main()
    finally:
        gc.freeze()


if __name__ == "__main__":
    console()
