"""The competitor benchmark (``service/analytics/benchmark.py``)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
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
from service.domain import Taxonomy
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


def _scoped(session, flt: FeedbackFilter, days: int) -> FeedbackFilter | None:
    """The items of the window (None: no item in scope) within the caller's own brand scope:
    ``brand=`` and ``aspect=`` choose what is compared; they do not narrow the items."""
    base = replace(flt, brands=flt.brand_scope, aspects=())
    window = default_window(session, base, days)
    return None if window is None else replace(base, since=window[0], until=window[1])


@dataclass(frozen=True)
class Comparison:
    """Our brand against the brands, on the aspects, that a request names, over the items of its
    window, within each segment of ``segment`` (None: the whole window)."""

    flt: FeedbackFilter
    brands: tuple[str, ...]
    aspects: tuple[str, ...]
    segment: str | None
    alpha: float
    our_brand: str
    taxonomy: Taxonomy

    def report(self, fn, session, **kw) -> dict[str, Any]:
        """``fn`` (a ``service.analytics.benchmark`` report) of this comparison, with its window;
        an unknown segment dimension is a 422."""
        args = {f.name: getattr(self, f.name) for f in fields(self)}  # named as fn names them
        try:
            out = fn(session=session, **args, **kw)
        except UnknownDimension as exc:
            raise ApiError(
                422, str(exc), [{"field": "query.segment", "message": str(exc)}]
            ) from None
        out["window"] = {"since": self.flt.since.isoformat(), "until": self.flt.until.isoformat()}
        return out


def comparison(
    session: SessionDep,
    settings: SettingsDep,
    flt: FilterDep,
    segment: Segment = None,
    days: Days = 90,
    alpha: Annotated[float, Query(ge=1e-10, lt=0.5)] = 0.05,
) -> Comparison | None:
    """The comparison a request asks for (None: no item in scope)."""
    scoped = _scoped(session, flt, days)
    if scoped is None:
        return None
    return Comparison(
        flt=scoped,
        brands=flt.brands,
        aspects=flt.aspects,
        segment=segment,
        alpha=alpha,
        our_brand=settings.competitors.our_brand,
        taxonomy=settings.taxonomy,
    )


ComparisonDep = Annotated[Comparison | None, Depends(comparison)]


@router.get(
    "/benchmark",
    response_model=Benchmark,
    summary="Brand × aspect metrics, gaps to our brand (BH-corrected), strengths and weaknesses",
)
def benchmark(
    session: SessionDep,
    comparison: ComparisonDep,
    min_mentions: Annotated[int, Query(ge=1)] = bm.MIN_MENTIONS,
    quotes: Annotated[
        bool, Query(description="Strengths and weaknesses with quotes from both sides.")
    ] = True,
) -> dict[str, Any]:
    if comparison is None:
        return {"window": None, "metrics": [], "gaps": [], "strengths": [], "weaknesses": []}
    out = comparison.report(bm.benchmark, session, min_mentions=min_mentions)
    if quotes:
        out.update(bm.strengths_and_weaknesses(session, out, flt=comparison.flt))
    return out


@router.get(
    "/benchmark/priorities",
    response_model=BenchmarkPriorities,
    summary="Our aspects ranked by importance × gap to the best competitor",
)
def priorities(session: SessionDep, comparison: ComparisonDep) -> dict[str, Any]:
    if comparison is None:
        return {"window": None, "priorities": {}}
    report = comparison.report(bm.benchmark, session)
    return {
        **bm.priorities(session, report, flt=comparison.flt),
        "window": report["window"],
    }


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
    scoped = _scoped(session, flt, days)
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
