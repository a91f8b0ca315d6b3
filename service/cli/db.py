"""``radar db upgrade|rollups|current|backup``: the store's schema, rollups and backups."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.engine import make_url

from service.cli.context import open_runtime, settings
from service.store.db import backup_sqlite, check_integrity, make_engine

db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)
console = Console(stderr=True)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context):
    """Apply schema migrations up to the latest revision."""
    # lazy: service.store.migrate imports alembic (~0.15 s)
    from service.store.migrate import current_revision, upgrade

    engine = make_engine(settings(ctx).database_url)
    upgrade(engine)
    typer.echo(json.dumps({"revision": current_revision(engine)}))


@db_app.command("rollups")
def db_rollups(
    ctx: typer.Context,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Recompute every day, not only the stale ones.")
    ] = False,
):
    """Bring the dashboard's daily rollups up to date: recompute the days that writes made stale
    (or every day with --rebuild, or the first time). `radar serve` does this every
    dashboard.rollups_every_seconds; run it from cron where the API is not served. Interrupted,
    it changes nothing (one transaction)."""
    with open_runtime(ctx) as rt:
        t0 = time.perf_counter()
        out = rt.refresh_rollups(rebuild=rebuild, progress=lambda m: console.print(m))
    typer.echo(json.dumps({**out, "seconds": round(time.perf_counter() - t0, 2)}))


@db_app.command("current")
def db_current(ctx: typer.Context):
    """Show the schema revision of the database."""
    # lazy: service.store.migrate imports alembic (~0.15 s)
    from service.store.migrate import current_revision, head_revision

    engine = make_engine(settings(ctx).database_url)
    typer.echo(json.dumps({"revision": current_revision(engine), "head": head_revision(engine)}))


@db_app.command("backup")
def db_backup(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Where to write the copy (a SQLite file).")],
    force: Annotated[bool, typer.Option("--force", help="Replace PATH if it exists.")] = False,
):
    """Copy a live SQLite store to PATH with SQLite's online backup API: a consistent copy while
    the API and jobs keep writing. To restore, stop the service and put the copy in the store's
    place (or point RADAR_DATABASE_URL at it). PostgreSQL: use pg_dump."""
    # lazy: service.store.migrate imports alembic (~0.15 s)
    from service.store.migrate import current_revision

    url = settings(ctx).database_url
    if make_url(url).get_backend_name() != "sqlite":
        console.print(
            f"[red]error:[/red] radar db backup copies SQLite stores; back up this "
            f"{make_url(url).get_backend_name()} database with its own tools, e.g. "
            f"pg_dump --format=custom --file {path} "
            f"'{make_url(url).render_as_string(hide_password=True)}' (restore with pg_restore)",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    if path.exists() and not force:
        console.print(f"[red]error:[/red] {path} exists (--force replaces it)")
        raise typer.Exit(2)
    engine = make_engine(url)
    try:
        backup_sqlite(engine, path)
    finally:
        engine.dispose()
    copy = make_engine(f"sqlite:///{path.resolve()}")
    try:
        state, detail = check_integrity(copy)
        revision = current_revision(copy)
    finally:
        copy.dispose()
    typer.echo(
        json.dumps(
            {
                "backup": str(path),
                "bytes": path.stat().st_size,
                "revision": revision,
                "integrity": state if detail is None else f"{state}: {detail}",
            }
        )
    )
    if state != "ok":
        raise typer.Exit(1)
