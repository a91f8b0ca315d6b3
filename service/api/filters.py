"""The filter query parameters shared by every read endpoint (items and aggregates alike),
parsed once into a ``FeedbackFilter`` already narrowed to the caller's data scope; and the
``limit``/``offset`` of the offset-paged lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Query

from service.analytics.names import UnknownName
from service.api.deps import CallerDep, NamesDep, SessionDep, SettingsDep
from service.api.errors import ApiError
from service.api.schemas import DbInt, require_storable
from service.domain import Channel, Sentiment
from service.ingest.validate import EARLIEST, LATEST
from service.store.paging import Page
from service.store.repo import (
    AttributeFilterError,
    FeedbackFilter,
    RatingDisagreement,
    parse_attribute_filters,
    utc,
)


def attribute_pairs(pairs: list[str]) -> dict[str, tuple[str, ...]]:
    try:
        return parse_attribute_filters(pairs)
    except AttributeFilterError as exc:
        raise ApiError(
            422, str(exc), [{"field": f"query.attr.{exc.index}", "message": "expected NAME:VALUE"}]
        ) from None


def _in_range(value: datetime) -> bool:
    """Within the years items may carry (window arithmetic at year 1 or 9999 would overflow)."""
    try:
        return EARLIEST <= utc(value) < LATEST
    except OverflowError:  # an offset that moves it past year 1 or 9999
        return False


def unknown_name(exc, caller=None, field: str | None = None) -> ApiError:
    """422 for a filter value that names nothing, listing the valid ones (within the caller's
    scope: a regional key is not told which other regions exist); ``field``: where the value
    was (default: the query parameter)."""
    valid = exc.valid
    scope = getattr(caller, f"{exc.field}s", None) if caller is not None else None
    if scope is not None:
        valid = sorted(set(valid) & set(scope)) or sorted(scope)
    listed = ", ".join(valid[:40]) or "(none stored yet)"
    return ApiError(
        422,
        f"unknown {exc.field} {exc.value!r}: valid values are {listed} "
        "(ids, display names and aliases, in any case)",
        [
            {
                "field": field or f"query.{exc.field}",
                "message": f"unknown {exc.field}",
                "valid": valid[:200],
            }
        ],
    )


def resolve_names(call, caller=None):
    """``call()`` (a ``Names`` lookup), its ``UnknownName`` as the 422 of ``unknown_name``."""

    try:
        return call()
    except UnknownName as exc:
        raise unknown_name(exc, caller) from None


def named_scope(body, names, session):
    """A key's or a subscription's ``body``, checked storable, with its brand, aspect and region
    lists resolved (``Names.scoped``); an unknown value is a 422 on its body field."""
    require_storable(body)
    try:
        return names.scoped(session, body)
    except UnknownName as exc:
        raise unknown_name(exc, field=f"body.{exc.field}s") from None


def _disagreement(t) -> RatingDisagreement:
    return RatingDisagreement(
        negative_max=t.rating_negative_max,
        positive_min=t.rating_positive_min,
        scale=t.rating_scale,
        margin=t.disagree_margin,
    )


def feedback_filter(
    caller: CallerDep,
    caller_settings: SettingsDep,
    session: SessionDep,
    names: NamesDep,
    since: Annotated[
        datetime | None,
        Query(description="Inclusive lower bound on created_at (UTC if no offset)."),
    ] = None,
    until: Annotated[
        datetime | None, Query(description="Exclusive upper bound on created_at.")
    ] = None,
    source: Annotated[list[str], Query()] = [],
    channel: Annotated[list[Channel], Query()] = [],
    brand: Annotated[list[str], Query()] = [],
    product: Annotated[list[str], Query()] = [],
    region: Annotated[list[str], Query()] = [],
    language: Annotated[list[str], Query()] = [],
    sentiment: Annotated[list[Sentiment], Query()] = [],
    aspect: Annotated[list[str], Query()] = [],
    attr: Annotated[
        list[str],
        Query(description="Attribute filter NAME:VALUE, repeatable (e.g. age_group:18-24)."),
    ] = [],
    include_duplicates: Annotated[
        bool,
        Query(
            description="Also items linked as duplicates of an earlier one "
            "(the same voice: same author, or a cross-post). Every count "
            "leaves them out by default."
        ),
    ] = False,
    disagrees: Annotated[
        bool,
        Query(
            description="Only items whose text disagrees strongly with their rating "
            "(teach.disagree_margin; rating bands teach.rating_*)."
        ),
    ] = False,
) -> FeedbackFilter:
    for name, value in (("since", since), ("until", until)):
        if value is not None and not _in_range(value):
            raise ApiError(
                422,
                f"{name} must fall in the years {EARLIEST.year} to {LATEST.year - 1}",
                [{"field": f"query.{name}", "message": "out of range"}],
            )
    if since and until and utc(since) >= utc(until):
        raise ApiError(
            422, "since must be before until", [{"field": "query.since", "message": "after until"}]
        )
    flt = FeedbackFilter(
        since=utc(since),
        until=utc(until),
        sources=tuple(s.lower() for s in source),
        channels=tuple(c.value for c in channel),
        brands=tuple(brand),
        products=tuple(product),
        regions=tuple(region),
        languages=tuple(language),
        sentiments=tuple(s.value for s in sentiment),
        aspects=tuple(aspect),
        attributes=attribute_pairs(attr),
        include_duplicates=include_duplicates,
        disagrees=_disagreement(caller_settings.teach) if disagrees else None,
    )
    return caller.restrict(resolve_names(lambda: names.filter(session, flt), caller))


FilterDep = Annotated[FeedbackFilter, Depends(feedback_filter)]


@dataclass(frozen=True)
class Paging:
    """Where a page of an offset-paged list starts, and how many rows it holds at the most."""

    offset: int
    limit: int


def paging(default_limit: int):
    """The dependency that reads ``limit`` (``default_limit`` when not given, capped by
    ``limits.page_size_max``) and ``offset``."""

    def read(
        settings: SettingsDep,
        limit: Annotated[int, Query(ge=1)] = default_limit,
        offset: Annotated[DbInt, Query(ge=0)] = 0,
    ) -> Paging:
        return Paging(offset=offset, limit=min(limit, settings.limits.page_size_max))

    return Annotated[Paging, Depends(read)]


PagingDep = paging(100)
SmallPagingDep = paging(50)  # lists of rows that cost more to answer: actions, alerts


def page_body(key: str, page: Page, row_dict: Callable[[Any], dict]) -> dict[str, Any]:
    """A page's answer: its rows as dicts under ``key``, and the offset of the next page."""
    return {key: [row_dict(r) for r in page.rows], "next_offset": page.next_offset}
