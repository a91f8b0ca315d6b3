"""``radar actions add|list|show|close|plan`` and ``radar responses add|metrics``: what the team
changed and whether it worked, pilot plans, and answers to items, from the shell."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from service.cli.context import open_runtime
from service.cli.output import Format, FormatOpt, chosen, emit, format_options
from service.store import actions as store
from service.store import alerts as alerts_repo
from service.store import repo
from service.store.repo import FeedbackFilter, utc

actions_app = typer.Typer(
    help="Record actions, measure their effect against a control, plan pilots.",
    no_args_is_help=True,
)
responses_app = typer.Typer(
    help="Record answers to items and read the response metrics.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)

SegmentOpt = Annotated[
    list[str], typer.Option("--segment", help="dimension=value (repeatable), e.g. region=East.")
]
ControlOpt = Annotated[
    list[str],
    typer.Option(
        "--control",
        help="A control segment as dim=value[,dim=value] "
        "(repeatable); default: chosen automatically.",
    ),
]


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out_: dict[str, str] = {}
    for v in values:
        for part in v.split(","):
            k, sep, val = part.partition("=")
            if not sep or not k.strip() or not val.strip():
                raise typer.BadParameter(
                    f"{what} {part!r}: write dimension=value, e.g. region=East"
                )
            out_[k.strip()] = val.strip()
    return out_


def _when(value: datetime | None) -> datetime | None:
    return utc(value) if value else None


def _check(rt, segment, aspect, metric, controls) -> None:
    # lazy: service.analytics.effects pulls in scipy.stats (~0.5 s)
    from service.analytics.effects import check_where

    errors = check_where(
        aspects=rt.settings.taxonomy.ids,
        segment=segment,
        aspect=aspect,
        metric=metric,
        controls=controls,
    )
    for e in errors:
        err.print(f"[red]{e['field']}: {escape(e['message'])}[/red]")
    if errors:
        raise typer.Exit(2)


def _brand(rt, brand: str | None) -> str:
    return rt.settings.competitors.our_brand if brand in (None, "", "ours") else brand


@actions_app.command("add")
def add_cmd(
    ctx: typer.Context,
    title: Annotated[str, typer.Option(help="What changed, in a line.")],
    segment: SegmentOpt,
    start: Annotated[datetime, typer.Option(help="When it started (UTC if no offset).")],
    kind: Annotated[
        str,
        typer.Option(help="product, packaging, price, service, delivery, communication, other."),
    ] = "other",
    brand: Annotated[str | None, typer.Option(help="Brand id; default our brand.")] = None,
    product: Annotated[str | None, typer.Option()] = None,
    aspect: Annotated[str | None, typer.Option(help="The aspect its metric reads.")] = None,
    metric: Annotated[
        str, typer.Option(help="negative_share, net_sentiment, volume or rating.")
    ] = "negative_share",
    min_effect: Annotated[
        float | None, typer.Option(help="Smallest change worth detecting (a share as a fraction).")
    ] = None,
    control: ControlOpt = [],
    end: Annotated[
        datetime | None, typer.Option(help="When it stopped (a limited edition).")
    ] = None,
    owner: Annotated[str | None, typer.Option()] = None,
    due: Annotated[datetime | None, typer.Option(help="When it is due to be completed.")] = None,
    alert: Annotated[
        list[int], typer.Option("--alert", help="An alert it answers (repeatable).")
    ] = [],
    description: Annotated[str, typer.Option()] = "",
    by: Annotated[str, typer.Option("--by", help="Who records it.")] = "cli",
):
    """Record an action: what changed, where, from when, the alerts it answers."""
    if kind not in store.KINDS:
        raise typer.BadParameter(f"--kind {kind!r}: use one of {', '.join(store.KINDS)}")
    seg = _pairs(segment, "--segment")
    controls = [_pairs([c], "--control") for c in control] or None
    with open_runtime(ctx) as rt:
        _check(rt, seg, aspect, metric, controls)
        if end is not None and _when(end) <= _when(start):
            err.print("[red]--end must be after --start[/red]")
            raise typer.Exit(2)
        now = datetime.now(UTC)
        with rt.sessions() as s:
            for a in alert:
                if alerts_repo.get_alert(s, alert_id=a) is None:
                    err.print(f"[red]--alert {a}: no such alert[/red]")
                    raise typer.Exit(2)
            row = store.create_action(
                s,
                title=title,
                description=description,
                kind=kind,
                brand=_brand(rt, brand),
                product=product,
                segment=seg,
                aspect=aspect,
                metric=metric,
                min_effect=min_effect,
                controls=controls,
                started_at=_when(start),
                ended_at=_when(end),
                owner=owner,
                due_at=_when(due),
                actor=by,
                now=now,
                alert_ids=alert,
            )
            s.commit()
            out.print(f"action {row.id} recorded ({row.status})")


@actions_app.command("list")
@format_options
def list_cmd(
    ctx: typer.Context,
    status: Annotated[
        list[str], typer.Option(help="planned, active, completed or cancelled (repeatable).")
    ] = [],
    fmt: Format = Format.table,
):
    """Actions, newest first, with their verdict."""
    # lazy: service.analytics.effects pulls in scipy.stats (~0.5 s)
    from service.analytics import effects

    with open_runtime(ctx) as rt:
        now = datetime.now(UTC)
        with rt.sessions() as s:
            rows = store.list_actions(s, statuses=status)
            links = store.alerts_of(s, action_ids=[r.id for r in rows])
            data = []
            for r in rows:
                d = store.action_dict(r, links[r.id])
                live = r.status != "cancelled" and r.started_at <= now
                d["effect"] = effects.action_effect_dict(s, action=d, now=now) if live else None
                data.append(d)
    emit(
        fmt,
        title=f"{len(data)} actions",
        data=data,
        columns=["id", "status", "title", "segment", "owner", "due", "verdict", "effect"],
        rows=[
            [
                str(d["id"]),
                d["status"],
                escape(d["title"]),
                escape(json.dumps(d["segment"], ensure_ascii=False)),
                escape(d["owner"] or ""),
                (d["due_at"] or "")[:10],
                (d["effect"] or {}).get("verdict", ""),
                escape((d["effect"] or {}).get("summary", "")),
            ]
            for d in data
        ],
    )


@actions_app.command("show")
def show_cmd(
    ctx: typer.Context,
    action_id: int,
    metric: Annotated[
        str | None, typer.Option(help="Measure on another metric than the action's own.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
):
    """One action, its effect against the controls, and the weekly series."""
    # lazy: service.analytics.effects pulls in scipy.stats (~0.5 s)
    from service.analytics import effects

    with open_runtime(ctx) as rt:
        now = datetime.now(UTC)
        with rt.sessions() as s:
            row = store.get_action(s, action_id=action_id)
            if row is None:
                err.print(f"[red]no action {action_id}[/red]")
                raise typer.Exit(1)
            d = store.action_dict(row, store.alerts_of(s, action_ids=[row.id])[row.id])
            if metric:
                _check(rt, d["segment"], d["aspect"], metric, None)
                d["metric"] = metric
            d["effect"] = effects.action_effect_dict(s, action=d, now=now)
    if as_json:
        out.print_json(json.dumps(d, ensure_ascii=False, default=str))
        return
    e = d["effect"]
    out.print(f"[bold]action {d['id']}[/bold]: {escape(d['title'])} ({d['kind']}, {d['status']})")
    out.print(
        f"  where: {d['brand']} {json.dumps(d['segment'], ensure_ascii=False)}; from {d['started_at'][:10]}"
        + (f" to {d['ended_at'][:10]}" if d["ended_at"] else "")
        + f"; alerts {d['alert_ids'] or '-'}"
    )
    out.print(f"  {escape(e['summary'])}")
    if e.get("message") and e["message"] not in e["summary"]:
        out.print(f"  {escape(e['message'])}")
    if e.get("pre_trend"):
        pt = e["pre_trend"]
        out.print(
            f"  pre-trend: slope {pt['slope_per_week']} per week, p = {pt['p_value']} "
            f"({'parallel' if pt['ok'] else 'NOT parallel'})"
        )
    chosen_c = [c["segment"] for c in e.get("controls", []) if c.get("chosen")]
    if chosen_c:
        out.print(
            f"  controls ({e.get('controls_chosen_by')}): "
            + "; ".join(escape(json.dumps(c, ensure_ascii=False)) for c in chosen_c)
        )
    if e.get("series"):
        emit(
            chosen(None),
            columns=["week", "period", "treated", "control", "items"],
            rows=[
                [
                    p["week"],
                    p["period"],
                    "" if p["treated"] is None else f"{p['treated']:.3f}",
                    "" if p["control"] is None else f"{p['control']:.3f}",
                    str(p["treated_items"]),
                ]
                for p in e["series"]
            ],
        )


@actions_app.command("close")
def close_cmd(
    ctx: typer.Context,
    action_id: int,
    cancelled: Annotated[
        bool, typer.Option("--cancelled", help="It was called off, not completed.")
    ] = False,
    end: Annotated[
        datetime | None, typer.Option(help="When the change stopped (a limited edition).")
    ] = None,
):
    """Mark an action completed (or cancelled)."""
    with open_runtime(ctx) as rt:
        with rt.sessions() as s:
            row = store.get_action(s, action_id=action_id)
            if row is None:
                err.print(f"[red]no action {action_id}[/red]")
                raise typer.Exit(1)
            if row.status in ("completed", "cancelled"):
                err.print(f"[red]action {action_id} is already {row.status}[/red]")
                raise typer.Exit(1)
            if end is not None and _when(end) <= row.started_at:
                err.print("[red]--end must be after the action's start[/red]")
                raise typer.Exit(2)
            changes = {"status": "cancelled" if cancelled else "completed"}
            if end is not None:
                changes["ended_at"] = _when(end)
            store.update_action(s, row=row, changes=changes, now=datetime.now(UTC))
            s.commit()
            out.print(f"action {action_id}: {changes['status']}")


@actions_app.command("plan")
def plan_cmd(
    ctx: typer.Context,
    segment: SegmentOpt,
    aspect: Annotated[str | None, typer.Option()] = None,
    metric: Annotated[str, typer.Option()] = "negative_share",
    min_effect: Annotated[
        float | None, typer.Option(help="Smallest change worth detecting (a share as a fraction).")
    ] = None,
    brand: Annotated[str | None, typer.Option()] = None,
    product: Annotated[str | None, typer.Option()] = None,
    control: ControlOpt = [],
    weeks: Annotated[
        int, typer.Option("--history-weeks", help="Weeks of history that set the noise.")
    ] = 8,
    as_of: Annotated[
        datetime | None, typer.Option(help="Plan as of this moment; default now.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
):
    """How long a pilot in a segment must run to detect a minimum effect with 80% power, and the controls that fit."""
    # lazy: service.analytics.effects pulls in scipy.stats (~0.5 s)
    from service.analytics import effects

    seg = _pairs(segment, "--segment")
    controls = [_pairs([c], "--control") for c in control] or None
    with open_runtime(ctx) as rt:
        _check(rt, seg, aspect, metric, controls)
        with rt.sessions() as s:
            try:
                p = effects.plan(
                    s,
                    flt=FeedbackFilter(
                        brands=(_brand(rt, brand),), products=(product,) if product else ()
                    ),
                    segment=seg,
                    metric=metric,
                    aspect=aspect,
                    min_effect=min_effect,
                    now=_when(as_of) or datetime.now(UTC),
                    pre_weeks=weeks,
                    controls=controls,
                ).to_dict()
            except effects.EffectError as exc:
                err.print(f"[red]{escape(str(exc))}[/red]")
                raise typer.Exit(1) from None
    if as_json:
        out.print_json(json.dumps(p, ensure_ascii=False))
        return
    out.print(escape(p["message"]))
    out.print(
        "controls: "
        + "; ".join(
            escape(json.dumps(c["segment"], ensure_ascii=False))
            for c in p["controls"]
            if c["chosen"]
        )
    )
    out.print(
        "detectable change by weeks run: "
        + ", ".join(f"{r['weeks']}w {r['detectable']}" for r in p["detectable_by_week"])
    )


@responses_app.command("add")
def response_add_cmd(
    ctx: typer.Context,
    feedback_id: int,
    by: Annotated[str, typer.Option("--by", help="Who answered.")],
    channel: Annotated[str, typer.Option(help="How: email, phone, public_reply, …")] = "other",
    at: Annotated[
        datetime | None, typer.Option(help="When (UTC if no offset); default now.")
    ] = None,
):
    """Record that an item was answered."""
    with open_runtime(ctx) as rt:
        now = datetime.now(UTC)
        when = _when(at) or now
        with rt.sessions() as s:
            item = repo.get_feedback(s, feedback_id=feedback_id)
            if item is None:
                err.print(f"[red]no feedback item {feedback_id}[/red]")
                raise typer.Exit(1)
            if when > now or when < item.created_at:
                err.print(
                    f"[red]--at {when.isoformat()} is in the future or before the item was posted[/red]"
                )
                raise typer.Exit(2)
            store.add_response(
                s,
                feedback_id=feedback_id,
                responded_at=when,
                responder=by,
                channel=channel,
                recorded_by="cli",
                now=now,
            )
            s.commit()
            out.print(f"item {feedback_id}: answered {when.isoformat()} by {escape(by)}")


@responses_app.command("metrics")
def response_metrics_cmd(
    ctx: typer.Context,
    by: Annotated[str, typer.Option(help="region, channel, severity or brand.")] = "region",
    days: Annotated[int, typer.Option(help="Items posted in the last N days.")] = 28,
    within_hours: Annotated[float, typer.Option(help="Answered within this many hours.")] = 24.0,
    action_days: Annotated[float, typer.Option(help="Alerts with an action within N days.")] = 7.0,
    as_of: Annotated[datetime | None, typer.Option(help="Default now.")] = None,
    fmt: FormatOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
):
    """Negative items answered within N hours and the median time to answer, per group; alerts with an action."""
    if by not in store.RESPONSE_GROUPS:
        raise typer.BadParameter(f"--by {by!r}: use one of {', '.join(store.RESPONSE_GROUPS)}")
    with open_runtime(ctx) as rt:
        now = _when(as_of) or datetime.now(UTC)
        flt = FeedbackFilter(since=now - timedelta(days=days), until=now)
        severe = [a.id for a in rt.settings.taxonomy.aspects if a.kind == "severity"]
        with rt.sessions() as s:
            groups = store.response_metrics(
                s, flt=flt, by=by, severe_aspects=severe, within_hours=within_hours, now=now
            )
            alerts = store.alert_action_metrics(
                s, since=flt.since, until=now, days=action_days, now=now
            )

    def pct(v: float | None) -> str:
        return "" if v is None else f"{100 * v:.0f}%"

    emit(
        chosen(fmt, as_json),
        title=f"negative items of the last {days} days, answered within {within_hours:g} h",
        data={"by": by, "groups": groups, "alerts": alerts},
        columns=[by, "negative", "answered", f"within {within_hours:g}h", "median hours"],
        rows=[
            [
                escape(g["group"]),
                str(g["negative_items"]),
                pct(g["answered_share"]),
                pct(g["within_share"]),
                "" if g["median_hours_to_answer"] is None else f"{g['median_hours_to_answer']:.1f}",
            ]
            for g in groups
        ],
    )
    if chosen(fmt, as_json).value == "table":
        for g in alerts["by_severity"]:
            out.print(
                f"{g['severity']}: {g['alerts']} alerts, {pct(g['share_with_action_in_time'])} with an action "
                f"within {action_days:g} days"
            )
        out.print(
            f"actions completed by their due date: {pct(alerts['share_completed_by_due_date'])} "
            f"of {alerts['actions_due']}"
        )
