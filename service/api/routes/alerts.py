"""Alerts: list, read, acknowledge/resolve, response metrics (``service/alerts``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, Field

from service.alerts import lifecycle
from service.api.deps import AnalystDep, NamesDep, ReaderDep, SessionDep, SettingsDep
from service.api.errors import ApiError
from service.api.filters import resolve_names
from service.api.routing import DictRouter
from service.api.schemas import AlertList, AlertMetrics, AlertPublic, DbInt, require_storable
from service.store import alerts as alerts_repo
from service.store.alerts import AlertScope, alert_dict
from service.store.paging import Page
from service.store.tables import AlertRow

router = DictRouter(tags=["alerts"])


def _scope(caller, **kw) -> AlertScope:
    return AlertScope(regions=caller.regions, brands=caller.brands, **kw)


@router.get(
    "/alerts",
    response_model=AlertList,
    summary="Alerts, most severe and newest first",
)
def list_alerts(
    session: SessionDep,
    settings: SettingsDep,
    caller: ReaderDep,
    names: NamesDep,
    status: Annotated[list[Literal["open", "acknowledged", "resolved"]], Query()] = [],
    severity: Annotated[list[Literal["L1", "L2", "L3"]], Query()] = [],
    type: Annotated[list[str], Query(description="Rule type, e.g. preference_shift.")] = [],
    brand: Annotated[list[str], Query()] = [],
    region: Annotated[list[str], Query()] = [],
    limit: Annotated[int, Query(ge=1)] = 50,
    offset: Annotated[DbInt, Query(ge=0)] = 0,
) -> dict[str, Any]:
    brand = list(resolve_names(lambda: names.brands(session, brand), caller))
    region = list(resolve_names(lambda: names.regions(session, region), caller))
    limit = min(limit, settings.limits.page_size_max)
    rows = alerts_repo.list_alerts(
        session,
        scope=_scope(caller, severities=tuple(severity)),
        statuses=status,
        types=type,
        brands=brand,
        regions=region,
        limit=limit + 1,
        offset=offset,
    )
    page = Page.of(rows, offset=offset, limit=limit)
    return {"alerts": [alert_dict(r) for r in page.rows], "next_offset": page.next_offset}


@router.get(
    "/alerts/metrics",
    response_model=AlertMetrics,
    summary="Response metrics: alerts acknowledged within their deadline, by severity and region",
)
def alert_metrics(session: SessionDep, caller: ReaderDep) -> dict[str, Any]:
    return lifecycle.response_metrics(session, _scope(caller))


def _get(session, alert_id: int, caller) -> AlertRow:
    row = alerts_repo.get_alert(session, alert_id=alert_id, scope=_scope(caller))
    if row is None:
        raise ApiError(404, f"no alert {alert_id}")
    return row


@router.get(
    "/alerts/{alert_id}",
    response_model=AlertPublic,
    summary="One alert with its history",
)
def get_alert(alert_id: DbInt, session: SessionDep, caller: ReaderDep) -> dict[str, Any]:
    row = _get(session, alert_id, caller)
    return alert_dict(row, alerts_repo.events_of(session, alert_ids=[row.id]))


class AlertPatch(BaseModel):
    status: Literal["acknowledged", "resolved", "open"] = Field(
        description="acknowledged, resolved, or open to reopen."
    )
    note: str | None = Field(None, max_length=2000)


@router.patch(
    "/alerts/{alert_id}",
    response_model=AlertPublic,
    summary="Acknowledge, resolve or reopen an alert (who and when are recorded)",
)
def patch_alert(
    alert_id: DbInt, body: AlertPatch, session: SessionDep, caller: AnalystDep
) -> dict[str, Any]:
    require_storable(body)
    row = _get(session, alert_id, caller)
    try:
        lifecycle.transition(session, row, body.status, actor=caller.id, note=body.note)
    except lifecycle.TransitionError as exc:
        raise ApiError(409, str(exc)) from None
    return get_alert(alert_id, session, caller)
