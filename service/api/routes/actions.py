"""Actions (what the team changed, and whether it worked), pilot plans, answers to items and the
response metrics (``service/store/actions.py``, ``service/analytics/effects.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, StringConstraints, field_validator

from service.analytics import effects
from service.api.deps import AnalystDep, ReaderDep, SessionDep, SettingsDep, WriterDep
from service.api.errors import ApiError, found
from service.api.filters import FilterDep, SmallPagingDep, page_body
from service.api.routes.labels import visible_item
from service.api.schemas import DbInt, require_storable
from service.store import actions as store
from service.store import alerts as alerts_repo
from service.store import repo
from service.store.paging import Page

router = APIRouter(tags=["actions"])

Kind = Literal["product", "packaging", "price", "service", "delivery", "communication", "other"]
MetricName = Literal["negative_share", "net_sentiment", "volume", "rating"]
Segment = dict[
    Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")],
    Annotated[str, Field(min_length=1, max_length=256)],
]


def _aware(v: datetime | None) -> datetime | None:
    if v is not None and v.tzinfo is None:
        return v.replace(tzinfo=UTC)
    return v


class _Where(BaseModel):
    brand: str | None = Field(None, max_length=128, description="A brand id; default our brand.")
    product: str | None = Field(None, max_length=256)
    segment: Segment = Field(
        ...,
        min_length=1,
        max_length=3,
        description='Where: dimension → value, e.g. {"region": "East", "age_group": "18-24"}.',
    )
    aspect: str | None = Field(
        None, max_length=64, description="The aspect the metric reads (a taxonomy id)."
    )
    metric: MetricName = "negative_share"
    min_effect: float | None = Field(
        None,
        gt=0,
        description="The smallest change worth detecting, in the metric's "
        "units (a share as a fraction: 0.05 is 5 points).",
    )
    controls: list[Segment] | None = Field(
        None,
        max_length=20,
        description="Control segments; default chosen "
        "automatically by how parallel they ran before.",
    )


class ActionIn(_Where):
    title: str = Field(..., min_length=1, max_length=200, description="What changed, in a line.")
    description: str = Field("", max_length=4000)
    kind: Kind = "other"
    started_at: datetime
    ended_at: datetime | None = None
    owner: str | None = Field(None, max_length=128)
    due_at: datetime | None = None
    alert_ids: list[DbInt] = Field(
        default_factory=list, max_length=50, description="The alerts it answers."
    )

    _tz = field_validator("started_at", "ended_at", "due_at")(_aware)


class ActionPatch(BaseModel):
    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=4000)
    owner: str | None = Field(None, max_length=128)
    due_at: datetime | None = None
    ended_at: datetime | None = None
    status: Literal["planned", "active", "completed", "cancelled"] | None = None
    min_effect: float | None = Field(None, gt=0)
    controls: list[Segment] | None = None
    add_alert_ids: list[DbInt] = Field(default_factory=list, max_length=50)

    _tz = field_validator("due_at", "ended_at")(_aware)


class CloseIn(BaseModel):
    status: Literal["completed", "cancelled"] = "completed"
    ended_at: datetime | None = Field(
        None,
        description="When the change stopped (a limited edition); leave out "
        "for a change that stays.",
    )

    _tz = field_validator("ended_at")(_aware)


class PlanIn(_Where):
    pre_weeks: int = Field(8, ge=3, le=52, description="Weeks of history that set the noise.")
    as_of: datetime | None = Field(
        None, description="Plan from the weeks before this moment; default now."
    )

    _tz = field_validator("as_of")(_aware)


class ActionPublic(BaseModel):
    id: int
    title: str
    description: str
    kind: str
    brand: str
    product: str | None
    segment: dict[str, str]
    aspect: str | None
    metric: str
    min_effect: float | None
    controls: list[dict[str, str]] | None
    started_at: str
    ended_at: str | None
    owner: str | None
    due_at: str | None
    status: str
    completed_at: str | None
    alert_ids: list[int]
    created_by: str
    created_at: str
    updated_at: str
    overdue: bool = Field(False, description="Past its due date and not completed.")
    effect: EffectPublic | None = None


class SeriesPoint(BaseModel):
    week: str
    period: Literal["before", "after", "between"]
    treated: float | None
    control: float | None
    treated_items: int
    control_items: int


class EffectPublic(BaseModel):
    metric: str
    aspect: str | None
    segment: dict[str, str]
    start: str
    end: str | None
    verdict: str = Field(
        description="worked, got_worse, no_effect_yet, no_effect, inconclusive (the pre-trend "
        "check failed), rose/fell (volume), not_yet (no complete week after the start), "
        "unavailable (cannot be estimated: see message)."
    )
    message: str
    summary: str
    effect: float | None = Field(
        None, description="Difference in differences, in the metric's units."
    )
    lower: float | None = None
    upper: float | None = None
    se: float | None = None
    p_value: float | None = None
    df: int | None = None
    weeks_before: int | None = None
    weeks_after: int | None = None
    pre_trend: dict[str, Any] | None = None
    treated: dict[str, float | None] = Field(default_factory=dict)
    control: dict[str, float | None] = Field(default_factory=dict)
    min_effect: float | None = None
    more_weeks: int | None = None
    controls_chosen_by: str | None = None
    controls: list[dict[str, Any]] = Field(default_factory=list)
    series: list[SeriesPoint] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


ActionPublic.model_rebuild()


class ActionPage(BaseModel):
    actions: list[ActionPublic]
    next_offset: int | None


class PlanPublic(BaseModel):
    metric: str
    aspect: str | None
    segment: dict[str, str]
    min_effect: float
    weeks: int | None = Field(
        description="Weeks the pilot must run to detect min_effect with probability 0.8; "
        "null: more than 52."
    )
    power_at_weeks: float | None = Field(
        description="That probability: the power averaged over the uncertainty "
        "of the noise, times the pre-trend check's 95%."
    )
    noise_sd: float | None
    weeks_of_history: int
    items_per_week: float
    controls: list[dict[str, Any]]
    detectable_by_week: list[dict[str, Any]]
    message: str


class ResponseIn(BaseModel):
    responded_at: datetime | None = Field(None, description="When it was answered; default now.")
    responder: str = Field(
        ..., min_length=1, max_length=128, description="Who answered (a person or a team)."
    )
    channel: str = Field(
        "other", min_length=1, max_length=32, description="How: email, phone, public_reply, …"
    )

    _tz = field_validator("responded_at")(_aware)


class ResponsePublic(BaseModel):
    id: int
    feedback_id: int
    responded_at: str
    responder: str
    channel: str
    recorded_by: str


class ItemResponses(BaseModel):
    feedback_id: int
    responses: list[ResponsePublic]


class ResponseGroup(BaseModel):
    group: str
    negative_items: int
    answered: int
    answered_share: float | None
    due: int = Field(description="Items answered in time or old enough to have been.")
    within: int
    within_share: float | None = Field(
        description="Share of the due items answered within the hours asked."
    )
    median_hours_to_answer: float | None


class ResponseMetrics(BaseModel):
    by: str
    within_hours: float
    groups: list[ResponseGroup]
    alerts: dict[str, Any] = Field(
        description="Per alert severity: the share with an action within `action_days`; "
        "actions completed by their due date."
    )


# --- helpers --------------------------------------------------------------------------------------


def _scope(caller) -> store.ActionScope:
    return store.ActionScope(regions=caller.regions, brands=caller.brands)


def _invalid(errors: list[dict], message: str) -> ApiError:
    """The 422 of ``effects.check_where``'s errors (fields of the body)."""
    return ApiError(
        422, message, [{"field": f"body.{e['field']}", "message": e["message"]} for e in errors]
    )


