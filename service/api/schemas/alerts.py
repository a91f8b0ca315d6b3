"""Alerts (``/v1/alerts``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from service.api.schemas._base import ResponseModel


class AlertEvent(ResponseModel):
    at: str
    actor: str
    action: str
    note: str | None


class AlertPublic(ResponseModel):
    id: int
    rule: str
    type: str
    severity: str = Field(..., description="L1, L2 or L3.")
    status: str = Field(..., description="open, acknowledged or resolved.")
    title: str
    brand: str | None
    region: str | None
    aspect: str | None
    segment: dict[str, Any]
    metric: str | None
    baseline: float | None
    observed: float | None
    magnitude: float | None
    confidence: float | None
    onset: str | None
    first_detected_at: str
    last_detected_at: str
    deadline_at: str
    acknowledged_by: str | None
    acknowledged_at: str | None
    resolved_by: str | None
    resolved_at: str | None
    details: dict[str, Any] = Field(
        ..., description="What the rule found: drivers, phrases, quotes, series (per rule type)."
    )
    events: list[AlertEvent] | None = Field(None, description="The history (one alert only).")


class AlertList(ResponseModel):
    alerts: list[AlertPublic]
    next_offset: int | None


class ResponseSummary(ResponseModel):
    alerts: int
    acknowledged: int
    acknowledged_within_deadline: int
    share_within_deadline: float | None
    median_hours_to_acknowledge: float | None
    open_overdue: int


class AlertMetrics(ResponseModel):
    overall: ResponseSummary
    by_severity: dict[str, ResponseSummary]
    by_region: dict[str, ResponseSummary]
