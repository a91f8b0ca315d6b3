"""Segment breakdowns, significant differences and themes (``service/analytics``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Query

from service.analytics import segments as seg
from service.analytics import theme_cache
from service.analytics import themes as th
from service.analytics.windows import default_window, scope_key
from service.api.deps import CallerDep, NamesDep, SessionDep, SettingsDep, require
from service.api.errors import ApiError, found
from service.api.filters import FilterDep, resolve_names
from service.api.routing import DictRouter
from service.api.schemas import DbInt, SegmentBreakdown, SegmentDifferences, ThemeDetail, ThemeList
from service.store.access import READ_ROLES
from service.store.repo import FeedbackFilter, UnknownDimension

router = DictRouter(tags=["analytics"], dependencies=[Depends(require(*READ_ROLES))])

Dimensions = Annotated[
    list[str],
    Query(
        description="One or two dimensions: region, brand, channel, language, "
        "product, source, or any attribute name (age_group, tier, dealer…)."
    ),
]


def _by_dimension(report, session, settings, flt: FeedbackFilter, dimension: list[str], **kw):
    """``report`` (a ``service.analytics.segments`` function) of the items of ``flt`` by
    ``dimension``; an unknown dimension is a 422."""
    try:
        return report(session, dimensions=dimension, flt=flt, taxonomy=settings.taxonomy, **kw)
    except UnknownDimension as exc:
        raise ApiError(422, str(exc), [{"field": "query.dimension", "message": str(exc)}]) from None


@router.get(
    "/segments",
    response_model=SegmentBreakdown,
    summary="Breakdown by one or two dimensions: volume, sentiment, aspects, intervals",
)
def segments(
    session: SessionDep,
    settings: SettingsDep,
    flt: FilterDep,
    dimension: Dimensions,
    alpha: Annotated[float, Query(ge=1e-10, lt=0.5)] = 0.05,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    return _by_dimension(seg.breakdown, session, settings, flt, dimension, alpha=alpha, limit=limit)


@router.get(
    "/segments/differences",
    response_model=SegmentDifferences,
    summary="Segments that differ significantly from the rest (BH-corrected)",
)
def differences(
    session: SessionDep,
    settings: SettingsDep,
    flt: FilterDep,
    names: NamesDep,
    dimension: Dimensions,
    compare_aspect: Annotated[
        list[str], Query(description="Aspects to compare (default: all).")
    ] = [],
    min_n: Annotated[int, Query(ge=1)] = 30,
    alpha: Annotated[float, Query(gt=0, lt=0.5)] = 0.05,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    compare_aspect = list(resolve_names(lambda: names.aspects(session, compare_aspect)))
    return _by_dimension(
        seg.differences,
        session,
        settings,
        flt,
        dimension,
        min_n=min_n,
        alpha=alpha,
        aspects=compare_aspect or None,
        limit=limit,
    )


@router.get(
    "/themes",
    response_model=ThemeList,
    summary="Themes of a window (clusters of the stored embeddings), emerging ones first",
)
def themes(
    session: SessionDep,
    settings: SettingsDep,
    flt: FilterDep,
    caller: CallerDep,
    days: Annotated[
        int, Query(ge=1, le=366, description="Window length when `since` is not given.")
    ] = 28,
    refresh: Annotated[
        bool,
        Query(
            description="Compute now instead of answering from a stored answer "
            "(dashboard.themes_cache_minutes)."
        ),
    ] = False,
) -> dict[str, Any]:
    window = default_window(session, flt, days)
    if window is None:
        return {"window": None, "items": 0, "themes": []}
    since, until = window
    if until - since > since - datetime.min.replace(
        tzinfo=UTC
    ):  # themes compare with the window before
        raise ApiError(
            422,
            "window too long: the window before it, of the same length, would start before year 1",
            [{"field": "query.since", "message": "window too long"}],
        )
    # fitted on all the caller may see in the window, counted within the requested segment; a
    # stored answer for the same scope and window length serves when it is recent enough
    dash = settings.dashboard
    return theme_cache.themes_for(
        session,
        flt=flt,
        since=since,
        until=until,
        population=caller.restrict(FeedbackFilter()),
        now=datetime.now(UTC),
        max_age=timedelta(minutes=dash.themes_cache_minutes),
        slack=timedelta(hours=dash.themes_cache_slack_hours),
        competitors=settings.competitors,
        refresh=refresh,
    )


@router.get(
    "/themes/{theme_id}",
    response_model=ThemeDetail,
    summary="One theme: keywords, latest quotes and its history",
)
def theme(
    theme_id: DbInt, session: SessionDep, flt: FilterDep, caller: CallerDep
) -> dict[str, Any]:
    # a scoped caller sees the theme as its own list showed it: the history of its own scope
    # (the same filter), keywords from that history, never other scopes' figures or words
    scoped = caller.regions is not None or caller.brands is not None
    return found(
        th.theme_detail(session, theme_id, flt=flt, scope=scope_key(flt) if scoped else None),
        f"theme {theme_id}",
    )
