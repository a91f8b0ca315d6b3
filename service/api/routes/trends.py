"""Series, forecasts and tracked phrases (``service/analytics/trends.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from service.analytics import trends as tr
from service.analytics.windows import default_window
from service.api.deps import AnalystDep, NamesDep, ReaderDep, ScorerDep, SessionDep
from service.api.errors import ApiError
from service.api.filters import FilterDep, resolve_names
from service.api.routing import DictRouter
from service.api.schemas import DbInt, ForecastSeries, TrackedPhrase, TrendSeries, require_storable
from service.store import phrases as phrases_repo
from service.store.repo import FeedbackFilter
from service.store.tables import TrackedPhraseRow

router = DictRouter(tags=["trends"])

BucketQ = Annotated[
    Literal["hour", "day", "week"], Query(description="UTC buckets; weeks start on Monday.")
]
Days = Annotated[int, Query(ge=1, le=3660, description="Window length when `since` is not given.")]
AspectQ = Annotated[
    str | None,
    Query(description="An aspect (id or display name): its mentions (default: every item)."),
]
PhraseQ = Annotated[
    DbInt | None, Query(description="A tracked phrase id: the items that mention it.")
]


def _aspect(session, names, aspect: str | None) -> str | None:
    return None if aspect is None else resolve_names(lambda: names.aspect(session, aspect))


def _scope(caller) -> tr.PhraseScope:
    return tr.PhraseScope(regions=caller.regions, brands=caller.brands)


def _phrase(session, phrase_id: int | None, aspect: str | None, caller) -> TrackedPhraseRow | None:
    if phrase_id is None:
        return None
    if aspect is not None:
        raise ApiError(
            422,
            "give an aspect or a phrase_id, not both",
            [{"field": "query.phrase_id", "message": "with aspect"}],
        )
    row = phrases_repo.get_phrase(session, phrase_id=phrase_id)
    if row is None or not _scope(caller).sees(row):
        raise ApiError(404, f"no tracked phrase {phrase_id}")
    return row


def _series_error(exc: Exception) -> ApiError:
    return ApiError(422, str(exc), [{"field": "query", "message": str(exc)}])


@dataclass(frozen=True)
class SeriesQuery:
    """The series a request asks for: the items of ``flt`` in ``window`` (None: no item in
    scope) per ``bucket``, counted for an aspect, a tracked phrase, or every item."""

    flt: FeedbackFilter
    window: tuple[datetime, datetime] | None
    bucket: str
    aspect: str | None
    phrase: TrackedPhraseRow | None

    def query(self) -> tr.TrendQuery:
        """What ``trend_report`` and ``forecast_report`` are of (a request with a window)."""
        return tr.TrendQuery(
            self.flt, *self.window, bucket=self.bucket, aspect=self.aspect, phrase=self.phrase
        )


def series_query(
    session: SessionDep,
    flt: FilterDep,
    caller: ReaderDep,
    names: NamesDep,
    bucket: BucketQ = "week",
    days: Days = 182,
    aspect: AspectQ = None,
    phrase_id: PhraseQ = None,
) -> SeriesQuery:
    phrase = _phrase(session, phrase_id, aspect, caller)
    aspect = _aspect(session, names, aspect)
    window = default_window(session, flt, days)
    return SeriesQuery(flt=flt, window=window, bucket=bucket, aspect=aspect, phrase=phrase)


SeriesDep = Annotated[SeriesQuery, Depends(series_query)]


@router.get(
    "/trends",
    response_model=TrendSeries,
    summary="A metric family per UTC period, with each metric's trend and detected shifts",
)
def trends(series: SeriesDep, session: SessionDep) -> dict[str, Any]:
    if series.window is None:
        return {"window": None, "bucket": series.bucket, "points": [], "trend": {}, "shifts": []}
    try:
        return tr.trend_report(session, series.query())
    except tr.SeriesError as exc:
        raise _series_error(exc) from None


@router.get(
    "/forecast",
    response_model=ForecastSeries,
    summary="Forecast of one metric with mean, lower and upper for an explicit alpha",
)
def forecast(
    series: SeriesDep,
    session: SessionDep,
    metric: Annotated[
        Literal["volume", "share_of_voice", "negative_share", "mean_sentiment"], Query()
    ] = "volume",
    horizon: Annotated[int, Query(ge=1, le=104)] = 4,
    alpha: Annotated[float, Query(gt=0, lt=0.5)] = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    if series.window is None:
        raise ApiError(404, "no feedback in scope to forecast")
    try:
        return tr.forecast_report(
            session,
            series.query(),
            metric=metric,
            horizon=horizon,
            alpha=alpha,
            seed=seed,
        )
    except (tr.SeriesError, ValueError) as exc:
        raise _series_error(exc) from None


class PhraseIn(BaseModel):
    phrase: str = Field(
        min_length=1, max_length=200, description="Any language, e.g. 'too spicy' or '太辣'."
    )
    threshold: float | None = Field(
        None, ge=0.5, le=1.0, description=f"Paraphrase cosine (default {tr.PHRASE_THRESHOLD})."
    )
    paraphrases: bool = Field(
        True, description="Also match close paraphrases through the embeddings."
    )


@router.post(
    "/tracked-phrases",
    response_model=TrackedPhrase,
    status_code=201,
    summary="Track a keyword or phrase (and its close paraphrases)",
)
def track_phrase(
    body: PhraseIn, session: SessionDep, scorer: ScorerDep, caller: AnalystDep
) -> dict[str, Any]:
    require_storable(body)
    try:
        row = tr.track_phrase(
            session,
            scorer,
            body.phrase,
            threshold=body.threshold,
            paraphrases=body.paraphrases,
            actor=caller.id,
            scope=_scope(caller),
        )
    except tr.PhraseError as exc:
        raise ApiError(422, str(exc), [{"field": "body.phrase", "message": str(exc)}]) from None
    return tr.phrase_dict(row)


@router.get(
    "/tracked-phrases",
    response_model=list[TrackedPhrase],
    summary="The tracked phrases",
)
def list_phrases(session: SessionDep, caller: ReaderDep) -> list[dict[str, Any]]:
    scope = _scope(caller)
    return [tr.phrase_dict(r) for r in phrases_repo.list_phrases(session) if scope.sees(r)]
