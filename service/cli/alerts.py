"""``radar alerts run|list|show|ack|resolve|metrics``: the alert engine and lifecycle from the shell."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from service.cli.output import FormatOpt, chosen, emit

alerts_app = typer.Typer(help="Evaluate alert rules and manage alerts.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def _runtime(ctx: typer.Context):
    from service.alerts.rules import AlertConfigError
    from service.runtime import Runtime

    rt = Runtime(ctx.obj.settings)
    try:
        _ = rt.alert_config  # parsed here so a mistake is reported
    except AlertConfigError as exc:
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
    from service.store.repo import utc

    rt = _runtime(ctx)
    try:
        report = run_once(rt, utc(as_of) if as_of else None)
    finally:
        rt.close()
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
def list_cmd(
    ctx: typer.Context,
    status: Annotated[
        list[str], typer.Option(help="open, acknowledged or resolved (repeatable).")
    ] = [],
    fmt: FormatOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
):
    """Alerts, most severe and newest first."""
    from service.store import alerts as alerts_repo

    rt = _runtime(ctx)
    try:
        with rt.sessions() as s:
            rows = [alerts_repo.alert_dict(r) for r in alerts_repo.list_alerts(s, statuses=status)]
    finally:
        rt.close()
    emit(
        chosen(fmt, as_json),
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
    from service.alerts.lifecycle import TransitionError, transition
    from service.store import alerts as alerts_repo

    rt = _runtime(ctx)
    try:
        with rt.sessions() as s:
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
    finally:
        rt.close()


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
    from service.alerts.lifecycle import response_metrics

    rt = _runtime(ctx)
    try:
        with rt.sessions() as s:
            out.print_json(json.dumps(response_metrics(s)))
    finally:
        rt.close()
