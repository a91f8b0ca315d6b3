"""``radar alerts run|list|show|ack|resolve|metrics``: the alert engine and lifecycle from the shell."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from service.alerts.lifecycle import TransitionError, response_metrics, transition
from service.alerts.rules import AlertConfigError
from service.cli.context import open_runtime
from service.cli.output import Format, emit, format_options
from service.store import alerts as alerts_repo
from service.store.repo import utc

alerts_app = typer.Typer(help="Evaluate alert rules and manage alerts.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def _runtime(ctx: typer.Context):
    """The command's runtime, once its alert rules have been read (a mistake in them is reported
    and ends the command)."""
    rt = open_runtime(ctx)
    try:
        _ = rt.alert_config
    except AlertConfigError as exc:
        rt.close()
        err.print(f"[red]{exc}[/red]", soft_wrap=True)
        raise typer.Exit(2) from None
    return rt


def run_once(rt, as_of: datetime | None = None) -> dict:
    """One evaluation of every rule (what ``radar serve --alerts-every`` calls on its schedule)."""
    engine = rt.alert_engine()
    with rt.sessions() as s:
        return engine.run(s, as_of).to_dict()


@alerts_app.command("run")
def run_cmd(
    ctx: typer.Context,
    as_of: Annotated[
        datetime | None,
        typer.Option(help="Evaluate as of this moment (UTC if no offset); default now."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run report as JSON.")] = False,
):
    """Evaluate every rule once: raise new alerts, update ongoing ones. Running it twice raises nothing new."""
    with _runtime(ctx) as rt:
        report = run_once(rt, utc(as_of) if as_of else None)
    if as_json:
        out.print_json(json.dumps(report))
        return
    out.print(
        f"as of {report['as_of']}: {len(report['raised'])} raised, {len(report['updated'])} updated, "
        f"{len(report['unchanged'])} unchanged, {len(report['cooling_down'])} cooling down"
    )
    for skip in report["skipped"]:
        out.print(f"  skipped rule {skip['rule']}: {skip['reason']}")


@alerts_app.command("list")
@format_options
def list_cmd(
    ctx: typer.Context,
    status: Annotated[
        list[str], typer.Option(help="open, acknowledged or resolved (repeatable).")
    ] = [],
    fmt: Format = Format.table,
):
    """Alerts, most severe and newest first."""
    with _runtime(ctx) as rt, rt.sessions() as s:
        rows = [alerts_repo.alert_dict(r) for r in alerts_repo.list_alerts(s, statuses=status)]
    emit(
        fmt,
        title=f"{len(rows)} alerts",
        data=rows,
        columns=["id", "sev", "status", "type", "title", "deadline"],
        rows=[
            [
                str(a["id"]),
                a["severity"],
                a["status"],
                a["type"],
                escape(a["title"]),
                a["deadline_at"][:16],
            ]
            for a in rows
        ],
    )


def _transition(ctx: typer.Context, alert_id: int, status: str, by: str, note: str | None) -> None:
    with _runtime(ctx) as rt, rt.sessions() as s:
        row = alerts_repo.get_alert(s, alert_id=alert_id)
        if row is None:
            err.print(f"[red]no alert {alert_id}[/red]")
            raise typer.Exit(1)
        try:
            transition(s, row, status, actor=by, note=note, now=datetime.now(UTC))
        except TransitionError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
        out.print(f"alert {alert_id}: {status} by {by}")


By = Annotated[str, typer.Option("--by", help="Who does it (recorded).")]
Note = Annotated[str | None, typer.Option(help="A note for the alert's history.")]


@alerts_app.command("ack")
def ack_cmd(ctx: typer.Context, alert_id: int, by: By, note: Note = None):
    """Acknowledge an alert."""
    _transition(ctx, alert_id, "acknowledged", by, note)


@alerts_app.command("resolve")
def resolve_cmd(ctx: typer.Context, alert_id: int, by: By, note: Note = None):
    """Resolve an alert (its key then cools down before it can be raised again)."""
    _transition(ctx, alert_id, "resolved", by, note)


@alerts_app.command("metrics")
def metrics_cmd(ctx: typer.Context):
    """Response metrics as JSON: alerts acknowledged within their deadline, by severity and by region."""
    with _runtime(ctx) as rt, rt.sessions() as s:
        out.print_json(json.dumps(response_metrics(s)))
