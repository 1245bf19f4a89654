"""The ``vpp`` command with the service's commands added: ``vpp serve`` and ``vpp keys``.

The console script points here so that ``vpp/`` never imports ``service/``.
"""

from __future__ import annotations

import os

import click
from sqlalchemy import select

from service.app import DEFAULT_DB, create_app
from service.auth import ROLES, create_key, revoke_key
from service.db import ApiKey, make_engine, migrate, session_factory
from vpp.cli import main

DB_OPTION = click.option(
    "--db", "database_url", default=None, envvar="DATABASE_URL", show_envvar=True,
    help=f"SQLAlchemy URL (default {DEFAULT_DB}; PostgreSQL: postgresql+psycopg://...).")


def _sessions(database_url: str | None):
    engine = make_engine(database_url or DEFAULT_DB)
    migrate(engine)
    return session_factory(engine)


@main.command()
@DB_OPTION
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@click.pass_context
def serve(ctx: click.Context, database_url: str | None, host: str, port: int,
          workers: int) -> None:
    """Run the HTTP service (OpenAPI docs at /docs) on a SQLite file by default."""
    import uvicorn

    obj = ctx.find_root().obj
    url = database_url or os.environ.get("DATABASE_URL") or DEFAULT_DB
    click.echo(f"serving on http://{host}:{port} (docs at /docs), database {url}, "
               f"{workers} worker process(es)", err=True)
    if workers == 1:
        app = create_app(url, obj.get("data_dir"), obj.get("fleet"))
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    # several processes: migrate and recover jobs once here, then let each worker build
    # the app from the environment
    create_app(url, obj.get("data_dir"), obj.get("fleet"), recover_jobs=True)
    os.environ["DATABASE_URL"] = url
    os.environ["VPP_NO_JOB_RECOVERY"] = "1"
    if obj.get("data_dir"):
        os.environ["VPP_DATA_DIR"] = obj["data_dir"]
    if obj.get("fleet"):
        os.environ["VPP_FLEET"] = obj["fleet"]
    uvicorn.run("service.app:create_app", factory=True, host=host, port=port,
                workers=workers, log_level="warning")


@main.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@DB_OPTION
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--sites", default="", help="Comma-separated site ids (park keys).")
@click.option("--label", default="", help="Who the key is for.")
def keys_create(database_url: str | None, role: str, sites: str, label: str) -> None:
    """Print a new key (shown once; only its hash is stored)."""
    with _sessions(database_url)() as s:
        key = create_key(s, role, [x.strip() for x in sites.split(",") if x.strip()], label)
    click.echo(key)


@keys.command("list")
@DB_OPTION
def keys_list(database_url: str | None) -> None:
    """Keys by prefix, role, sites and state (never the secret)."""
    with _sessions(database_url)() as s:
        for k in s.scalars(select(ApiKey).order_by(ApiKey.id)).all():
            state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
            click.echo(f"{k.prefix}  {k.role:<9} {state:<18} {k.site_ids or '-'}  {k.label}")


@keys.command("revoke")
@DB_OPTION
@click.argument("prefix")
def keys_revoke(database_url: str | None, prefix: str) -> None:
    """Revoke the key whose prefix (the part after ``vpp_``) is PREFIX."""
    with _sessions(database_url)() as s:
        if not revoke_key(s, prefix):
            raise click.ClickException(f"no active key with prefix {prefix}")
    click.echo(f"revoked {prefix}")


if __name__ == "__main__":
    main()
