"""Subscriptions and the outbox (``/v1/subscriptions``, ``/v1/outbox``)."""

from __future__ import annotations

from pydantic import Field

from service.api.schemas._base import ResponseModel


class SubscriptionPublic(ResponseModel):
    id: int
    name: str | None
    channel: str
    format: str
    target: str = Field(..., description="The email address, or the webhook URL without its query.")
    brands: list[str]
    regions: list[str]
    aspects: list[str]
    min_severity: str
    frequency: str
    language: str
    timezone: str
    send_hour: int
    send_weekday: int
    quiet: str
    secret_env: str | None
    active: bool
    created_by: str
    created_at: str
    updated_at: str
    unsubscribed_at: str | None


class SubscriptionList(ResponseModel):
    subscriptions: list[SubscriptionPublic]
    next_offset: int | None


class DigestPeriod(ResponseModel):
    key: str
    start: str
    end: str


class DigestPreview(ResponseModel):
    period: DigestPeriod
    subject: str
    text: str
    alerts: int
    changes: dict[str, int] = Field(..., description="How many changes of each kind.")


class OutboxMessage(ResponseModel):
    id: int
    dedupe_key: str
    subscription_id: int | None
    channel: str
    format: str
    target: str
    subject: str | None
    message_id: str
    status: str
    attempts: int
    next_attempt_at: str
    last_error: str | None
    created_at: str
    sent_at: str | None
    period_start: str | None
    period_end: str | None


class OutboxList(ResponseModel):
    messages: list[OutboxMessage]
    next_offset: int | None
