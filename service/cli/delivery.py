"""``radar subscriptions …``, ``radar digest run|preview`` and ``radar outbox list|retry``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from sqlalchemy.orm import Session

from service.analytics.names import UnknownName
from service.cli.context import open_runtime
from service.cli.output import Format, emit, format_options
from service.store import outbox as outbox_repo
from service.store import subscriptions as subs_repo
from service.store.repo import utc

subscriptions_app = typer.Typer(
    help="Manage email digest and webhook subscriptions.", no_args_is_help=True
)
digest_app = typer.Typer(
    help="Send what is due: digests, immediate alerts, webhook retries.", no_args_is_help=True
)
outbox_app = typer.Typer(help="Inspect and retry composed messages.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def _fail(exc: ValidationError | ValueError) -> None:
    if isinstance(exc, ValidationError):
        for e in exc.errors():
            field = ".".join(str(x) for x in e["loc"]) or "body"
            err.print(
                f"[red]{field}: {e['msg'].removeprefix('Value error, ')}[/red]", soft_wrap=True
            )
    else:
        field = getattr(exc, "field", None)  # a SubscriptionError names its field
        err.print(f"[red]{escape(f'{field}: {exc}' if field else str(exc))}[/red]", soft_wrap=True)
    raise typer.Exit(2)


@contextmanager
def _found(ctx: typer.Context, what: str, get: Callable[[Session], Any]) -> Iterator[tuple]:
    """The runtime, a session and the row ``get(session)`` finds, as ``(rt, s, row)``; "no
    ``what``" (exit 2) when it finds none."""
    with open_runtime(ctx) as rt, rt.sessions() as s:
        row = get(s)
        if row is None:
            _fail(ValueError(f"no {what}"))
        yield rt, s, row


def _subscription(ctx: typer.Context, subscription_id: int):
    """``_found`` for a subscription by id."""
    return _found(
        ctx,
        f"subscription {subscription_id}",
        lambda s: subs_repo.get_subscription(s, subscription_id=subscription_id),
    )


def _split(values: list[str]) -> list[str] | None:
    return [v.strip() for x in values for v in x.split(",") if v.strip()] or None