def _checked_brand(settings, caller, body: _Where) -> str:
    """The brand an action or a pilot is about (default ours), once its "where" and metric are
    checked and found within the caller's data scope."""
    brand = settings.competitors.our_brand if body.brand in (None, "", "ours") else body.brand
    errors = effects.check_where(
        aspects=settings.taxonomy.ids,
        **body.model_dump(include={"segment", "aspect", "metric", "controls"}),
    )
    if errors:
        raise _invalid(errors, "; ".join(f"{e['field']}: {e['message']}" for e in errors))
    if not _scope(caller).admits(body.segment.get("region"), brand):
        raise ApiError(
            403,
            "the action is outside your data scope (brand, or region: a regional key must name "
            "one of its regions in the segment)",
        )
    return brand


def _check_end(ended_at: datetime | None, started_at: datetime) -> None:
    if ended_at is not None and ended_at <= started_at:
        raise ApiError(
            422,
            "ended_at must be after started_at",
            [{"field": "body.ended_at", "message": "before the start"}],
        )


def _visible_alerts(session, caller, ids: list[int], field: str) -> None:
    scope = alerts_repo.AlertScope(regions=caller.regions, brands=caller.brands)
    for i, a in enumerate(ids):
        if alerts_repo.get_alert(session, alert_id=a, scope=scope) is None:
            raise ApiError(
                422,
                f"no alert {a}",
                [{"field": f"{field}.{i}", "message": "no such alert in your scope"}],
            )


