"""Labels on items (corrections, the labeling queue) and the queue itself (``service/teach``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from service.api.deps import AnalystDep, RuntimeDep, SessionDep, SettingsDep
from service.api.errors import ApiError
from service.api.filters import FilterDep
from service.api.schemas import DbInt
from service.domain import Label, LabelTarget, StoredLabel
from service.store import labels as store
from service.store import repo

router = APIRouter(tags=["labels"])


class LabelsIn(BaseModel):
    labels: list[Label] = Field(..., min_length=1, max_length=200)
    source: Literal["correction", "queue"] = Field(
        "correction", description="Where the label was given."
    )


class ItemLabels(BaseModel):
    feedback_id: int
    labels: list[StoredLabel]


class LabelPage(BaseModel):
    labels: list[StoredLabel]
    next_after: int | None = Field(None, description="Pass as `after` for the next page.")


def visible_item(session, caller, feedback_id: int):
    """The stored item, or 404 when it does not exist or lies outside the caller's scope."""
    item = repo.get_feedback(session, feedback_id=feedback_id)
    if (
        item is None
        or (caller.regions is not None and item.region not in caller.regions)
        or (caller.brands is not None and item.brand not in caller.brands)
    ):
        raise ApiError(404, f"no feedback item {feedback_id}")
    return item


def _check_aspects(labels: list[Label], ids: list[str]) -> None:
    for i, lb in enumerate(labels):
        if lb.aspect is not None and lb.aspect not in ids:
            raise ApiError(
                422,
                f"aspect {lb.aspect!r} is not in the taxonomy",
                [{"field": f"body.labels.{i}.aspect", "message": f"not one of {ids}"}],
            )


@router.post(
    "/feedback/{feedback_id}/labels",
    response_model=ItemLabels,
    summary="Label an item: fix its sentiment, add or remove an aspect, set an aspect's sentiment",
)
def put_labels(
    feedback_id: DbInt,
    body: LabelsIn,
    session: SessionDep,
    settings: SettingsDep,
    caller: AnalystDep,
) -> dict[str, Any]:
    visible_item(session, caller, feedback_id)
    _check_aspects(body.labels, settings.taxonomy.ids)
    store.put_labels(
        session,
        feedback_id=feedback_id,
        labels=body.labels,
        source=body.source,
        actor=caller.id,
        now=datetime.now(UTC),
    )
    session.commit()
    return {
        "feedback_id": feedback_id,
        "labels": store.labels_of(session, feedback_ids=[feedback_id]).get(feedback_id, []),
    }


@router.get("/feedback/{feedback_id}/labels", response_model=ItemLabels, summary="An item's labels")
def item_labels(feedback_id: DbInt, session: SessionDep, caller: AnalystDep) -> dict[str, Any]:
    visible_item(session, caller, feedback_id)
    return {
        "feedback_id": feedback_id,
        "labels": store.labels_of(session, feedback_ids=[feedback_id]).get(feedback_id, []),
    }


@router.delete(
    "/feedback/{feedback_id}/labels",
    response_model=ItemLabels,
    summary="Remove an item's labels (all, or one target and aspect)",
)
def delete_labels(
    feedback_id: DbInt,
    session: SessionDep,
    caller: AnalystDep,
    target: LabelTarget | None = None,
    aspect: str | None = None,
) -> dict[str, Any]:
    visible_item(session, caller, feedback_id)
    store.delete_labels(
        session,
        feedback_id=feedback_id,
        target=target.value if target else None,
        aspect=aspect if aspect is not None else ("" if target == LabelTarget.sentiment else None),
    )
    session.commit()
    return {
        "feedback_id": feedback_id,
        "labels": store.labels_of(session, feedback_ids=[feedback_id]).get(feedback_id, []),
    }


@router.get(
    "/labels", response_model=LabelPage, summary="Labels on the items within the filters and scope"
)
def list_labels(
    session: SessionDep,
    settings: SettingsDep,
    flt: FilterDep,
    caller: AnalystDep,
    target: LabelTarget | None = None,
    aspect: str | None = None,
    source: Literal["correction", "queue", "import", "rating"] | None = None,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1)] = 100,
) -> dict[str, Any]:
    labels, nxt = store.list_labels(
        session,
        flt=flt,
        limit=min(limit, settings.limits.page_size_max),
        after_id=after,
        target=target.value if target else None,
        aspect=aspect,
        source=source,
    )
    return {"labels": labels, "next_after": nxt}


class QueueItem(BaseModel):
    id: int
    text: str
    language: str | None
    priority: float
    signals: dict[str, float]
    sentiment: str
    aspects: list[str]


class QueueOut(BaseModel):
    items: list[QueueItem]
    pool: int = Field(
        ..., description="Unlabeled items the queue chose from (the newest within the filters)."
    )
    labels: dict[str, Any] = Field(
        ..., description="Labels so far: sentiment, and per aspect present/absent."
    )
    quality: dict[str, Any] | None = Field(
        None, description="The latest team model's cross-validated figures."
    )
    aspects: list[dict[str, Any]]


@router.get(
    "/labeling/queue",
    response_model=QueueOut,
    summary="The next items to label, chosen for what they teach",
)
def labeling_queue(
    runtime: RuntimeDep,
    session: SessionDep,
    flt: FilterDep,
    caller: AnalystDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    scorer = runtime.scorer
    out = runtime.teacher().queue(
        flt=flt, limit=limit, team=scorer if scorer is not runtime.base_scorer else None
    )
    models = store.team_models(session)
    out["quality"] = _quality(models[0]) if models else None
    tax = runtime.settings.taxonomy
    out["aspects"] = [
        {"id": a.id, "name": a.names.get("en") or a.id, "names": a.names, "kind": a.kind}
        for a in tax.aspects
    ]
    return out


def _quality(row) -> dict[str, Any]:
    import json

    report = json.loads(row.report)
    return {
        "model": row.name,
        "created_at": row.created_at.isoformat(),
        **{k: report[k] for k in ("sentiment", "aspects", "aspect_sentiment") if k in report},
    }