@subscriptions_app.command("add")
def add(
    ctx: typer.Context,
    target: Annotated[
        str, typer.Argument(help="An email address, or a webhook URL with --channel webhook.")
    ],
    channel: Annotated[str, typer.Option(help="email | webhook")] = "email",
    format: Annotated[
        str | None, typer.Option(help="Webhooks: generic | slack | wecom | dingtalk.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="A label.")] = None,
    brand: Annotated[
        list[str],
        typer.Option(help="Brands: ids, names or aliases (repeat or comma-separate); none: all."),
    ] = [],
    region: Annotated[list[str], typer.Option(help="Regions, in any case; none: all.")] = [],
    aspect: Annotated[list[str], typer.Option(help="Aspects: ids or names; none: all.")] = [],
    min_severity: Annotated[str | None, typer.Option(help="L1 | L2 | L3 (L1 most severe).")] = None,
    frequency: Annotated[str, typer.Option(help="immediate | daily | weekly")] = "daily",
    language: Annotated[str, typer.Option(help="en | zh")] = "en",
    timezone_: Annotated[
        str, typer.Option("--timezone", help="IANA time zone of the send hour.")
    ] = "UTC",
    send_hour: Annotated[int, typer.Option(help="Local hour the digest goes out (0-23).")] = 8,
    send_weekday: Annotated[int, typer.Option(help="Weekly: 0 = Monday … 6 = Sunday.")] = 0,
    quiet: Annotated[str, typer.Option(help="Empty period: skip | all_quiet")] = "skip",
    secret_env: Annotated[
        str | None, typer.Option(help="Webhooks: env variable with the HMAC secret.")
    ] = None,
):
    """Subscribe an email address or a webhook."""
    # lazy: service.delivery imports httpx and the mail stack (~0.1 s)
    from service.delivery import subscriptions as subs

    try:
        data = subs.SubscriptionIn(
            channel=channel,
            target=target,
            format=format,
            name=name,
            brands=_split(brand),
            regions=_split(region),
            aspects=_split(aspect),
            min_severity=min_severity,
            frequency=frequency,
            language=language,
            timezone=timezone_,
            send_hour=send_hour,
            send_weekday=send_weekday,
            quiet=quiet,
            secret_env=secret_env,
        )
    except ValidationError as exc:
        _fail(exc)
    try:
        with open_runtime(ctx) as rt, rt.sessions() as s:
            data = rt.names().scoped(s, data)
            row = subs.create(s, data, actor="cli", allow=rt.settings.delivery.webhook_allow)
            out.print_json(json.dumps(subs.subscription_dict(row)))
    except (subs.SubscriptionError, UnknownName) as exc:
        _fail(exc)


@subscriptions_app.command("list")
@format_options
def list_cmd(ctx: typer.Context, fmt: Format = Format.table):
    """Every subscription (webhook URLs shown without their query)."""
    # lazy: service.delivery imports httpx and the mail stack (~0.1 s)
    from service.delivery.subscriptions import subscription_dict

    with open_runtime(ctx) as rt, rt.sessions() as s:
        rows = [subscription_dict(r) for r in subs_repo.list_subscriptions(s).rows]
    table = []
    for r in rows:
        scope = (
            "; ".join(f"{k}={','.join(r[k])}" for k in ("brands", "regions", "aspects") if r[k])
            or "all"
        )
        when = (
            "at once"
            if r["frequency"] == "immediate"
            else f"{r['send_hour']:02d}:00 {r['timezone']}"
        )
        table.append(
            [
                str(r["id"]),
                "yes" if r["active"] else "no",
                f"{r['channel']}/{r['format']}",
                escape(r["target"]),
                scope,
                r["min_severity"],
                r["frequency"],
                r["language"],
                when,
            ]
        )
    emit(
        fmt,
        title="Subscriptions",
        data=rows,
        rows=table,
        columns=["id", "active", "channel", "target", "scope", "sev", "frequency", "lang", "when"],
    )


@subscriptions_app.command("update")
def update_cmd(
    ctx: typer.Context,
    subscription_id: int,
    set_: Annotated[
        list[str], typer.Option("--set", help="field=value (lists comma-separated), repeatable.")
    ] = [],
):
    """Change fields of a subscription, e.g. --set regions=East,North --set send_hour=9."""
    # lazy: service.delivery imports httpx and the mail stack (~0.1 s)
    from service.delivery import subscriptions as subs

    patch: dict = {}
    for pair in set_:
        key, eq, value = pair.partition("=")
        if not eq:
            _fail(ValueError(f"--set {pair!r}: use field=value"))
        if key == "active" and value.lower() not in ("true", "false"):
            _fail(ValueError(f"active: {value!r} is not true or false"))
        patch[key] = (
            [v for v in value.split(",") if v]
            if key in subs.LISTS
            else int(value)
            if key in ("send_hour", "send_weekday") and value.lstrip("-").isdigit()
            else value.lower() == "true"
            if key == "active"
            else value
        )
    try:
        body = subs.SubscriptionPatch(**patch)
    except ValidationError as exc:
        _fail(exc)
    with _subscription(ctx, subscription_id) as (rt, s, row):
        try:
            body = rt.names().scoped(s, body)
        except UnknownName as exc:
            _fail(exc)
        out.print_json(json.dumps(subs.subscription_dict(subs.update(s, row, body, actor="cli"))))


@subscriptions_app.command("remove")
def remove(ctx: typer.Context, subscription_id: int):
    """Delete a subscription (its sent messages stay in the outbox's history)."""
    # lazy: service.delivery imports httpx and the mail stack (~0.1 s)
    from service.delivery.subscriptions import delete

    with _subscription(ctx, subscription_id) as (_, s, row):
        delete(s, row, actor="cli")
    out.print(f"removed subscription {subscription_id}")


def _now(at: datetime | None) -> datetime:
    return utc(at) if at else datetime.now(UTC)


@digest_app.command("run")
def run(
    ctx: typer.Context,
    now: Annotated[
        datetime | None, typer.Option(help="Act as if it were this moment (UTC if no offset).")
    ] = None,
    compose_only: Annotated[
        bool, typer.Option("--compose-only", help="Compose into the outbox, send nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
):
    """Compose what is due (digests, immediate alerts) and send what the outbox holds. Idempotent: safe under cron
    every minute."""
    with open_runtime(ctx) as rt:
        report = rt.delivery_service().run(_now(now), send=not compose_only).to_dict()
    if as_json:
        out.print_json(json.dumps(report))
        return
    d = report["dispatch"] or {"sent": [], "retrying": [], "dead": []}
    out.print(
        f"{len(report['composed'])} composed, {len(d['sent'])} sent, {len(d['retrying'])} to retry, "
        f"{len(d['dead'])} dead-lettered, {len(report['quiet_skipped'])} quiet periods skipped"
    )
    for f in report["failed"]:
        err.print(f"[red]subscription {f['subscription_id']}: {f['error']}[/red]")


@digest_app.command("preview")
def preview_cmd(
    ctx: typer.Context,
    subscription_id: int,
    now: Annotated[datetime | None, typer.Option(help="As of this moment; default now.")] = None,
):
    """Print the plain-text digest a subscriber would get for their latest period (sends nothing)."""
    # lazy: service.delivery imports httpx and the mail stack (~0.1 s)
    from service.delivery.scheduler import preview

    with _subscription(ctx, subscription_id) as (rt, s, row):
        p = preview(rt.settings, s, row, _now(now))
    out.print(f"[bold]{p['subject']}[/bold]", soft_wrap=True)
    out.print(p["text"], soft_wrap=True, markup=False, highlight=False)


@outbox_app.command("list")
@format_options
def outbox_list(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="pending | sending | sent | dead | cancelled")
    ] = None,
    limit: int = 50,
    fmt: Format = Format.table,
):
    """Composed messages, newest first (dead letters with their last error)."""
    # lazy: service.delivery imports httpx and the mail stack (~0.1 s)
    from service.delivery.outbox import outbox_dict

    if status not in (None, "pending", "sending", "sent", "dead", "cancelled"):
        _fail(
            ValueError(
                f"--status: {status!r} is not one of pending, sending, sent, dead, cancelled"
            )
        )
    with open_runtime(ctx) as rt:
        with rt.sessions() as s:
            page = outbox_repo.list_messages(s, statuses=[status] if status else [], limit=limit)
            rows = [outbox_dict(r) for r in page.rows]
    emit(
        fmt,
        title="Outbox",
        data=rows,
        columns=["id", "status", "tries", "channel", "target", "subject", "last error"],
        rows=[
            [
                str(r["id"]),
                r["status"],
                str(r["attempts"]),
                f"{r['channel']}/{r['format']}",
                escape(r["target"]),
                escape(r["subject"] or ""),
                escape(r["last_error"] or ""),
            ]
            for r in rows
        ],
    )


@outbox_app.command("retry")
def outbox_retry(ctx: typer.Context, message_id: int):
    """Queue a dead-lettered message again (sent on the next `radar digest run`)."""
    # lazy: service.delivery imports httpx and the mail stack (~0.1 s)
    from service.delivery.outbox import retry

    found = _found(
        ctx, f"message {message_id}", lambda s: outbox_repo.get_message(s, message_id=message_id)
    )
    with found as (_, s, row):
        try:
            retry(s, row)
        except ValueError as exc:
            _fail(exc)
    out.print(f"message {message_id} queued again")
