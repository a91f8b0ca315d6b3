"""Days whose rollups a write has made stale (``service/store/rollups.py`` reads and clears
them). Every writer of items, scores, attributes or duplicate links calls one of these in its
own transaction, so a committed change is never missing from an answer: its day is either
rolled up again or answered from the items."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import func, insert, select, tuple_
from sqlalchemy.orm import Session

from service.store.tables import FeedbackRow, RollupDirtyRow

_CHUNK = 500


def day_text(session: Session, col=FeedbackRow.created_at):
    """``col``'s UTC day as text ``YYYY-MM-DD`` (SQLite stores naive UTC text)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", col), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", col)


def day_of(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d")


def _mark_from(session: Session, where) -> None:
    src = select(day_text(session)).where(where).distinct()
    session.execute(insert(RollupDirtyRow).from_select(["day"], src))


def mark_ids(session: Session, ids: Sequence[int]) -> None:
    """The days of these stored items (call before deleting them)."""
    ids = list(ids)
    for i in range(0, len(ids), _CHUNK):
        _mark_from(session, FeedbackRow.id.in_(ids[i : i + _CHUNK]))


def mark_keys(session: Session, keys: Sequence[tuple[str, str]]) -> None:
    """The days of the stored items with these ``(source, external_id)`` keys, if any (an
    update may move an item to another day)."""
    keys = list(keys)
    for i in range(0, len(keys), _CHUNK):
        _mark_from(
            session, tuple_(FeedbackRow.source, FeedbackRow.external_id).in_(keys[i : i + _CHUNK])
        )


def mark_linked_to(session: Session, ids: Sequence[int]) -> None:
    """The days of the items linked as duplicates of these (their link is about to change)."""
    ids = list(ids)
    for i in range(0, len(ids), _CHUNK):
        _mark_from(session, FeedbackRow.duplicate_of.in_(ids[i : i + _CHUNK]))


def mark_days(session: Session, days: Iterable[str]) -> None:
    rows = [{"day": d} for d in sorted(set(days))]
    if rows:
        session.execute(insert(RollupDirtyRow), rows)
