"""Keyword-only queries for subscriptions (their rules: ``service/delivery/subscriptions.py``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.paging import Page, page
from service.store.tables import SubscriptionRow


def get_subscription(session: Session, *, subscription_id: int) -> SubscriptionRow | None:
    return session.get(SubscriptionRow, subscription_id)


def list_subscriptions(
    session: Session, *, active: bool | None = None, offset: int = 0, limit: int | None = None
) -> Page[SubscriptionRow]:
    """Subscriptions in id order (``active``: only those, or only the paused ones); every one
    when ``limit`` is None."""
    stmt = select(SubscriptionRow).order_by(SubscriptionRow.id)
    if active is not None:
        stmt = stmt.where(SubscriptionRow.active.is_(active))
    if limit is None:
        return Page(list(session.scalars(stmt.offset(offset))), None)
    return page(session, stmt, offset=offset, limit=limit)