def public(session, row, *, with_effect: bool, now: datetime) -> dict[str, Any]:
    data = store.action_dict(row, store.alerts_of(session, action_ids=[row.id])[row.id])
    data["overdue"] = bool(
        row.due_at and row.due_at < now and row.status not in ("completed", "cancelled")
    )
    if with_effect and row.status != "cancelled" and row.started_at <= now:
        data["effect"] = effects.action_effect_dict(session, action=data, now=now)
    return data


def _committed(session, row, now: datetime) -> dict[str, Any]:
    """Commit the change to the action ``row``, and answer with the action, its effect included."""
    session.commit()
    return public(session, row, with_effect=True, now=now)


def _updated(
    session, caller, row, changes: dict[str, Any], alert_ids: Sequence[int] = ()
) -> dict[str, Any]:
    """The action ``row`` with ``changes`` made and linked to ``alert_ids``, committed."""
    now = datetime.now(UTC)
    store.update_action(session, row=row, changes=changes, now=now, actor=caller.id)
    if alert_ids:
        store.link_alerts(session, action_id=row.id, alert_ids=alert_ids, now=now, actor=caller.id)
    return _committed(session, row, now)


def _get(session, caller, action_id: int):
    return found(
        store.get_action(session, action_id=action_id, scope=_scope(caller)), f"action {action_id}"
    )


# --- routes ---------------------------------------------------------------------------------------


@router.post(
    "/actions",
    response_model=ActionPublic,
    status_code=201,
    summary="Record an action: what changed, where, from when, the alerts it answers",
)
def create_action(
    body: ActionIn, session: SessionDep, settings: SettingsDep, caller: AnalystDep
) -> dict[str, Any]:
    require_storable(body.model_dump())
    brand = _checked_brand(settings, caller, body)
    _check_end(body.ended_at, body.started_at)
    _visible_alerts(session, caller, body.alert_ids, "body.alert_ids")
    now = datetime.now(UTC)
    row = store.create_action(
        session, **body.model_dump(exclude={"brand"}), brand=brand, actor=caller.id, now=now
    )
    return _committed(session, row, now)


@router.get(
    "/actions",
    response_model=ActionPage,
    summary="Actions in your scope, newest first, with their effect",
)
def list_actions(
    session: SessionDep,
    caller: ReaderDep,
    paging: SmallPagingDep,
    status: Annotated[list[Literal["planned", "active", "completed", "cancelled"]], Query()] = [],
    brand: Annotated[list[str], Query()] = [],
    alert_id: DbInt | None = None,
    effect: Annotated[bool, Query(description="Estimate each action's effect (slower).")] = True,
) -> dict[str, Any]:
    rows = store.list_actions(
        session,
        scope=_scope(caller),
        statuses=status,
        brands=brand,
        alert_id=alert_id,
        limit=paging.limit + 1,
        offset=paging.offset,
    )
    now = datetime.now(UTC)
    page = Page.of(rows, offset=paging.offset, limit=paging.limit)
    return page_body("actions", page, lambda r: public(session, r, with_effect=effect, now=now))


@router.get(
    "/actions/{action_id}",
    response_model=ActionPublic,
    summary="One action with its measured effect",
)
def get_action(
    action_id: DbInt, session: SessionDep, caller: ReaderDep, metric: MetricName | None = None
) -> dict[str, Any]:
    row = _get(session, caller, action_id)
    now = datetime.now(UTC)
    data = public(session, row, with_effect=metric is None, now=now)
    if metric is not None:
        data["effect"] = effects.action_effect_dict(session, action=data, now=now, metric=metric)
    return data


@router.patch(
    "/actions/{action_id}",
    response_model=ActionPublic,
    summary="Change an action: owner, due date, end, status, controls, more alerts",
)
def patch_action(
    action_id: DbInt, body: ActionPatch, session: SessionDep, caller: AnalystDep
) -> dict[str, Any]:
    require_storable(body.model_dump())
    row = _get(session, caller, action_id)
    changes = body.model_dump(exclude_unset=True, exclude={"add_alert_ids"})
    if changes.get("controls"):
        seg = store.action_dict(row)["segment"]
        errors = [
            e
            for e in effects.check_where(
                aspects=[], segment=seg, aspect=None, metric="volume", controls=changes["controls"]
            )
            if e["field"].startswith("controls")
        ]
        if errors:
            raise _invalid(errors, errors[0]["message"])
    _check_end(changes.get("ended_at"), row.started_at)
    _visible_alerts(session, caller, body.add_alert_ids, "body.add_alert_ids")
    return _updated(session, caller, row, changes, alert_ids=body.add_alert_ids)


