"""The competitor benchmark (``/v1/benchmark``)."""

from __future__ import annotations

from pydantic import Field

from service.api.schemas._base import ResponseModel
from service.api.schemas.common import Interval, Window


class BenchmarkMetric(ResponseModel):
    segment: str
    aspect: str
    brand: str
    ours: bool
    items: int
    mentions: int
    share_of_voice: float | None
    mention_rate: Interval
    positive_rate: Interval
    negative_rate: Interval
    net_sentiment: Interval
    mean_rating: float | None
    rated: int


class BenchmarkGap(ResponseModel):
    segment: str
    aspect: str
    competitor: str
    ours_mentions: int
    their_mentions: int
    gap: float | None
    lower: float | None
    upper: float | None
    z: float | None
    p_value: float | None
    q_value: float | None
    significant: bool
    favours: str | None = Field(..., description="ours, competitor, or null when not significant.")


class BenchmarkQuote(ResponseModel):
    id: int
    brand: str
    text: str
    evidence: str | None


class GapQuotes(ResponseModel):
    ours: list[BenchmarkQuote]
    competitor: list[BenchmarkQuote]


class StrengthOrWeakness(BenchmarkGap):
    quotes: GapQuotes


class _Comparison(ResponseModel):
    """What the answers of a comparison of our brand with the others start with."""

    window: Window | None
    our_brand: str | None = None
    segment: str | None = None


class Benchmark(_Comparison):
    alpha: float | None = None
    min_mentions: int | None = None
    brands: list[str] | None = None
    aspects: list[str] | None = None
    segments: list[str] | None = None
    metrics: list[BenchmarkMetric]
    gaps: list[BenchmarkGap]
    tests: int | None = None
    strengths: list[StrengthOrWeakness] | None = None
    weaknesses: list[StrengthOrWeakness] | None = None


class AspectImportance(ResponseModel):
    coefficient: float | None
    lower: float | None
    upper: float | None
    importance: float | None
    mentions: int


class Importance(ResponseModel):
    target: str | None = Field(..., description="rating or sentiment_score; null: too few items.")
    items: int
    r_squared: float | None = None
    aspects: dict[str, AspectImportance]


class Priority(ResponseModel):
    aspect: str
    priority: float | None
    importance: float
    importance_interval: list[float | None]
    deficit: float | None
    versus: str | None
    gap_q_value: float | None
    gap_significant: bool
    our_net_sentiment: float | None
    our_mention_rate: float | None
    rank: int


class BenchmarkPriorities(_Comparison):
    importance: Importance | None = None
    priorities: dict[str, list[Priority]] = Field(..., description="Per segment, ranked.")


class GapPoint(ResponseModel):
    period: str
    ours_mentions: int
    their_mentions: int
    ours_net: float | None
    their_net: float | None
    gap: float | None
    se: float | None


class GapForecastPoint(ResponseModel):
    period: str
    mean: float | None
    lower: float | None
    upper: float | None


class GapSeries(ResponseModel):
    our_brand: str
    competitor: str
    aspect: str
    bucket: str
    points: list[GapPoint]
    forecast: list[GapForecastPoint]
    model: str | None = None
    criterion: str | None = None
    alpha: float | None = None
    seed: int | None = None
