"""Keyword-only queries for tracked phrases (what a phrase matches: ``service/analytics/trends.py``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.tables import TrackedPhraseRow


def get_phrase(session: Session, *, phrase_id: int) -> TrackedPhraseRow | None:
    return session.get(TrackedPhraseRow, phrase_id)


def list_phrases(session: Session) -> list[TrackedPhraseRow]:
    """Every tracked phrase, in id order (callers narrow them to a caller's scope)."""
    return list(session.scalars(select(TrackedPhraseRow).order_by(TrackedPhraseRow.id)))
