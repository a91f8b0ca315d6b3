"""The action and response repository: every read and write of ``action``, ``action_alert`` and
``feedback_response`` rows, and the response metrics computed from them.

An action's scope is the caller's: of their brands and, for a regional scope, of their regions
(an action with no region in its segment is visible only to callers without a regional scope).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypedDict, Unpack

from sqlalchemy import Select, and_, delete, func, select
from sqlalchemy.orm import Session

from service.domain import DataScope
from service.store import alerts as alerts_repo
from service.store.repo import FeedbackFilter, canonical
from service.store.tables import (
    ActionAlertRow,
    ActionRow,
    AlertRow,
    AspectScoreRow,
    FeedbackRow,
    ResponseRow,
    ScoreRow,
)

KINDS = ("product", "packaging", "price", "service", "delivery", "communication", "other")
STATUSES = ("planned", "active", "completed", "cancelled")


class ActionNotFound(LookupError):
    pass


class ActionScope(DataScope):
    """What actions a reader may see (``None``: unrestricted)."""

    def apply(self, stmt: Select) -> Select:
        if self.regions is not None:
            stmt = stmt.where(ActionRow.region.in_(self.regions))
        if self.brands is not None:
            stmt = stmt.where(ActionRow.brand.in_(self.brands))
        return stmt


def action_dict(row: ActionRow, alert_ids: Sequence[int] = ()) -> dict[str, Any]:
    def iso(t: datetime | None) -> str | None:
        return t.isoformat() if t else None

    return {
        "id": row.id,
        "title": row.title,
        "description": row.description,
        "kind": row.kind,
        "brand": row.brand,
        "product": row.product,
        "segment": json.loads(row.segment),
        "aspect": row.aspect,
        "metric": row.metric,
        "min_effect": row.min_effect,
        "controls": json.loads(row.controls) if row.controls else None,
        "started_at": iso(row.started_at),
        "ended_at": iso(row.ended_at),
        "owner": row.owner,
        "due_at": iso(row.due_at),
        "status": row.status,
        "completed_at": iso(row.completed_at),
        "alert_ids": list(alert_ids),
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


# --- actions ------------------------------------------------------------------------------------


def create_action(
    session: Session,
    *,
    title: str,
    kind: str,
    brand: str,
    segment: dict[str, str],
    started_at: datetime,
    actor: str,
    now: datetime,
    description: str = "",
    product: str | None = None,
    aspect: str | None = None,
    metric: str = "negative_share",
    min_effect: float | None = None,
    controls: list[dict] | None = None,
    ended_at: datetime | None = None,
    owner: str | None = None,
    due_at: datetime | None = None,
    status: str | None = None,
    alert_ids: Sequence[int] = (),
) -> ActionRow:
    row = ActionRow(
        title=title,
        description=description,
        kind=kind,
        brand=brand,
        product=product,
        region=segment.get("region"),
        segment=json.dumps(segment, ensure_ascii=False, sort_keys=True),
        aspect=aspect,
        metric=metric,
        min_effect=min_effect,
        controls=json.dumps(controls, ensure_ascii=False) if controls else None,
        started_at=started_at,
        ended_at=ended_at,
        owner=owner,
        due_at=due_at,
        status=status or ("planned" if started_at > now else "active"),
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    link_alerts(session, action_id=row.id, alert_ids=alert_ids, now=now, actor=actor)
    return row


def get_action(
    session: Session, *, action_id: int, scope: ActionScope = ActionScope()
) -> ActionRow | None:
    return session.scalar(scope.apply(select(ActionRow).where(ActionRow.id == action_id)))


def list_actions(
    session: Session,
    *,
    scope: ActionScope = ActionScope(),
    statuses: Sequence[str] = (),
    brands: Sequence[str] = (),
    alert_id: int | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[ActionRow]:
    """Newest start first."""
    stmt = scope.apply(select(ActionRow))
    if statuses:
        stmt = stmt.where(ActionRow.status.in_(list(statuses)))
    if brands:
        stmt = stmt.where(ActionRow.brand.in_(list(brands)))
    if alert_id is not None:
        stmt = stmt.where(
            ActionRow.id.in_(
                select(ActionAlertRow.action_id).where(ActionAlertRow.alert_id == alert_id)
            )
        )
    stmt = stmt.order_by(ActionRow.started_at.desc(), ActionRow.id.desc()).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def count_actions(
    session: Session, *, scope: ActionScope = ActionScope(), statuses: Sequence[str] = ()
) -> int:
    stmt = scope.apply(select(func.count()).select_from(ActionRow))
    if statuses:
        stmt = stmt.where(ActionRow.status.in_(list(statuses)))
    return session.scalar(stmt) or 0


def update_action(
    session: Session,
    *,
    row: ActionRow,
    changes: dict[str, Any],
    now: datetime,
    actor: str | None = None,
) -> ActionRow:
    """``changes``: column → value (``segment`` and ``controls`` as Python objects)."""
    for name, value in changes.items():
        if name == "segment":
            row.segment = json.dumps(value, ensure_ascii=False, sort_keys=True)
            row.region = value.get("region")
        elif name == "controls":
            row.controls = json.dumps(value, ensure_ascii=False) if value else None
        else:
            setattr(row, name, value)
    if changes.get("status") in ("completed", "cancelled") and row.completed_at is None:
        row.completed_at = now
        linked = list(
            session.scalars(
                select(ActionAlertRow.alert_id).where(ActionAlertRow.action_id == row.id)
            )
        )
        _alert_events(
            session,
            alert_ids=linked,
            action=row,
            what=f"action_{changes['status']}",
            actor=actor or row.created_by,
            now=now,
        )
    row.updated_at = now
    session.flush()
    return row


def link_alerts(
    session: Session,
    *,
    action_id: int,
    alert_ids: Sequence[int],
    now: datetime,
    actor: str | None = None,
) -> None:
    """Link the action to alerts it answers; each alert's history records the plan."""
    have = set(
        session.scalars(
            select(ActionAlertRow.alert_id).where(ActionAlertRow.action_id == action_id)
        )
    )
    new = [a for a in dict.fromkeys(alert_ids) if a not in have]
    if not new:
        return
    action = session.get(ActionRow, action_id)
    for a in new:
        session.add(ActionAlertRow(action_id=action_id, alert_id=a, linked_at=now))
    _alert_events(
        session,
        alert_ids=new,
        action=action,
        what="action_planned",
        actor=actor or action.created_by,
        now=now,
    )
    session.flush()


