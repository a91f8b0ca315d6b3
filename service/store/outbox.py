"""Keyword-only queries for the outbox's messages as people look at them (the dispatcher's
claims and leases: ``service/delivery/outbox.py``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
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
