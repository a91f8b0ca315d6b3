"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.domain import AspectScore, Feedback, Sentiment


class ScoreItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(None, max_length=256, description="Echoed back to match results to inputs.")
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
        ..., min_length=1,
        description="Feedback items in the data dictionary (see FeedbackIn); each is validated "
                    "on its own, so one bad item never rejects the others.")


class ItemError(BaseModel):
    field: str | None
    reason: str


class IngestItemResult(BaseModel):
    index: int
    external_id: str | None
    status: str = Field(..., description="created | updated | unchanged | rejected")
    id: int | None
    errors: list[ItemError] = Field(default_factory=list)


class IngestResponse(BaseModel):
    created: int
    updated: int
    unchanged: int
    rejected: int
    items: list[IngestItemResult]


class FeedbackPage(BaseModel):
    items: list[Feedback]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")


class Health(BaseModel):
    status: str
    database: str
    model_version: str | None
    items: int | None