@router.post(
    "/actions/{action_id}/close",
    response_model=ActionPublic,
    summary="Mark an action completed (or cancelled)",
)
def close_action(
    action_id: DbInt, body: CloseIn, session: SessionDep, caller: AnalystDep
) -> dict[str, Any]:
    row = _get(session, caller, action_id)
    if row.status in ("completed", "cancelled"):
        raise ApiError(409, f"action {action_id} is already {row.status}")
    _check_end(body.ended_at, row.started_at)
    return _updated(session, caller, row, body.model_dump(exclude_none=True))


@router.post(
    "/actions/plan",
    response_model=PlanPublic,
    summary="Plan a pilot: the weeks it must run to detect a minimum effect, and the controls that fit",
)
def plan_pilot(
    body: PlanIn, session: SessionDep, settings: SettingsDep, caller: AnalystDep
) -> dict[str, Any]:
    brand = _checked_brand(settings, caller, body)
    flt = repo.FeedbackFilter(brands=(brand,), products=(body.product,) if body.product else ())
    try:
        return effects.plan(
            session,
            **body.model_dump(exclude={"brand", "product", "as_of"}),
            flt=flt,
            now=body.as_of or datetime.now(UTC),
        ).to_dict()
    except effects.EffectError as exc:
        raise ApiError(422, str(exc)) from None


def _responses(session, feedback_id: int) -> dict[str, Any]:
    return {
        "feedback_id": feedback_id,
        "responses": [
            store.response_dict(r) for r in store.responses_of(session, feedback_id=feedback_id)
        ],
    }


@router.post(
    "/feedback/{feedback_id}/response",
    response_model=ItemResponses,
    status_code=201,
    summary="Record that an item was answered (from a CRM or by hand): when, by whom, how",
)
def add_response(
    feedback_id: DbInt, body: ResponseIn, session: SessionDep, caller: WriterDep
) -> dict[str, Any]:
    require_storable(body.model_dump())
    item = visible_item(session, caller, feedback_id)
    now = datetime.now(UTC)
    at = body.responded_at or now
    if at > now:
        raise ApiError(
            422,
            "responded_at is in the future",
            [{"field": "body.responded_at", "message": "after now"}],
        )
    if at < item.created_at:
        raise ApiError(
            422,
            "responded_at is before the item was posted",
            [{"field": "body.responded_at", "message": f"before {item.created_at.isoformat()}"}],
        )
    store.add_response(
        session,
        feedback_id=feedback_id,
        responded_at=at,
        responder=body.responder,
        channel=body.channel,
        recorded_by=caller.id,
        now=now,
    )
    session.commit()
    return _responses(session, feedback_id)


@router.get(
    "/feedback/{feedback_id}/response", response_model=ItemResponses, summary="An item's answers"
)
def item_responses(feedback_id: DbInt, session: SessionDep, caller: ReaderDep) -> dict[str, Any]:
    visible_item(session, caller, feedback_id)
    return _responses(session, feedback_id)


@router.get(
    "/responses/metrics",
    response_model=ResponseMetrics,
    summary="Response metrics: negative items answered within N hours, median time to answer; alerts with "
    "an action within N days; actions completed by their due date",
)
def response_metrics(
    session: SessionDep,
    settings: SettingsDep,
    flt: FilterDep,
    caller: ReaderDep,
    by: Literal["region", "channel", "severity", "brand"] = "region",
    within_hours: Annotated[float, Query(gt=0, le=24 * 90)] = 24.0,
    action_days: Annotated[float, Query(gt=0, le=365)] = 7.0,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    severe = [a.id for a in settings.taxonomy.aspects if a.kind == "severity"]
    groups = store.response_metrics(
        session, flt=flt, by=by, severe_aspects=severe, within_hours=within_hours, now=now
    )
    alerts = store.alert_action_metrics(
        session,
        since=flt.since,
        until=flt.until,
        days=action_days,
        now=now,
        regions=caller.regions,
        brands=caller.brands,
    )
    return {"by": by, "within_hours": within_hours, "groups": groups, "alerts": alerts}