def _alert_events(
    session: Session,
    *,
    alert_ids: Sequence[int],
    action: ActionRow,
    what: str,
    actor: str,
    now: datetime,
) -> None:
    for alert in session.scalars(select(AlertRow).where(AlertRow.id.in_(list(alert_ids)))):
        alerts_repo.add_event(
            session,
            alert=alert,
            at=now,
            actor=actor,
            action=what,
            note=f"action #{action.id}: {action.title}",
        )


def unlink_alerts(session: Session, *, action_id: int, alert_ids: Sequence[int]) -> None:
    session.execute(
        delete(ActionAlertRow).where(
            ActionAlertRow.action_id == action_id, ActionAlertRow.alert_id.in_(list(alert_ids))
        )
    )


def alerts_of(session: Session, *, action_ids: Sequence[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {a: [] for a in action_ids}
    if action_ids:
        for a, al in session.execute(
            select(ActionAlertRow.action_id, ActionAlertRow.alert_id)
            .where(ActionAlertRow.action_id.in_(list(action_ids)))
            .order_by(ActionAlertRow.alert_id)
        ):
            out[a].append(al)
    return out


def alert_onsets(session: Session, *, alert_ids: Sequence[int]) -> list[datetime]:
    if not alert_ids:
        return []
    return [
        t
        for t in session.scalars(select(AlertRow.onset).where(AlertRow.id.in_(list(alert_ids))))
        if t
    ]


def overlapping(
    session: Session, *, brand: str, since: datetime, until: datetime, besides: int | None
) -> list[ActionRow]:
    """The brand's other actions (not cancelled) running at some point in ``[since, until)``."""
    stmt = select(ActionRow).where(
        ActionRow.brand == brand, ActionRow.status != "cancelled", ActionRow.started_at < until
    )
    stmt = stmt.where((ActionRow.ended_at.is_(None)) | (ActionRow.ended_at > since))
    if besides is not None:
        stmt = stmt.where(ActionRow.id != besides)
    return list(session.scalars(stmt))


# --- responses ------------------------------------------------------------------------------------


class Answer(TypedDict):
    """An answer to an item, as recorded: when, by whom, on which channel, recorded by whom."""

    feedback_id: int
    responded_at: datetime
    responder: str
    channel: str
    recorded_by: str


def add_response(session: Session, *, now: datetime, **answer: Unpack[Answer]) -> ResponseRow:
    row = ResponseRow(**answer, created_at=now)
    session.add(row)
    session.flush()
    return row


def responses_of(session: Session, *, feedback_id: int) -> list[ResponseRow]:
    return list(
        session.scalars(
            select(ResponseRow)
            .where(ResponseRow.feedback_id == feedback_id)
            .order_by(ResponseRow.responded_at, ResponseRow.id)
        )
    )


def response_dict(row: ResponseRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "feedback_id": row.feedback_id,
        "responded_at": row.responded_at.isoformat(),
        "responder": row.responder,
        "channel": row.channel,
        "recorded_by": row.recorded_by,
    }


RESPONSE_GROUPS = ("region", "channel", "severity", "brand")


def response_metrics(
    session: Session,
    *,
    flt: FeedbackFilter,
    by: str,
    severe_aspects: Sequence[str],
    within_hours: float,
    now: datetime,
) -> list[dict[str, Any]]:
    """Per group of the negative items under ``flt`` (``by``: region, channel, brand, all, or
    severity: ``severe`` when an item carries a negative tag of a severity aspect, else
    ``negative``): items, answered, answered within ``within_hours`` of being posted, and the
    median hours to the first answer. An item younger than ``within_hours`` that is not
    answered yet is not counted as missed: it is left out of the within-share."""
    if by not in RESPONSE_GROUPS and by != "all":
        raise ValueError(f"group by one of {list(RESPONSE_GROUPS)}")
    first = (
        select(ResponseRow.feedback_id, func.min(ResponseRow.responded_at).label("first"))
        .group_by(ResponseRow.feedback_id)
        .subquery()
    )
    severe = (
        select(AspectScoreRow.feedback_id)
        .where(
            AspectScoreRow.feedback_id == FeedbackRow.id,
            AspectScoreRow.aspect.in_(list(severe_aspects) or [""]),
            AspectScoreRow.sentiment == "negative",
        )
        .exists()
    )
    stmt = (
        select(
            FeedbackRow.region,
            FeedbackRow.channel,
            FeedbackRow.brand,
            severe.label("severe"),
            FeedbackRow.created_at,
            first.c.first,
        )
        .select_from(FeedbackRow)
        .join(
            ScoreRow, and_(ScoreRow.feedback_id == FeedbackRow.id, ScoreRow.sentiment == "negative")
        )
        .outerjoin(first, first.c.feedback_id == FeedbackRow.id)
        .where(canonical())
    )
    groups: dict[str, dict[str, Any]] = {}
    window = timedelta(hours=within_hours)
    for region, channel, brand, is_severe, created, answered in session.execute(flt.apply(stmt)):
        key = {
            "region": region,
            "channel": channel,
            "brand": brand,
            "all": "all",
            "severity": "severe" if is_severe else "negative",
        }[by] or "(none)"
        g = groups.setdefault(
            key,
            {"group": key, "negative_items": 0, "answered": 0, "due": 0, "within": 0, "_hours": []},
        )
        g["negative_items"] += 1
        if answered is not None:
            g["answered"] += 1
            g["_hours"].append(max((answered - created).total_seconds() / 3600.0, 0.0))
        if answered is not None and answered - created <= window:
            g["within"] += 1
            g["due"] += 1
        elif now - created >= window:
            g["due"] += 1
    out = []
    for g in sorted(groups.values(), key=lambda g: -g["negative_items"]):
        hours = g.pop("_hours")
        g["answered_share"] = (
            round(g["answered"] / g["negative_items"], 4) if g["negative_items"] else None
        )
        g["within_share"] = round(g["within"] / g["due"], 4) if g["due"] else None
        g["median_hours_to_answer"] = round(statistics.median(hours), 2) if hours else None
        out.append(g)
    return out


def alert_action_metrics(
    session: Session,
    *,
    since: datetime | None,
    until: datetime | None,
    days: float,
    now: datetime,
    regions: tuple[str, ...] | None = None,
    brands: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Per alert severity: alerts first raised in the window, the share with an action linked
    within ``days`` of being raised (alerts younger than that and without one are not counted
    yet); and of actions with a due date that is past or met, the share completed by it."""
    stmt = select(AlertRow.id, AlertRow.severity, AlertRow.first_detected_at)
    if since is not None:
        stmt = stmt.where(AlertRow.first_detected_at >= since)
    if until is not None:
        stmt = stmt.where(AlertRow.first_detected_at < until)
    if regions is not None:
        stmt = stmt.where(AlertRow.region.in_(regions))
    if brands is not None:
        stmt = stmt.where(AlertRow.brand.in_(brands))
    alerts = session.execute(stmt).all()
    linked: dict[int, datetime] = {}
    if alerts:
        ids = [a.id for a in alerts]
        for i in range(0, len(ids), 500):
            q = (
                select(
                    ActionAlertRow.alert_id,
                    func.min(ActionAlertRow.linked_at),
                    func.min(ActionRow.started_at),
                )
                .join(ActionRow, ActionRow.id == ActionAlertRow.action_id)
                .where(
                    ActionAlertRow.alert_id.in_(ids[i : i + 500]), ActionRow.status != "cancelled"
                )
                .group_by(ActionAlertRow.alert_id)
            )
            for alert_id, linked_at, _started in session.execute(q):
                linked[alert_id] = linked_at
    window = timedelta(days=days)
    by_sev: dict[str, dict[str, Any]] = {}
    for a in alerts:
        g = by_sev.setdefault(
            a.severity,
            {
                "severity": a.severity,
                "alerts": 0,
                "with_action": 0,
                "due": 0,
                "with_action_in_time": 0,
            },
        )
        g["alerts"] += 1
        t = linked.get(a.id)
        if t is not None:
            g["with_action"] += 1
        if t is not None and t - a.first_detected_at <= window:
            g["with_action_in_time"] += 1
            g["due"] += 1
        elif now - a.first_detected_at >= window:
            g["due"] += 1
    for g in by_sev.values():
        g["share_with_action_in_time"] = (
            round(g["with_action_in_time"] / g["due"], 4) if g["due"] else None
        )
    astmt = ActionScope(regions, brands).apply(
        select(ActionRow).where(ActionRow.due_at.is_not(None), ActionRow.status != "cancelled")
    )
    due = done_in_time = 0
    for row in session.scalars(astmt):
        if row.completed_at is not None and row.completed_at <= row.due_at:
            due += 1
            done_in_time += 1
        elif row.due_at <= now:
            due += 1
    return {
        "days": days,
        "by_severity": [by_sev[k] for k in sorted(by_sev)],
        "actions_due": due,
        "actions_completed_by_due_date": done_in_time,
        "share_completed_by_due_date": round(done_in_time / due, 4) if due else None,
    }
