"""Alerts: list, read, acknowledge/resolve, response metrics (``service/alerts``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from service.alerts import engine as en
from service.api.deps import AnalystDep, ReaderDep, SessionDep, SettingsDep
from service.api.errors import ApiError
from service.api.schemas import DbInt, require_storable
from service.store.tables import AlertEventRow, AlertRow

router = APIRouter(tags=["alerts"])


def _scoped(stmt, caller):
    return en.scope_alerts(stmt, regions=caller.regions, brands=caller.brands)


@router.get("/alerts", summary="Alerts, most severe and newest first")
def list_alerts(session: SessionDep, settings: SettingsDep, caller: ReaderDep,
                status: Annotated[list[Literal["open", "acknowledged", "resolved"]], Query()] = [],
                severity: Annotated[list[Literal["L1", "L2", "L3"]], Query()] = [],
                type: Annotated[list[str], Query(description="Rule type, e.g. preference_shift.")] = [],
                brand: Annotated[list[str], Query()] = [], region: Annotated[list[str], Query()] = [],
                limit: Annotated[int, Query(ge=1)] = 50, offset: Annotated[DbInt, Query(ge=0)] = 0) -> dict[str, Any]:
    stmt = _scoped(select(AlertRow), caller)
    for col, values in ((AlertRow.status, status), (AlertRow.severity, severity), (AlertRow.type, type),
                        (AlertRow.brand, brand), (AlertRow.region, region)):
        if values:
            stmt = stmt.where(col.in_(values))
    limit = min(limit, settings.limits.page_size_max)
    rows = session.scalars(stmt.order_by(AlertRow.severity, AlertRow.last_detected_at.desc(), AlertRow.id.desc())
                           .offset(offset).limit(limit + 1)).all()
    return {"alerts": [en.alert_dict(r) for r in rows[:limit]],
            "next_offset": offset + limit if len(rows) > limit else None}


@router.get("/alerts/metrics", summary="Response metrics: alerts acknowledged within their deadline, by severity and region")
def alert_metrics(session: SessionDep, caller: ReaderDep) -> dict[str, Any]:
    return en.response_metrics(session, lambda stmt: _scoped(stmt, caller))


def _get(session, alert_id: int, caller) -> AlertRow:
    row = session.scalars(_scoped(select(AlertRow).where(AlertRow.id == alert_id), caller)).first()
    if row is None:
        raise ApiError(404, f"no alert {alert_id}")
    return row


@router.get("/alerts/{alert_id}", summary="One alert with its history")
def get_alert(alert_id: DbInt, session: SessionDep, caller: ReaderDep) -> dict[str, Any]:
    row = _get(session, alert_id, caller)
    events = session.scalars(select(AlertEventRow).where(AlertEventRow.alert_id == row.id).order_by(AlertEventRow.id)).all()
    return en.alert_dict(row, list(events))


class AlertPatch(BaseModel):
    status: Literal["acknowledged", "resolved", "open"] = Field(description="acknowledged, resolved, or open to reopen.")
    note: str | None = Field(None, max_length=2000)


@router.patch("/alerts/{alert_id}", summary="Acknowledge, resolve or reopen an alert (who and when are recorded)")
def patch_alert(alert_id: DbInt, body: AlertPatch, session: SessionDep, caller: AnalystDep) -> dict[str, Any]:
    require_storable(body)
    row = _get(session, alert_id, caller)
    try:
        en.transition(session, row, body.status, actor=caller.id, note=body.note)
    except en.TransitionError as exc:
        raise ApiError(409, str(exc)) from None
    return get_alert(alert_id, session, caller)
