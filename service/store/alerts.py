"""The alert repository: every read and write of ``alert`` and ``alert_event`` rows.

The engine, the lifecycle, the API routes, the CLI, the digest and the scheduler all go through
these keyword-only functions; nobody else builds a query on ``AlertRow``. An alert's scope is
the caller's: of their brands, and (for a regional scope) of their regions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from service.store.tables import AlertEventRow, AlertRow

ORDER = (
    AlertRow.severity,
    AlertRow.last_detected_at.desc(),
    AlertRow.id.desc(),
)  # most severe, newest first


@dataclass(frozen=True)
class AlertScope:
    """What alerts a reader may see (``None``: unrestricted), and the filters of a listing."""

    regions: tuple[str, ...] | None = None
    brands: tuple[str, ...] | None = None
    aspects: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    nothing: bool = False

    def apply(self, stmt: Select) -> Select:
        if self.nothing:
            return stmt.where(AlertRow.id < 0)
        if self.regions:
            stmt = stmt.where(AlertRow.region.in_(self.regions))
        if self.brands:
            stmt = stmt.where(AlertRow.brand.in_(self.brands))
        if self.aspects:
            stmt = stmt.where(AlertRow.aspect.in_(self.aspects))
        if self.severities:
            stmt = stmt.where(AlertRow.severity.in_(self.severities))
        return stmt


def alert_dict(row: AlertRow, events: Sequence[AlertEventRow] | None = None) -> dict:
    out = {
        "id": row.id,
        "rule": row.rule,
        "type": row.type,
        "severity": row.severity,
        "status": row.status,
        "title": row.title,
        "brand": row.brand,
        "region": row.region,
        "aspect": row.aspect,
        "segment": json.loads(row.segment),
        "metric": row.metric,
        "baseline": row.baseline,
        "observed": row.observed,
        "magnitude": row.magnitude,
        "confidence": row.confidence,
        "onset": row.onset.isoformat() if row.onset else None,
        "first_detected_at": row.first_detected_at.isoformat(),
        "last_detected_at": row.last_detected_at.isoformat(),
        "deadline_at": row.deadline_at.isoformat(),
        "acknowledged_by": row.acknowledged_by,
        "acknowledged_at": row.acknowledged_at.isoformat() if row.acknowledged_at else None,
        "resolved_by": row.resolved_by,
        "resolved_at": row.resolved_at.isoformat() if row.resolved_at else None,
        "details": json.loads(row.details),
    }
    if events is not None:
        out["events"] = [
            {"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "note": e.note}
            for e in events
        ]
    return out


# --- reads ------------------------------------------------------------------------------------


def list_alerts(
    session: Session,
    *,
    scope: AlertScope = AlertScope(),
    statuses: Sequence[str] = (),
    types: Sequence[str] = (),
    brands: Sequence[str] = (),
    regions: Sequence[str] = (),
    exclude_types: Sequence[str] = (),
    limit: int | None = None,
    offset: int = 0,
    oldest_first: bool = False,
) -> list[AlertRow]:
    stmt = scope.apply(select(AlertRow))
    for col, values in (
        (AlertRow.status, statuses),
        (AlertRow.type, types),
        (AlertRow.brand, brands),
        (AlertRow.region, regions),
    ):
        if values:
            stmt = stmt.where(col.in_(list(values)))
    if exclude_types:
        stmt = stmt.where(AlertRow.type.not_in(list(exclude_types)))
    stmt = (
        stmt.order_by(AlertRow.first_detected_at, AlertRow.id)
        if oldest_first
        else stmt.order_by(*ORDER)
    )
    if offset:
        stmt = stmt.offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def count_alerts(session: Session, *, types: Sequence[str] = ()) -> dict[str, int]:
    """How many alerts of ``types`` (empty: every type) there are, by severity."""
    stmt = select(AlertRow.severity, func.count()).group_by(AlertRow.severity)
    if types:
        stmt = stmt.where(AlertRow.type.in_(list(types)))
    return {sev: int(n) for sev, n in session.execute(stmt)}


def get_alert(
    session: Session, *, alert_id: int, scope: AlertScope = AlertScope()
) -> AlertRow | None:
    return session.scalars(scope.apply(select(AlertRow).where(AlertRow.id == alert_id))).first()


def events_of(
    session: Session,
    *,
    alert_ids: Sequence[int],
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AlertEventRow]:
    stmt = select(AlertEventRow).where(AlertEventRow.alert_id.in_(list(alert_ids)))
    if since is not None:
        stmt = stmt.where(AlertEventRow.at >= since)
    if until is not None:
        stmt = stmt.where(AlertEventRow.at < until)
    return list(session.scalars(stmt.order_by(AlertEventRow.at, AlertEventRow.id)))


def active_between(
    session: Session, *, scope: AlertScope, start: datetime, end: datetime
) -> list[AlertRow]:
    """Alerts raised before ``end`` and not resolved before ``start`` (a digest period's)."""
    stmt = scope.apply(select(AlertRow)).where(
        AlertRow.first_detected_at < end,
        or_(AlertRow.resolved_at.is_(None), AlertRow.resolved_at >= start),
    )
    return list(
        session.scalars(
            stmt.order_by(AlertRow.severity, AlertRow.first_detected_at.desc(), AlertRow.id.desc())
        )
    )


def raised_between(
    session: Session, *, scope: AlertScope, start: datetime, end: datetime
) -> list[AlertRow]:
    """Alerts first raised in ``[start, end]``, oldest first (immediate deliveries)."""
    stmt = scope.apply(select(AlertRow)).where(
        AlertRow.first_detected_at >= start, AlertRow.first_detected_at <= end
    )
    return list(session.scalars(stmt.order_by(AlertRow.first_detected_at, AlertRow.id)))


def latest_by_key(session: Session, *, key: str) -> AlertRow | None:
    return session.scalars(
        select(AlertRow).where(AlertRow.key == key).order_by(AlertRow.id.desc()).limit(1)
    ).first()


def unresolved(
    session: Session,
    *,
    rule: str,
    brand: str | None,
    segment: dict | None = None,
    types: Sequence[str] = (),
) -> list[AlertRow]:
    """Open or acknowledged alerts of ``rule`` (any rule when empty) for a brand, oldest first;
    of one segment when given."""
    stmt = select(AlertRow).where(AlertRow.status != "resolved", AlertRow.brand == brand)
    if rule:
        stmt = stmt.where(AlertRow.rule == rule)
    if segment is not None:
        stmt = stmt.where(AlertRow.segment == json.dumps(segment, ensure_ascii=False))
    if types:
        stmt = stmt.where(AlertRow.type.in_(list(types)))
    return list(session.scalars(stmt.order_by(AlertRow.id)))


def response_rows(session: Session, *, scope: AlertScope = AlertScope()) -> list[tuple]:
    """``(severity, region, first_detected_at, acknowledged_at, resolved_at, deadline_at, status)``."""
    return list(
        session.execute(
            scope.apply(
                select(
                    AlertRow.severity,
                    AlertRow.region,
                    AlertRow.first_detected_at,
                    AlertRow.acknowledged_at,
                    AlertRow.resolved_at,
                    AlertRow.deadline_at,
                    AlertRow.status,
                )
            )
        )
    )


# --- writes -----------------------------------------------------------------------------------


def add_event(
    session: Session,
    *,
    alert: AlertRow,
    at: datetime,
    actor: str,
    action: str,
    note: str | None = None,
) -> None:
    session.add(AlertEventRow(alert_id=alert.id, at=at, actor=actor, action=action, note=note))


def insert_alert(session: Session, **values) -> AlertRow:
    row = AlertRow(**values)
    session.add(row)
    session.flush()
    return row


def scrub_quotes(session: Session, *, gone: set[int]) -> int:
    """Remove the quotes and item ids of erased items from every alert; returns how many alerts
    changed."""
    changed = 0
    for alert in session.scalars(select(AlertRow)):
        details = json.loads(alert.details or "{}")
        quotes = details.get("quotes") or []
        kept = [q for q in quotes if q.get("id") not in gone]
        items = details.get("items") or []
        kept_items = [i for i in items if i not in gone]
        if len(kept) != len(quotes) or len(kept_items) != len(items):
            details["quotes"] = kept
            if items:
                details["items"] = kept_items
            alert.details = json.dumps(details, ensure_ascii=False, default=str)
            changed += 1
    return changed
