"""Keyword-only queries for the outbox's messages as people look at them (the dispatcher's
claims and leases: ``service/delivery/outbox.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.store.paging import Page, page
from service.store.tables import OutboxRow


def get_message(session: Session, *, message_id: int) -> OutboxRow | None:
    return session.get(OutboxRow, message_id)


def list_messages(
    session: Session,
    *,
    statuses: Sequence[str] = (),
    subscription_id: int | None = None,
    offset: int = 0,
    limit: int,
) -> Page[OutboxRow]:
    """Messages, newest first (``statuses``: any of them; ``subscription_id``: that
    subscription's)."""
    stmt = select(OutboxRow).order_by(OutboxRow.id.desc())
    if statuses:
        stmt = stmt.where(OutboxRow.status.in_(list(statuses)))
    if subscription_id is not None:
        stmt = stmt.where(OutboxRow.subscription_id == subscription_id)
    return page(session, stmt, offset=offset, limit=limit)


def has_message(session: Session, *, dedupe_key: str) -> bool:
    """Whether a message with this key was ever composed (sent or not)."""
    return (
        session.scalar(select(OutboxRow.id).where(OutboxRow.dedupe_key == dedupe_key)) is not None
    )


def keys_with_prefix(session: Session, *, prefix: str) -> set[str]:
    """The dedupe keys composed under ``prefix`` (e.g. one subscriber's alert messages)."""
    return set(
        session.scalars(select(OutboxRow.dedupe_key).where(OutboxRow.dedupe_key.like(prefix + "%")))
    )


def last_period_end(session: Session, *, prefix: str) -> datetime | None:
    """The end of the latest period a message under ``prefix`` covered (a subscriber's digests)."""
    return session.scalar(
        select(func.max(OutboxRow.period_end)).where(OutboxRow.dedupe_key.like(prefix + "%"))
    )
