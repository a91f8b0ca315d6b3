"""Keyword-only queries for themes: the items a window's themes are fitted on, the stored themes
(ids kept stable across windows by their centroids) and their per-window snapshots. Nothing
here commits: callers own transactions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from service.store.repo import FeedbackFilter
from service.store.tables import AspectScoreRow, FeedbackRow, ScoreRow, ThemeRow, ThemeSnapshotRow


def window_items(session: Session, *, flt: FeedbackFilter) -> list[Row]:
    """The canonical scored items under ``flt`` in id order: ``(id, text, embedding,
    topic_embedding, sentiment, language)``."""
    stmt = flt.scored(
        FeedbackRow.id,
        FeedbackRow.text,
        ScoreRow.embedding,
        ScoreRow.topic_embedding,
        ScoreRow.sentiment,
        FeedbackRow.language,
    ).order_by(FeedbackRow.id)
    return session.execute(stmt).all()


def window_aspects(session: Session, *, flt: FeedbackFilter) -> list[Row]:
    """Every aspect tag of the items under ``flt``: ``(feedback_id, aspect, confidence,
    sentiment_score, evidence)``."""
    stmt = flt.apply(
        select(
            AspectScoreRow.feedback_id,
            AspectScoreRow.aspect,
            AspectScoreRow.confidence,
            AspectScoreRow.sentiment_score,
            AspectScoreRow.evidence,
        ).join(FeedbackRow, FeedbackRow.id == AspectScoreRow.feedback_id)
    )
    return session.execute(stmt).all()


def stored_themes(session: Session) -> list[Row]:
    """Every stored theme: ``(id, centroid, facet, parent_id)``."""
    return session.execute(
        select(ThemeRow.id, ThemeRow.centroid, ThemeRow.facet, ThemeRow.parent_id)
    ).all()


def save_theme(
    session: Session,
    *,
    theme_id: int | None,
    centroid: bytes,
    facet: str | None,
    parent_id: int | None,
    keywords: list[str],
    now: datetime,
) -> int:
    """A new theme (``theme_id`` None) or a stored one moved to ``centroid`` with new keywords;
    returns its id."""
    if theme_id is None:
        row = ThemeRow(facet=facet, parent_id=parent_id, created_at=now)
        session.add(row)
    else:
        row = session.get(ThemeRow, theme_id)
    row.centroid, row.updated_at = centroid, now
    row.keywords = json.dumps(keywords, ensure_ascii=False)
    session.flush()
    return row.id


def save_snapshots(
    session: Session,
    *,
    themes: Sequence[dict],
    scope: str,
    since: datetime,
    until: datetime,
    now: datetime,
) -> None:
    """One snapshot per theme of a window (``themes``: records with ``id``, ``size``, ``share``,
    ``net_sentiment``, ``emerging``, ``keywords`` and ``quotes``), replacing the window's earlier one."""
    for t in themes:
        session.merge(
            ThemeSnapshotRow(
                theme_id=t["id"],
                scope=scope,
                window_start=since,
                window_end=until,
                size=t["size"],
                share=t["share"],
                net_sentiment=t["net_sentiment"],
                emerging=t["emerging"],
                keywords=json.dumps(t["keywords"], ensure_ascii=False),
                quotes=json.dumps([q["id"] for q in t["quotes"]]),
                computed_at=now,
            )
        )


def theme(session: Session, *, theme_id: int) -> ThemeRow | None:
    return session.get(ThemeRow, theme_id)


def snapshots(
    session: Session, *, theme_id: int, scope: str | None = None
) -> list[ThemeSnapshotRow]:
    """A theme's snapshots, oldest window first (``scope``: one scope's only)."""
    stmt = select(ThemeSnapshotRow).where(ThemeSnapshotRow.theme_id == theme_id)
    if scope is not None:
        stmt = stmt.where(ThemeSnapshotRow.scope == scope)
    return list(session.scalars(stmt.order_by(ThemeSnapshotRow.window_start)).all())


def texts(
    session: Session, *, ids: Sequence[int], flt: FeedbackFilter | None = None
) -> dict[int, str]:
    """id → text of those of ``ids`` that ``flt`` (e.g. a caller's data scope) lets through."""
    stmt = (flt or FeedbackFilter()).apply(
        select(FeedbackRow.id, FeedbackRow.text).where(FeedbackRow.id.in_(list(ids)))
    )
    return dict(session.execute(stmt).all())
