"""The ``radar`` command: thin over the same runtime and jobs as the HTTP API.

This module wires the app: the options every command shares, the commands and command groups
(each in its own module) and the one-line error for a database that cannot serve."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from service.api import logs
from service.cli import batch, demo, serve, teach
from service.cli.actions import actions_app, responses_app
from service.cli.alerts import alerts_app
from service.cli.analyze import analyze_app, benchmark_app
from service.cli.context import State
from service.cli.db import db_app
from service.cli.delivery import digest_app, outbox_app, subscriptions_app
from service.cli.keys import keys_app
from service.cli.models import models_app
from service.cli.serve import _digest_job, _schedule  # noqa: F401  (tests import them from here)
from service.cli.taxonomy import taxonomy_app
from service.config import Settings
from service.store.db import UNUSABLE, classify, describe

app = typer.Typer(
    help="Feedback Radar: tag, score, store and serve customer feedback.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
COMMANDS = {
    "train": teach.train,
    "ingest": batch.ingest,
    "score": batch.score,
    "rescore": batch.rescore,
    "serve": serve.serve,
    "demo-data": demo.demo_data,
    "demo": demo.demo,
}
GROUPS = {
    "db": db_app,
    "models": models_app,
    "analyze": analyze_app,
    "benchmark": benchmark_app,
    "alerts": alerts_app,
    "subscriptions": subscriptions_app,
    "digest": digest_app,
    "outbox": outbox_app,
    "keys": keys_app,
    "taxonomy": taxonomy_app,
    "actions": actions_app,
    "responses": responses_app,
    "labels": teach.labels_app,
}
for name, command in COMMANDS.items():
    app.command(name)(command)
for name, group in GROUPS.items():
    app.add_typer(group, name=name)
console = Console(stderr=True)

_DATABASE: dict[str, str] = {}  # the store this command uses, for the one-line database error


@app.callback()
def main_options(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="RADAR_DATABASE_URL",
            help="SQLAlchemy URL of the store "
            "(default from configs/base.yaml: a SQLite file in the working directory).",
        ),
    ] = None,
    config_dir: Annotated[
        Path | None,
        typer.Option(
            "--config-dir",
            envvar="RADAR_CONFIG_DIR",
            help="Folder with base.yaml, taxonomy.yaml, competitors.yaml.",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log debug details to stderr.")
    ] = False,
):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if config_dir:
        os.environ["RADAR_CONFIG_DIR"] = str(config_dir)
    overrides = {"database_url": database_url} if database_url else {}
    if config_dir:
        overrides["config_dir"] = config_dir
    state = State()
    try:
        state.settings = Settings(**overrides)
    except Exception as exc:  # invalid configuration: say what and where, no traceback
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None
    logs.configure(state.settings.log_format, level=logging.DEBUG if verbose else logging.WARNING)
    _DATABASE["url"] = state.settings.database_url
    ctx.obj = state


def main() -> None:
    """The ``radar`` command. A database that cannot serve (read-only, locked, damaged,
    unreachable) ends it with one line naming the database and the cause, and exit status 4."""
    try:
        app()
    except SQLAlchemyError as exc:
        kind = classify(exc)
        if kind not in UNUSABLE:
            raise
        url = _DATABASE.get("url")
        where = (
            "the store"
            if not url
            else url
            if make_url(url).password is None
            else make_url(url).render_as_string(hide_password=True)
        )
        hint = {
            "read-only": "it cannot be written (file permissions, a read-only mount or user)",
            "busy": "another process holds its lock",
            "corrupt": "it is damaged (restore a backup)",
            "unavailable": "it cannot be reached or opened",
        }[kind]
        console.print(
            f"[red]error:[/red] database {escape(where)}: {hint}: {escape(describe(exc))}",
            soft_wrap=True,
            highlight=False,
        )
        sys.exit(4)


if __name__ == "__main__":
    main()
