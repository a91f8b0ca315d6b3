"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated, Any

from annotated_types import Ge, Le
from pydantic import BaseModel, ConfigDict, Field

from service.api.errors import ApiError
from service.domain import AspectScore, Feedback, Sentiment


def lone_surrogate(s: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in s)


def require_storable(body: Any, path: str = "body") -> None:
    """422 for strings no store keeps: a lone surrogate (not UTF-8, so neither SQL nor the
    answer can encode it) or NUL (PostgreSQL's text refuses it), before anything is written."""

    def walk(value: Any, at: str):
        if isinstance(value, str):
            if lone_surrogate(value):
                yield {"field": at, "message": "invalid UTF-8 (a lone surrogate)"}
            elif "\x00" in value:
                yield {"field": at, "message": "contains a NUL character"}
        elif isinstance(value, dict):
            for k, v in value.items():
                yield from walk(v, f"{at}.{k}")
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                yield from walk(v, f"{at}.{i}")

    details = list(walk(body.model_dump() if isinstance(body, BaseModel) else body, path))
    if details:
        raise ApiError(
            422,
            "invalid request: " + "; ".join(f"{d['field']}: {d['message']}" for d in details[:5]),
            details,
        )


# Ids, offsets and other integers that reach the database: a 64-bit integer there, so a
# larger one is a 422 here rather than an overflow (a 500) in the driver.
DbInt = Annotated[int, Ge(-(2**63)), Le(2**63 - 1)]


class ScoreItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(
        None, max_length=256, description="Echoed back to match results to inputs."
    )
    text: str = Field(..., description="The text to score.")


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[ScoreItem] = Field(..., min_length=1)


class ScoreResult(BaseModel):
    id: str | None
    sentiment: Sentiment
    sentiment_score: float
    p_negative: float
    p_neutral: float
    p_positive: float
    aspects: list[AspectScore]
    language: str
    model_version: str


class ScoreResponse(BaseModel):
    model_version: str
    results: list[ScoreResult]


class IngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[dict[str, Any]] = Field(
        ...,
        min_length=1,
        description="Feedback items in the data dictionary (see FeedbackIn); each is validated "
        "on its own, so one bad item never rejects the others.",
    )


class ItemError(BaseModel):
    field: str | None
    reason: str


class IngestItemResult(BaseModel):
    index: int
    external_id: str | None
    status: str = Field(..., description="created | updated | unchanged | rejected")
    id: int | None
    duplicate_of: int | None = Field(
        None,
        description="The earlier item this one is the same voice as "
        "(same author, or a cross-post): counted once.",
    )
    errors: list[ItemError] = Field(default_factory=list)


class IngestResponse(BaseModel):
    created: int
    updated: int
    unchanged: int
    rejected: int
    linked: int = Field(
        0, description="Items of this batch linked as duplicates of an earlier item."
    )
    items: list[IngestItemResult]


class FeedbackPage(BaseModel):
    items: list[Feedback]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")


class HealthCheck(BaseModel):
    name: str = Field(..., description="database, write, migrations or model.")
    ok: bool
    state: str = Field(
        ...,
        description="ok; database: corrupt or unavailable; write: read-only, busy or "
        "unavailable; migrations: behind; model: loaded, loadable or unavailable.",
    )
    detail: str | None = Field(None, description="Why, in the database's or the registry's words.")


class Health(BaseModel):
    status: str = Field(..., description="ok, or degraded when any check fails.")
    database: str = Field(..., description="ok, read-only, corrupt or unavailable.")
    model_version: str | None
    items: int | None
    checks: list[HealthCheck] = Field(default_factory=list)


class Ready(BaseModel):
    status: str = Field(..., description="ready (200) or not ready (503).")
    failed: list[str] = Field(default_factory=list, description="The checks that failed.")
    checks: list[HealthCheck]


class Liveness(BaseModel):
    status: str = Field(..., description="alive")


# Response models of the other resources (one module each), re-exported here.
from service.api.schemas.access import (  # noqa: E402, F401
    AuditEntry,
    AuditPage,
    ErasureResult,
    KeyCreated,
    KeyList,
    KeyPublic,
    Me,
)
from service.api.schemas.alerts import (  # noqa: E402, F401
    AlertEvent,
    AlertList,
    AlertMetrics,
    AlertPublic,
    ResponseSummary,
)
from service.api.schemas.analytics import (  # noqa: E402, F401
    SegmentBreakdown,
    SegmentDifferences,
    Theme,
    ThemeDetail,
    ThemeList,
)
from service.api.schemas.benchmark import (  # noqa: E402, F401
    Benchmark,
    BenchmarkPriorities,
    GapSeries,
)
from service.api.schemas.delivery import (  # noqa: E402, F401
    DigestPreview,
    OutboxList,
    OutboxMessage,
    SubscriptionList,
    SubscriptionPublic,
)
from service.api.schemas.models import ModelList, ServingModel, TeamModelPublic, TrainingJob  # noqa: E402, F401
from service.api.schemas.trends import ForecastSeries, TrackedPhrase, TrendSeries  # noqa: E402, F401
