"""Subscriptions: who gets which alerts, through which channel, when, in which language.

A subscription is an email address or a webhook URL with a data scope (brands, regions,
aspects: empty means all; a minimum severity, L1 being the most severe), a frequency
(``immediate``: each alert as it is raised, meant for L1 on-call; ``daily`` or ``weekly``
digests), a language (``en`` or ``zh``), a time zone and a send hour (weekly: and a weekday).

Schedule. A digest is due at the subscriber's local send time; the period it covers ends at
that moment and starts at the previous one, both computed in the subscriber's time zone, so a
daily period across a daylight-saving change is 23 or 25 hours long and the digest still goes
at 08:00 local. Only the latest due period is sent (a scheduler that was down for three days
sends one digest, not three), and never a period that ended before the subscription existed.

Unsubscribe links are signed: ``<id>.<mac>`` with the MAC an HMAC-SHA256 of the id and the
subscription's random salt under ``RADAR_DELIVERY__SIGNING_KEY``. The salt alone already makes
the token unguessable; the key makes it unforgeable even for someone who can read the database.

A webhook target is checked when it is subscribed and again at every send
(``service.delivery.targets``): no private, loopback, link-local, multicast or reserved
address unless ``delivery.webhook_allow`` names it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from service.delivery.targets import TargetRefused, check_url
from service.delivery.webhook import shown_fields
from service.store import subscriptions as subs_repo
from service.store.access import audit
from service.store.alerts import AlertScope
from service.store.tables import SubscriptionRow

SEVERITIES = ("L1", "L2", "L3")
EMAIL = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")
WEBHOOK_FORMATS = ("generic", "slack", "wecom", "dingtalk")


class SubscriptionError(ValueError):
    """A subscription that cannot be used; ``field`` names the offending field."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai"
        ) from None


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        None, max_length=128, description="A label, e.g. 'East regional lead'."
    )
    brands: list[str] | None = Field(
        None, description="Brands (ids, display names or aliases); empty: every brand."
    )
    regions: list[str] | None = Field(
        None, description="Regions; empty: every region (a regional lead names theirs)."
    )
    aspects: list[str] | None = Field(
        None, description="Aspects (ids or display names); empty: every aspect."
    )
    min_severity: Literal["L1", "L2", "L3"] | None = Field(
        None,
        description="The least severe alert included (L1 is the most severe): L2 sends L1 and L2.",
    )
    frequency: Literal["immediate", "daily", "weekly"] | None = None
    language: Literal["en", "zh"] | None = None
    timezone: str | None = Field(
        None, description="IANA time zone of the send hour, e.g. Asia/Shanghai."
    )
    send_hour: int | None = Field(None, ge=0, le=23)
    send_weekday: int | None = Field(
        None, ge=0, le=6, description="Weekly digests: 0 = Monday … 6 = Sunday."
    )
    quiet: Literal["skip", "all_quiet"] | None = Field(
        None,
        description="A period with nothing in scope: send nothing (skip) or a one-line 'all quiet'.",
    )
    secret_env: str | None = Field(
        None,
        pattern=r"^RADAR_WEBHOOK_SECRET(_[A-Z0-9_]{1,100})?$",
        description="Webhooks: the environment variable holding the HMAC secret; its name "
        "starts with RADAR_WEBHOOK_SECRET (default: RADAR_WEBHOOK_SECRET).",
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is not None:
            _zone(v)
        return v


class SubscriptionIn(_Fields):
    channel: Literal["email", "webhook"] = "email"
    target: str = Field(
        min_length=3, max_length=2000, description="An email address, or a webhook URL."
    )
    format: Literal["email", "generic", "slack", "wecom", "dingtalk"] | None = Field(
        None, description="Webhooks: generic JSON, slack, wecom or dingtalk (default generic)."
    )

    @field_validator("target")
    @classmethod
    def _target(cls, v: str, info) -> str:
        v = v.strip()
        if info.data.get("channel", "email") == "email":
            if not EMAIL.match(v):
                raise ValueError(f"{v!r} is not an email address")
        else:
            parts = urlsplit(v)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("a webhook target must be an http(s) URL")
        return v

    @field_validator("format")
    @classmethod
    def _format(cls, v: str | None, info) -> str | None:
        channel = info.data.get("channel", "email")
        if channel == "email" and v not in (None, "email"):
            raise ValueError("email subscriptions have format 'email'")
        if channel == "webhook" and v == "email":
            raise ValueError(f"a webhook's format is one of {', '.join(WEBHOOK_FORMATS)}")
        return v


class SubscriptionPatch(_Fields):
    active: bool | None = Field(None, description="false pauses it; true resumes it.")


DEFAULTS = {
    "brands": [],
    "regions": [],
    "aspects": [],
    "min_severity": "L3",
    "frequency": "daily",
    "language": "en",
    "timezone": "UTC",
    "send_hour": 8,
    "send_weekday": 0,
    "quiet": "skip",
}
LISTS = ("brands", "regions", "aspects")


def create(
    session: Session,
    data: SubscriptionIn,
    *,
    actor: str,
    now: datetime | None = None,
    allow: Iterable[str] = (),
) -> SubscriptionRow:
    """Store a subscription. A webhook target must not resolve to a private, loopback,
    link-local, multicast or reserved address unless ``allow`` (``delivery.webhook_allow``)
    names its host or network: :class:`SubscriptionError` on ``target`` otherwise."""
    if data.channel == "webhook":
        try:
            check_url(data.target.strip(), allow)
        except TargetRefused as exc:
            raise SubscriptionError(str(exc), "target") from None
    now = now or datetime.now(UTC)
    values = {
        k: (getattr(data, k) if getattr(data, k) is not None else d) for k, d in DEFAULTS.items()
    }
    if data.frequency == "immediate" and data.min_severity is None:
        values["min_severity"] = "L1"  # immediate is for the alerts that cannot wait
    row = SubscriptionRow(
        name=data.name,
        channel=data.channel,
        target=data.target.strip(),
        format=data.format or ("email" if data.channel == "email" else "generic"),
        **{k: json.dumps(v, ensure_ascii=False) if k in LISTS else v for k, v in values.items()},
        secret_env=data.secret_env,
        token_salt=secrets.token_hex(16),
        immediate_since=now,
        active=True,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    audit(
        session,
        actor=actor,
        action="subscription.create",
        target=f"subscription:{row.id}",
        details={"channel": row.channel, "scope": scope_of(row), "frequency": row.frequency},
        now=now,
    )
    session.commit()
    return row


def delete(session: Session, row: SubscriptionRow, *, actor: str) -> None:
    audit(session, actor=actor, action="subscription.delete", target=f"subscription:{row.id}")
    session.delete(row)
    session.commit()


def update(
    session: Session,
    row: SubscriptionRow,
    patch: SubscriptionPatch,
    *,
    now: datetime | None = None,
    actor: str = "radar",
) -> SubscriptionRow:
    now = now or datetime.now(UTC)
    audit(
        session,
        actor=actor,
        action="subscription.update",
        target=f"subscription:{row.id}",
        details={"changed": sorted(patch.model_dump(exclude_unset=True))},
        now=now,
    )
    was_active, was_frequency = row.active, row.frequency
    for k, v in patch.model_dump(exclude_unset=True).items():
        if v is None and k != "secret_env":
            raise SubscriptionError(f"{k} cannot be null", k)
        setattr(row, k, json.dumps(v, ensure_ascii=False) if k in LISTS else v)
    if row.active and not was_active:
        row.unsubscribed_at = None
    if row.frequency == "immediate" and (not was_active or was_frequency != "immediate"):
        row.immediate_since = (
            now  # what was raised while it was paused or a digest is not sent at once
        )
    row.updated_at = now
    session.commit()
    return row


def unsubscribe(
    session: Session, row: SubscriptionRow, *, now: datetime | None = None
) -> SubscriptionRow:
    if row.active:
        row.active, row.unsubscribed_at = False, now or datetime.now(UTC)
        audit(
            session,
            actor="unsubscribe-link",
            action="subscription.unsubscribe",
            target=f"subscription:{row.id}",
            now=row.unsubscribed_at,
        )
        session.commit()
    return row


# the fields shown of a subscription, before and after its scope (LISTS)
SHOWN_BEFORE_SCOPE = ("id", "name", "channel", "format", "target")
SHOWN_AFTER_SCOPE = (
    "min_severity",
    "frequency",
    "language",
    "timezone",
    "send_hour",
    "send_weekday",
    "quiet",
    "secret_env",
    "active",
    "created_by",
    "created_at",
    "updated_at",
    "unsubscribed_at",
)


def subscription_dict(row: SubscriptionRow) -> dict:
    return {
        **shown_fields(row, SHOWN_BEFORE_SCOPE),
        **scope_of(row),
        **shown_fields(row, SHOWN_AFTER_SCOPE),
    }


# --- scope ---------------------------------------------------------------------------------


def scope_of(row: SubscriptionRow) -> dict[str, list[str]]:
    return {k: json.loads(getattr(row, k)) for k in LISTS}


def severities(min_severity: str) -> list[str]:
    """The severities at least as severe as ``min_severity`` (L1 is the most severe)."""
    return [s for s in SEVERITIES if s <= min_severity]


def alerts_in_scope(row: SubscriptionRow) -> AlertScope:
    """What the subscriber may receive: the same scope rule as an API caller's (a regional scope
    sees only alerts of its regions), plus aspects and the minimum severity."""
    scope = scope_of(row)
    return AlertScope(
        regions=tuple(scope["regions"]) or None,
        brands=tuple(scope["brands"]) or None,
        aspects=tuple(scope["aspects"]),
        severities=tuple(severities(row.min_severity)),
    )


# --- schedule ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    key: str  # e.g. daily:2026-11-23, weekly:2026-11-23 (the local date of the send)
    start: datetime  # UTC
    end: datetime  # UTC: the send moment


def _local_slot(day: date, hour: int, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=tz).astimezone(UTC)


def due_period(row: SubscriptionRow, now: datetime) -> Period | None:
    """The latest digest period of ``row`` that has ended by ``now``; None for immediate
    subscriptions, paused ones, and a period that ended before the subscription existed."""
    if row.frequency == "immediate" or not row.active:
        return None
    tz = _zone(row.timezone)
    local = now.astimezone(tz)
    step = 1 if row.frequency == "daily" else 7
    day = local.date() - timedelta(
        days=0 if step == 1 else (local.weekday() - row.send_weekday) % 7
    )
    end = _local_slot(day, row.send_hour, tz)
    if end > now:
        day -= timedelta(days=step)
        end = _local_slot(day, row.send_hour, tz)
    if end < row.created_at:
        return None
    start = _local_slot(day - timedelta(days=step), row.send_hour, tz)
    return Period(key=f"{row.frequency}:{day.isoformat()}", start=start, end=end)


# --- unsubscribe tokens --------------------------------------------------------------------


def _mac(row_id: int, salt: str, key: bytes) -> str:
    mac = hmac.new(key, f"unsubscribe:{row_id}:{salt}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")


def unsubscribe_token(row: SubscriptionRow, key: bytes) -> str:
    return f"{row.id}.{_mac(row.id, row.token_salt, key)}"


def from_token(session: Session, token: str, key: bytes) -> SubscriptionRow | None:
    """The subscription a signed token names, or None for a token that does not verify."""
    head, _, mac = token.partition(".")
    if not (head.isascii() and head.isdigit() and len(head) <= 18) or not mac:
        return None
    row = subs_repo.get_subscription(session, subscription_id=int(head))
    if row is None or not hmac.compare_digest(
        mac.encode("utf-8", "replace"), _mac(row.id, row.token_salt, key).encode()
    ):
        return None
    return row
