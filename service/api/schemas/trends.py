"""Series, forecasts and tracked phrases (``/v1/trends``, ``/v1/forecast``, ``/v1/tracked-phrases``)."""

from __future__ import annotations

from pydantic import Field, create_model

from service.analytics.shifts import Detection
from service.api.schemas._base import ResponseModel, fields_of
from service.api.schemas.common import Window


class TrackedPhrase(ResponseModel):
    id: int
    phrase: str
    threshold: float
    paraphrases: bool = Field(..., description="Close paraphrases match too (embedding stored).")
    created_by: str
    created_at: str


class TrendPoint(ResponseModel):
    period: str
    items: int
    mentions: int
    negative: int
    share_of_voice: float | None
    negative_share: float | None
    mean_sentiment: float | None


class TrendSlope(ResponseModel):
    per_period: float
    lower: float
    upper: float
    p_value: float
    direction: str = Field(..., description="up, down or flat.")


class TrendSlopes(ResponseModel):
    """Each metric's linear trend (null with fewer than 4 observed periods)."""

    volume: TrendSlope | None = None
    share_of_voice: TrendSlope | None = None
    negative_share: TrendSlope | None = None
    mean_sentiment: TrendSlope | None = None


# a detection of service/analytics/shifts.py, with the metric and the period it was seen in
Shift = create_model(
    "Shift", __base__=ResponseModel, metric=(str, ...), period=(str, ...), **fields_of(Detection)
)


class TrendSeries(ResponseModel):
    window: Window | None
    aspect: str | None = None
    phrase: TrackedPhrase | None = None
    bucket: str
    points: list[TrendPoint]
    trend: TrendSlopes
    shifts: list[Shift]


class HistoryPoint(ResponseModel):
    period: str
    value: int | float | None


class ForecastPoint(ResponseModel):
    """null where the forecaster gives no finite value (e.g. an extreme alpha)."""

    period: str
    mean: float | None
    lower: float | None
    upper: float | None


class ForecastSeries(ResponseModel):
    metric: str
    aspect: str | None
    phrase: TrackedPhrase | None
    bucket: str
    alpha: float
    seed: int
    model: str
    criterion: str
    history: list[HistoryPoint]
    forecast: list[ForecastPoint]
