from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import AnalystDep, RuntimeDep, ScorerDep, SettingsDep
from service.api.errors import ApiError
from service.api.limits import within
from service.api.schemas import ScoreRequest, ScoreResponse, ScoreResult, lone_surrogate
from service.ingest.normalize import normalize_text

router = APIRouter(tags=["scoring"])


@router.post(
    "/score", response_model=ScoreResponse, summary="Score a batch of texts (nothing is stored)"
)
def score(
    body: ScoreRequest,
    scorer: ScorerDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    caller: AnalystDep,
) -> ScoreResponse:
    limits = settings.limits
    if len(body.items) > limits.max_batch_items:
        raise ApiError(
            413, f"{len(body.items)} items in one request; the limit is {limits.max_batch_items}"
        )
    problems = []
    for i, it in enumerate(body.items):
        if not it.text.strip():
            problems.append({"field": f"body.items.{i}.text", "message": "must not be empty"})
        elif lone_surrogate(it.text):
            problems.append(
                {"field": f"body.items.{i}.text", "message": "invalid UTF-8 (a lone surrogate)"}
            )
        elif len(it.text) > limits.max_text_chars:
            problems.append(
                {
                    "field": f"body.items.{i}.text",
                    "message": f"too long: {len(it.text):,} characters (limit {limits.max_text_chars:,})",
                }
            )
    if problems:
        raise ApiError(422, "; ".join(f"{p['field']}: {p['message']}" for p in problems), problems)
    texts = [normalize_text(it.text) for it in body.items]
    langs = runtime.detector.detect_many(texts)
    scored = within(limits.model_timeout_s, scorer.score, texts, langs)
    results = []
    for it, sc, lang in zip(body.items, scored, langs):
        s = sc.score
        results.append(
            ScoreResult(
                id=it.id,
                sentiment=s.sentiment,
                sentiment_score=s.sentiment_score,
                p_negative=s.probabilities["negative"],
                p_neutral=s.probabilities["neutral"],
                p_positive=s.probabilities["positive"],
                aspects=s.aspects,
                language=lang,
                model_version=s.model_version,
            )
        )
    return ScoreResponse(model_version=scorer.version, results=results)
