"""Team models (``/v1/models``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from service.api.schemas._base import IsoDatetime, ResponseModel


class ServingModel(ResponseModel):
    model: str = Field(..., description="The team model that scores new items, or generic.")
    model_version: str
    generic_version: str


class TeamModelPublic(ResponseModel):
    name: str
    sha256: str
    base_pipeline: str
    base_encoder: str
    taxonomy: str = Field(..., description="Fingerprint of the taxonomy it was trained on.")
    created_by: str
    created_at: IsoDatetime
    promoted_at: IsoDatetime | None
    demoted_at: IsoDatetime | None
    size_bytes: int
    report: dict[str, Any] = Field(
        ...,
        description="Cross-validated figures, team vs generic, per target (sentiment, aspects, "
        "aspect_sentiment); the per-aspect tables only in GET /v1/models/{name}.",
    )
    params: dict[str, Any] = Field(..., description="Label counts, settings and timings.")
    serving: bool | None = Field(None, description="Whether it scores new items now.")


class ModelList(ResponseModel):
    serving: ServingModel
    models: list[TeamModelPublic]


class TrainingJob(ResponseModel):
    id: str
    status: str = Field(..., description="running, succeeded or failed.")
    name: str | None
    stage: str
    done: int
    total: int
    started_at: IsoDatetime
    finished_at: IsoDatetime | None
    model: str | None = Field(..., description="The trained model's name once it succeeded.")
    error: str | None
