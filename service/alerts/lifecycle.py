"""An alert's life: raised from a finding, updated while it lasts, acknowledged, resolved, cooled
down; and the response metrics (acknowledged within the deadline of its severity).

``apply`` turns one finding into an alert:

* while an alert with the finding's key (rule, brand, aspect, segment) is open or acknowledged,
  the finding *updates* it (observed value, magnitude, last detection) instead of raising
  another: an ongoing shift is one alert;
* after an alert is resolved, its key stays quiet for ``cooldown_hours``;
* the same ``as_of`` applied twice changes nothing (``radar alerts run`` is idempotent).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy.orm import Session

from service.alerts.findings import Finding, RunReport
from service.alerts.rules import AlertConfig
from service.store import alerts as alerts_repo
from service.store.access import audit
from service.store.alerts import AlertScope
from service.store.tables import AlertRow

# what a finding sets on the alert it raises, and changes on the open alert of its key
UPDATED_BY_FINDING = ("title", "severity", "baseline", "observed", "magnitude", "confidence")


def same_incident(session: Session, f: Finding) -> AlertRow | None:
    """An open alert of the same rule, brand and segment about one of the finding's aspects
    (a merged incident whose strongest signal changed from one run to the next)."""
    for row in alerts_repo.unresolved(session, rule=f.rule, brand=f.brand, segment=f.segment):
        if set(json.loads(row.details or "{}").get("aspects", [])) & set(f.details["aspects"]):
            return row
    return None


def apply(
    session: Session,
    f: Finding,
    as_of: datetime,
    actor: str,
    report: RunReport,
    config: AlertConfig,
) -> None:
    last = alerts_repo.latest_by_key(session, key=f.key)
    if (last is None or last.status == "resolved") and f.details.get("aspects"):
        last = same_incident(session, f) or last
    values = {name: getattr(f, name) for name in UPDATED_BY_FINDING}
    values["details"] = json.dumps(f.details, ensure_ascii=False, default=str)
    if last is not None and last.status != "resolved":
        if as_of <= last.last_detected_at or all(getattr(last, k) == v for k, v in values.items()):
            report.unchanged.append(last.id)
            return
        if f.onset is not None and last.onset is not None and f.onset > last.onset:
            # the rise goes on, but the rule's window no longer reaches back to its onset: the
            # later step the finding measures would describe the alert from inside its own rise
            # (the "expected" rate inflated by the rise's first weeks, "since" a later date than
            # the alert's onset). The alert keeps what it said from its onset; still detected.
            last.last_detected_at = as_of
            report.unchanged.append(last.id)
            return
        for k, v in values.items():
            setattr(last, k, v)
        last.last_detected_at, last.updated_at = as_of, as_of
        alerts_repo.add_event(
            session,
            alert=last,
            at=as_of,
            actor=actor,
            action="updated",
            note=f"observed {f.observed}, magnitude {f.magnitude}",
        )
        report.updated.append(last.id)
        return
    if (
        last is not None
        and last.resolved_at
        and as_of < last.resolved_at + timedelta(hours=config.cooldown_hours)
    ):
        report.cooling_down.append(f.key)
        return
    row = alerts_repo.insert_alert(
        session,
        key=f.key,
        rule=f.rule,
        type=f.type,
        status="open",
        brand=f.brand,
        region=f.region,
        aspect=f.aspect,
        segment=json.dumps(f.segment, ensure_ascii=False),
        metric=f.metric,
        onset=f.onset,
        first_detected_at=as_of,
        last_detected_at=as_of,
        deadline_at=as_of + timedelta(hours=config.deadline_hours(f.severity)),
        created_at=as_of,
        updated_at=as_of,
        **values,
    )
    alerts_repo.add_event(session, alert=row, at=as_of, actor=actor, action="raised", note=f.title)
    report.raised.append(row.id)


def fold(
    session: Session, f: Finding, *, alert_id: int, as_of: datetime, actor: str, report: RunReport
) -> None:
    """A single severe complaint inside an open crisis incident: listed in the incident's
    ``also`` (once), not raised."""
    row = alerts_repo.get_alert(session, alert_id=alert_id)
    if row is None:
        return
    details = json.loads(row.details or "{}")
    also = details.setdefault("also", [])
    item = f.segment.get("item")
    if any(a.get("item") == item for a in also):
        report.unchanged.append(row.id)
        return
    also.append({"title": f.title, "item": item, "aspect": f.aspect})
    row.details = json.dumps(details, ensure_ascii=False, default=str)
    row.updated_at = as_of
    alerts_repo.add_event(
        session, alert=row, at=as_of, actor=actor, action="updated", note=f"folded in: {f.title}"
    )
    report.updated.append(row.id)


def absorb_into_crises(session: Session, *, as_of: datetime, actor: str, report: RunReport) -> None:
    """Severe-complaint alerts raised before a burst reached its threshold, about items of that
    burst, become part of the crisis: resolved with a note naming it, listed in its ``also``."""
    for crisis in alerts_repo.list_alerts(
        session, statuses=("open", "acknowledged"), types=("crisis_spike",)
    ):
        details = json.loads(crisis.details or "{}")
        items = set(details.get("items", []))
        if not items:
            continue
        also = details.setdefault("also", [])
        changed = False
        for row in alerts_repo.unresolved(
            session, rule="", brand=crisis.brand, types=["severe_complaint"]
        ):
            item = json.loads(row.segment).get("item")
            if item not in items:
                continue
            if not any(a.get("item") == item for a in also):
                also.append(
                    {"title": row.title, "item": item, "aspect": row.aspect, "alert": row.id}
                )
            transition(
                session,
                row,
                "resolved",
                actor=actor,
                note=f"part of crisis alert {crisis.id}",
                now=as_of,
                commit=False,
            )
            report.folded.append({"alert": row.id, "into": crisis.id})
            changed = True
        if changed:
            crisis.details = json.dumps(details, ensure_ascii=False, default=str)
            crisis.updated_at = as_of


TRANSITIONS = {
    "open": {"acknowledged", "resolved"},
    "acknowledged": {"resolved"},
    "resolved": {"open"},
}


class TransitionError(ValueError):
    pass


def transition(
    session: Session,
    alert: AlertRow,
    status: str,
    *,
    actor: str,
    note: str | None = None,
    now: datetime | None = None,
    commit: bool = True,
) -> AlertRow:
    """open → acknowledged → resolved (or open → resolved; resolved → open reopens)."""
    now = now or datetime.now(UTC)
    if status == alert.status:
        return alert
    if status not in TRANSITIONS.get(alert.status, set()):
        raise TransitionError(f"alert {alert.id} is {alert.status}; it cannot become {status}")
    if status == "acknowledged":
        alert.acknowledged_by, alert.acknowledged_at = actor, now
    elif status == "resolved":
        alert.resolved_by, alert.resolved_at = actor, now
    else:
        alert.resolved_by = alert.resolved_at = None
    alert.status, alert.updated_at = status, now
    alerts_repo.add_event(session, alert=alert, at=now, actor=actor, action=status, note=note)

    audit(session, actor=actor, action=f"alert.{status}", target=f"alert:{alert.id}", now=now)
    if commit:
        session.commit()
    return alert


def response_metrics(session: Session, scope: AlertScope = AlertScope()) -> dict:
    """Share of alerts acknowledged within their deadline, by severity and by region."""
    rows = alerts_repo.response_rows(session, scope=scope)
    now = datetime.now(UTC)

    def summarise(group: list) -> dict:
        n = len(group)
        answered = [r for r in group if (r[3] or r[4]) is not None]
        on_time = [r for r in answered if (r[3] or r[4]) <= r[5]]
        hours = sorted(((r[3] or r[4]) - r[2]).total_seconds() / 3600 for r in answered)
        overdue = [r for r in group if (r[3] or r[4]) is None and r[6] != "resolved" and now > r[5]]
        return {
            "alerts": n,
            "acknowledged": len(answered),
            "acknowledged_within_deadline": len(on_time),
            "share_within_deadline": round(len(on_time) / n, 4) if n else None,
            "median_hours_to_acknowledge": round(float(np.median(hours)), 2) if hours else None,
            "open_overdue": len(overdue),
        }

    by_sev: dict[str, list] = {}
    by_region: dict[str, list] = {}
    for r in rows:
        by_sev.setdefault(r[0], []).append(r)
        by_region.setdefault(r[1] or "(all regions)", []).append(r)
    return {
        "overall": summarise(list(rows)),
        "by_severity": {k: summarise(v) for k, v in sorted(by_sev.items())},
        "by_region": {k: summarise(v) for k, v in sorted(by_region.items())},
    }
