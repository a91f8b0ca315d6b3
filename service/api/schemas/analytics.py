"""Segments, differences and themes (``/v1/segments``, ``/v1/themes``)."""

from __future__ import annotations

from pydantic import Field, create_model

from service.analytics import segments
from service.api.schemas._base import ResponseModel, fields_of
from service.api.schemas.common import Interval, Quote, Window


class Share(ResponseModel):
    """A count and its share with a Wilson interval."""

    count: int
    value: float | None
    lower: float | None
    upper: float | None


class SentimentShares(ResponseModel):
    negative: Share
    neutral: Share
    positive: Share


class SegmentAspect(ResponseModel):
    aspect: str
    mentions: int
    share_of_items: Share
    net_sentiment: Interval


class SegmentSummary(ResponseModel):
    volume: int
    scored: int
    sentiment: SentimentShares
    mean_sentiment_score: Interval
    net_sentiment: Interval
    aspects: list[SegmentAspect]


class SegmentRow(SegmentSummary):
    segment: dict[str, str] = Field(
        ..., description="The segment's value per dimension ((none) where an item has none)."
    )


class SegmentBreakdown(ResponseModel):
    dimensions: list[str]
    alpha: float
    segments: list[SegmentRow] = Field(..., description="Largest first, at most `limit`.")
    segments_total: int
    total: SegmentSummary


_METRIC = Field(
    description="negative_share, positive_share, aspect_mention_rate or aspect_negative_share."
)
# a finding of service/analytics/segments.py, field for field (its metric described)
Finding = create_model(
    "Finding", __base__=ResponseModel, **fields_of(segments.Finding) | {"metric": (str, _METRIC)}
)


class SegmentDifferences(ResponseModel):
    dimensions: list[str]
    alpha: float
    min_n: int
    tested: int
    significant: int
    findings: list[Finding]


class ThemeFacet(ResponseModel):
    aspect: str
    polarity: str


class ThemePrevious(ResponseModel):
    size: int
    share: float | None


class ThemeSentiment(ResponseModel):
    negative: int
    neutral: int
    positive: int


class AspectMentions(ResponseModel):
    aspect: str
    mentions: int


class Theme(ResponseModel):
    id: int
    facet: ThemeFacet | None
    parent: int | None
    label: str
    keywords: list[str]
    size: int
    share: float
    previous: ThemePrevious
    emerging: bool
    new: bool
    q_value: float
    sentiment: ThemeSentiment
    net_sentiment: float
    top_aspects: list[AspectMentions]
    quotes: list[Quote]
    children: list[Theme] | None = Field(None, description="Sub-themes (of a theme only).")


class ThemeList(ResponseModel):
    window: Window | None
    previous_window: Window | None = None
    items: int
    sample: int | None = None
    themes: list[Theme]
    unassigned: int | None = None
    cached_at: str | None = Field(
        None, description="When the stored answer was computed (null: computed now)."
    )


class ThemeSnapshot(ResponseModel):
    scope: str
    since: str
    until: str
    size: int
    share: float
    net_sentiment: float
    emerging: bool
    keywords: list[str]


class ThemeDetail(ResponseModel):
    id: int
    facet: ThemeFacet | None
    parent: int | None
    keywords: list[str]
    created_at: str
    updated_at: str
    quotes: list[Quote]
    history: list[ThemeSnapshot]
