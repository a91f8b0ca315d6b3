"""The taxonomy: read it, preview a draft on the stored items, save it (``service/analytics/taxonomy.py``)."""

from __future__ import annotations

from typing import Annotated, Any

import yaml
from fastapi import APIRouter
from pydantic import BaseModel, Field

from service.analytics.taxonomy import TaxonomyError, parse_draft
from service.api.deps import AdminDep, AnalystDep, ReaderDep, RuntimeDep, SessionDep, SettingsDep
from service.api.errors import ApiError
from service.api.filters import FilterDep
from service.domain import Taxonomy

router = APIRouter(tags=["taxonomy"])


class TaxonomyDoc(BaseModel):
    fingerprint: str
    yaml: str = Field(..., description="The taxonomy file as written.")
    taxonomy: Taxonomy


class DraftIn(BaseModel):
    taxonomy: str | dict[str, Any] = Field(
        ..., description="The draft: YAML text, or the same as a JSON object."
    )
    aspect: str | None = Field(None, description="Only this aspect of the draft.")
    sample: Annotated[int, Field(ge=1, le=5000)] = 1000
    examples: Annotated[int, Field(ge=0, le=50)] = 5


class PreviewItem(BaseModel):
    id: int
    text: str
    model_probability: float
    evidence: str | None = None
    reason: str | None = None
    rule: str | None = None
    confidence: float | None = None


class Borderline(BaseModel):
    just_tagged: list[PreviewItem]
    just_missed: list[PreviewItem]


class DroppedItem(BaseModel):
    id: int
    text: str
    evidence: str
    rule: str | None = None
    verifier_probability: float


class Dropped(BaseModel):
    count: int = Field(
        ..., description="Items whose safety rule match the harm verifier did not tag."
    )
    items: list[DroppedItem]


class Change(BaseModel):
    new_aspect: bool
    before: int
    gained: int
    lost: int


class AspectPreview(BaseModel):
    aspect: str
    name: str
    kind: str
    sources: list[str]
    threshold: float
    tagged: int
    share: float
    estimated_in_scope: int
    by_reason: dict[str, int]
    matches: list[PreviewItem]
    borderline: Borderline
    overlap: dict[str, int]
    dropped_by_verifier: Dropped
    change: Change


class RemovedAspect(BaseModel):
    aspect: str
    before: int


class PreviewOut(BaseModel):
    sample: int = Field(
        ..., description="Stored items re-tagged (the newest within the filters and scope)."
    )
    in_scope: int
    taxonomy: str
    current_taxonomy: str
    aspects: list[AspectPreview]
    removed_aspects: list[RemovedAspect]
    untagged: int


class SaveIn(BaseModel):
    taxonomy: str | dict[str, Any]


class SaveOut(BaseModel):
    path: str
    taxonomy: str
    model_version: str
    stale_items: int = Field(
        ..., description="Stored items whose scores are now stale (`radar rescore`)."
    )


def _text(body_taxonomy) -> str:
    if isinstance(body_taxonomy, dict):
        return yaml.safe_dump(body_taxonomy, sort_keys=False, allow_unicode=True)
    return body_taxonomy


def _parse(text: str) -> Taxonomy:
    try:
        return parse_draft(text)
    except TaxonomyError as exc:
        details = [
            {"field": f"body.taxonomy.{d['field']}", "message": d["message"]} for d in exc.details
        ] or [{"field": "body.taxonomy", "message": str(exc)}]
        raise ApiError(422, f"taxonomy: {exc}", details) from None


@router.get("/taxonomy", response_model=TaxonomyDoc, summary="The current taxonomy")
def get_taxonomy(settings: SettingsDep, caller: ReaderDep) -> TaxonomyDoc:
    return TaxonomyDoc(
        fingerprint=settings.taxonomy.fingerprint(),
        yaml=settings.taxonomy_path.read_text(encoding="utf-8"),
        taxonomy=settings.taxonomy,
    )


@router.post(
    "/taxonomy/preview",
    response_model=PreviewOut,
    summary="What a draft taxonomy would tag among the stored items (nothing is saved)",
)
def preview_taxonomy(
    body: DraftIn, session: SessionDep, runtime: RuntimeDep, flt: FilterDep, caller: AnalystDep
) -> dict[str, Any]:
    draft = _parse(_text(body.taxonomy))
    if body.aspect is not None and body.aspect not in draft.ids:
        raise ApiError(
            422,
            f"aspect {body.aspect!r} is not in the draft",
            [{"field": "body.aspect", "message": f"not one of {draft.ids}"}],
        )
    return runtime.preview_taxonomy(
        session, draft, flt=flt, sample=body.sample, aspect=body.aspect, examples=body.examples
    )


@router.put(
    "/taxonomy",
    response_model=SaveOut,
    summary="Make a taxonomy current (stored scores become stale)",
)
def save_taxonomy(body: SaveIn, runtime: RuntimeDep, caller: AdminDep) -> dict[str, Any]:
    text = _text(body.taxonomy)
    _parse(text)
    return runtime.save_taxonomy(text)
