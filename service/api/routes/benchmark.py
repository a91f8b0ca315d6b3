"""The competitor benchmark (``service/analytics/benchmark.py``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import Depends, Query

from service.analytics import benchmark as bm
from service.analytics.trends import SeriesError
from service.analytics.windows import default_window
from service.api.deps import NamesDep, SessionDep, SettingsDep, require
from service.api.errors import ApiError
from service.api.filters import FilterDep, resolve_names
from service.api.routing import DictRouter
from service.api.schemas import Benchmark, BenchmarkPriorities, GapSeries
from service.store.access import READ_ROLES
from service.store.repo import FeedbackFilter, UnknownDimension

router = DictRouter(tags=["benchmark"], dependencies=[Depends(require(*READ_ROLES))])

Segment = Annotated[
    str | None,
    Query(
        description="Compare within each segment of this dimension (region, channel, "
        "an attribute such as age_group…); default: the whole window."
    ),
]
Days = Annotated[int, Query(ge=1, le=3660, description="Window length when `since` is not given.")]


def _split(flt: FeedbackFilter) -> tuple[FeedbackFilter, tuple[str, ...], tuple[str, ...]]:
    """``brand=`` and ``aspect=`` choose what is compared; they do not narrow the items beyond
    the caller's own brand scope."""
    return replace(flt, brands=flt.brand_scope, aspects=()), flt.brands, flt.aspects


def _window(session, flt: FeedbackFilter, days: int) -> FeedbackFilter | None:
    window = default_window(session, flt, days)
    return None if window is None else replace(flt, since=window[0], until=window[1])


def _call(fn, **kw):
    try:
        return fn(**kw)
    except UnknownDimension as exc:
        raise ApiError(422, str(exc), [{"field": "query.segment", "message": str(exc)}]) from None


@router.get(
    "/benchmark",
    response_model=Benchmark,
    summary="Brand × aspect metrics, gaps to our brand (BH-corrected), strengths and weaknesses",
)
def benchmark(
    session: SessionDep,
    settings: SettingsDep,
    flt: FilterDep,
    segment: Segment = None,
    days: Days = 90,
    alpha: Annotated[float, Query(ge=1e-10, lt=0.5)] = 0.05,
    min_mentions: Annotated[int, Query(ge=1)] = bm.MIN_MENTIONS,
    quotes: Annotated[
        bool, Query(description="Strengths and weaknesses with quotes from both sides.")
    ] = True,
) -> dict[str, Any]:
    base, brands, aspects = _split(flt)
    scoped = _window(session, base, days)
    if scoped is None:
        return {"window": None, "metrics": [], "gaps": [], "strengths": [], "weaknesses": []}
    ours = settings.competitors.our_brand
    out = _call(
        bm.benchmark,
        session=session,
        flt=scoped,
        our_brand=ours,
        brands=brands,
        aspects=aspects,
        segment=segment,
        alpha=alpha,
        min_mentions=min_mentions,
        taxonomy=settings.taxonomy,
    )
    out["window"] = {"since": scoped.since.isoformat(), "until": scoped.until.isoformat()}
    if quotes:
        out.update(bm.strengths_and_weaknesses(session, out, flt=scoped))
    return out


@router.get(
    "/benchmark/priorities",
    response_model=BenchmarkPriorities,
    summary="Our aspects ranked by importance × gap to the best competitor",
)
def priorities(
    session: SessionDep,
    settings: SettingsDep,
    flt: FilterDep,
    segment: Segment = None,
    days: Days = 90,
    alpha: Annotated[float, Query(ge=1e-10, lt=0.5)] = 0.05,
) -> dict[str, Any]:
    base, brands, aspects = _split(flt)
    scoped = _window(session, base, days)
    if scoped is None:
        return {"window": None, "priorities": {}}
    out = _call(
        bm.priorities,
        session=session,
        flt=scoped,
        our_brand=settings.competitors.our_brand,
        brands=brands,
        aspects=aspects,
        segment=segment,
        alpha=alpha,
        taxonomy=settings.taxonomy,
    )
    out["window"] = {"since": scoped.since.isoformat(), "until": scoped.until.isoformat()}
    return out


@router.get(
    "/benchmark/series",
    response_model=GapSeries,
    summary="The gap on one aspect to one competitor per period, with its forecast",
)
def series(
    session: SessionDep,
    settings: SettingsDep,
    flt: FilterDep,
    names: NamesDep,
    competitor: Annotated[
        str, Query(description="A competitor's brand id, or (competitors) for all of them.")
    ],
    gap_aspect: Annotated[
        str, Query(alias="compare_aspect", description="The aspect whose gap is followed.")
    ],
    bucket: Annotated[Literal["day", "week"], Query()] = "week",
    days: Days = 182,
    horizon: Annotated[int, Query(ge=0, le=52)] = 4,
    alpha: Annotated[float, Query(gt=0, lt=0.5)] = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    base, _, _ = _split(flt)
    scoped = _window(session, base, days)
    if scoped is None:
        raise ApiError(404, "no feedback in scope")
    ours = settings.competitors.our_brand
    if competitor != "(competitors)":
        competitor = resolve_names(lambda: names.brand(session, competitor))
    gap_aspect = resolve_names(lambda: names.aspect(session, gap_aspect))
    scope = flt.brand_scope
    if scope and (
        ours not in scope
        or (competitor not in scope if competitor != "(competitors)" else not set(scope) - {ours})
    ):
        # a brand-scoped key reads no other brand's series (as /v1/benchmark shows it no other brand)
        raise ApiError(404, "no such comparison within this key's brand scope")
    if competitor == ours:
        raise ApiError(
            422,
            "the competitor cannot be our own brand",
            [{"field": "query.competitor", "message": ours}],
        )
    try:
        return bm.gap_report(
            session,
            flt=scoped,
            our_brand=ours,
            competitor=competitor,
            aspect=gap_aspect,
            bucket=bucket,
            horizon=horizon,
            alpha=alpha,
            seed=seed,
        )
    except SeriesError as exc:  # too many periods for the bucket
        raise ApiError(422, str(exc), [{"field": "query", "message": str(exc)}]) from None
