"""Alerts: list, read, acknowledge/resolve, response metrics (``service/alerts``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, Field

from service.alerts import lifecycle
from service.api.deps import AnalystDep, NamesDep, ReaderDep, SessionDep
from service.api.errors import ApiError, found
from service.api.filters import SmallPagingDep, page_body, resolve_names
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
    caller: ReaderDep,
    names: NamesDep,
    paging: SmallPagingDep,
    status: Annotated[list[Literal["open", "acknowledged", "resolved"]], Query()] = [],
    severity: Annotated[list[Literal["L1", "L2", "L3"]], Query()] = [],
    type: Annotated[list[str], Query(description="Rule type, e.g. preference_shift.")] = [],
    brand: Annotated[list[str], Query()] = [],
    region: Annotated[list[str], Query()] = [],
) -> dict[str, Any]:
    brand = list(resolve_names(lambda: names.brands(session, brand), caller))
    region = list(resolve_names(lambda: names.regions(session, region), caller))
    rows = alerts_repo.list_alerts(
        session,
        scope=_scope(caller, severities=tuple(severity)),
        statuses=status,
        types=type,
        brands=brand,
        regions=region,
        limit=paging.limit + 1,
        offset=paging.offset,
    )
    page = Page.of(rows, offset=paging.offset, limit=paging.limit)
    return page_body("alerts", page, alert_dict)


@router.get(
    "/alerts/metrics",
    response_model=AlertMetrics,
    summary="Response metrics: alerts acknowledged within their deadline, by severity and region",
)
def alert_metrics(session: SessionDep, caller: ReaderDep) -> dict[str, Any]:
    return lifecycle.response_metrics(session, _scope(caller))


def _get(session, alert_id: int, caller) -> AlertRow:
    return found(
        alerts_repo.get_alert(session, alert_id=alert_id, scope=_scope(caller)), f"alert {alert_id}"
    )


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
