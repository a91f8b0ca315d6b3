from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from service.api.deps import ReaderDep, ReadinessDep, RuntimeDep, SessionDep, SettingsDep, WriterDep
from service.api.errors import ApiError
from service.api.filters import FilterDep
from service.api.limits import within
from service.api.schemas import (
    DbInt,
    FeedbackPage,
    IngestItemResult,
    IngestRequest,
    IngestResponse,
)
from service.domain import Feedback
from service.ingest.mapping import ColumnMapping
from service.jobs.ingest import WriteScope
from service.store import repo

router = APIRouter(tags=["feedback"])

_STRICT = ColumnMapping(extra_as_attributes=False)


@router.post(
    "/feedback",
    response_model=IngestResponse,
    summary="Ingest a batch: validate, score and store; idempotent on (source, external_id)",
)
def ingest(
    body: IngestRequest,
    runtime: RuntimeDep,
    settings: SettingsDep,
    caller: WriterDep,
    readiness: ReadinessDep,
) -> IngestResponse:
    if readiness.known_corrupt():  # what a probe found: no write lands in a damaged file
        raise ApiError(
            503,
            "the database is damaged (see GET /v1/health/ready); restore it from a backup",
            code="database_corrupt",
            headers={"Retry-After": "60"},
        )
    if len(body.items) > settings.limits.max_batch_items:
        raise ApiError(
            413,
            f"{len(body.items)} items in one request; the limit is {settings.limits.max_batch_items}",
        )
    scope = None
    if caller.regions is not None or caller.brands is not None:
        scope = WriteScope(regions=caller.regions, brands=caller.brands)
    report = within(
        settings.limits.model_timeout_s,
        runtime.ingest_service(_STRICT, scope=scope, batched=True).ingest,
        list(enumerate(body.items)),
    )
    # each item's result as the ingest reported it (its row: the index in the batch)
    items = [IngestItemResult.model_validate({**asdict(r), "index": r.row}) for r in report.results]
    return IngestResponse(**report.counts, linked=report.linked, items=items)


@router.get("/feedback", response_model=FeedbackPage, summary="List stored feedback, newest first")
def list_feedback(
    session: SessionDep,
    settings: SettingsDep,
    flt: FilterDep,
    caller: ReaderDep,
    limit: Annotated[
        int, Query(ge=1, description="Page size (capped by limits.page_size_max).")
    ] = 50,
    cursor: str | None = None,
) -> FeedbackPage:
    try:
        items, nxt = repo.list_feedback(
            session, flt=flt, limit=min(limit, settings.limits.page_size_max), cursor=cursor
        )
    except repo.CursorError as exc:
        raise ApiError(422, str(exc), [{"field": "query.cursor", "message": str(exc)}]) from None
    return FeedbackPage(items=[_shown(caller, i) for i in items], next_cursor=nxt)


@router.get(
    "/feedback/{feedback_id}", response_model=Feedback, summary="One stored item with its score"
)
def get_feedback(feedback_id: DbInt, session: SessionDep, caller: ReaderDep) -> Feedback:
    item = repo.get_feedback(session, feedback_id=feedback_id)
    if item is None or not _visible(caller, item):
        raise ApiError(404, f"no feedback item {feedback_id}")
    return _shown(caller, item)


def _shown(caller, item: Feedback) -> Feedback:
    """What a caller sees of an item: viewers do not see who wrote it (not even as a hash)."""
    return item.model_copy(update={"author_hash": None}) if caller.role == "viewer" else item


def _visible(caller, item: Feedback) -> bool:
    return (caller.regions is None or item.region in caller.regions) and (
        caller.brands is None or item.brand in caller.brands
    )
