"""Keyword-only query functions over labels and team models. Nothing here commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.orm import Session

from service.domain import Label, LabelTarget, StoredLabel
from service.store.repo import FeedbackFilter, _chunks, _insert
from service.store.tables import FeedbackRow, LabelRow, TeamModelRow


def _key(label: Label) -> tuple[str, str]:
    return label.target.value, label.aspect or ""


def expand(labels: Sequence[Label]) -> list[Label]:
    """The labels with what they imply: an aspect's sentiment says the aspect is present."""
    out = {_key(lb): lb for lb in labels}
    for lb in labels:
        if lb.target == LabelTarget.aspect_sentiment:
            out.setdefault(
                ("aspect", lb.aspect), Label(target="aspect", aspect=lb.aspect, value="present")
            )
    return list(out.values())


def put_labels(
    session: Session,
    *,
    feedback_id: int,
    labels: Sequence[Label],
    source: str,
    actor: str,
    now: datetime,
) -> int:
    """Insert or replace labels of one item (one per target and aspect); returns how many.
    An aspect marked absent loses its sentiment label."""
    labels = expand(labels)
    if not labels:
        return 0
    rows = [
        dict(
            feedback_id=feedback_id,
            target=lb.target.value,
            aspect=lb.aspect or "",
            value=lb.value,
            source=source,
            labeled_by=actor[:128],
            created_at=now,
            updated_at=now,
        )
        for lb in labels
    ]
    ins = _insert(session)(LabelRow)
    session.execute(
        ins.on_conflict_do_update(
            index_elements=[LabelRow.feedback_id, LabelRow.target, LabelRow.aspect],
            set_={
                c: getattr(ins.excluded, c) for c in ("value", "source", "labeled_by", "updated_at")
            },
        ),
        rows,
    )
    absent = [
        lb.aspect for lb in labels if lb.target == LabelTarget.aspect and lb.value == "absent"
    ]
    if absent:
        session.execute(
            delete(LabelRow).where(
                LabelRow.feedback_id == feedback_id,
                LabelRow.target == "aspect_sentiment",
                LabelRow.aspect.in_(absent),
            )
        )
    return len(rows)


def delete_labels(
    session: Session, *, feedback_id: int, target: str | None = None, aspect: str | None = None
) -> int:
    stmt = delete(LabelRow).where(LabelRow.feedback_id == feedback_id)
    if target:
        stmt = stmt.where(LabelRow.target == target)
    if aspect is not None:
        stmt = stmt.where(LabelRow.aspect == aspect)
    return session.execute(stmt).rowcount or 0


def _stored(r: LabelRow) -> StoredLabel:
    return StoredLabel(
        id=r.id,
        feedback_id=r.feedback_id,
        target=r.target,
        aspect=r.aspect or None,
        value=r.value,
        source=r.source,
        labeled_by=r.labeled_by,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


def labels_of(session: Session, *, feedback_ids: Sequence[int]) -> dict[int, list[StoredLabel]]:
    out: dict[int, list[StoredLabel]] = {}
    for part in _chunks(list(feedback_ids)):
        for r in session.scalars(
            select(LabelRow).where(LabelRow.feedback_id.in_(part)).order_by(LabelRow.id)
        ):
            out.setdefault(r.feedback_id, []).append(_stored(r))
    return out


def list_labels(
    session: Session,
    *,
    flt: FeedbackFilter,
    limit: int,
    after_id: int = 0,
    target: str | None = None,
    aspect: str | None = None,
    source: str | None = None,
) -> tuple[list[StoredLabel], int | None]:
    """Labels on the items within ``flt`` (a data scope included), in id order from ``after_id``."""
    stmt = (
        select(LabelRow)
        .join(FeedbackRow, FeedbackRow.id == LabelRow.feedback_id)
        .where(LabelRow.id > after_id)
    )
    for col, v in ((LabelRow.target, target), (LabelRow.aspect, aspect), (LabelRow.source, source)):
        if v is not None:
            stmt = stmt.where(col == v)
    rows = session.scalars(flt.apply(stmt).order_by(LabelRow.id).limit(limit + 1)).all()
    nxt = rows[limit - 1].id if len(rows) > limit else None
    return [_stored(r) for r in rows[:limit]], nxt


def label_counts(
    session: Session, *, flt: FeedbackFilter | None = None
) -> dict[str, dict[str, int]]:
    """``{"sentiment": {value: n}, "aspect:<id>": {present: n, absent: n}, …}``."""
    stmt = select(LabelRow.target, LabelRow.aspect, LabelRow.value, func.count()).join(
        FeedbackRow, FeedbackRow.id == LabelRow.feedback_id
    )
    stmt = (
        (flt or FeedbackFilter())
        .apply(stmt)
        .group_by(LabelRow.target, LabelRow.aspect, LabelRow.value)
    )
    out: dict[str, dict[str, int]] = {}
    for target, aspect, value, n in session.execute(stmt):
        key = target if not aspect else f"{target}:{aspect}"
        out.setdefault(key, {})[value] = n
    return out


def labeled_ids(session: Session) -> set[int]:
    return set(session.scalars(select(LabelRow.feedback_id).distinct()))


@dataclass(frozen=True)
class LabeledItem:
    id: int
    text: str
    language: str | None
    sentiment: str | None  # the overall sentiment label
    aspects: dict[str, str]  # aspect -> present | absent
    aspect_sentiments: dict[str, str]
    updated_at: datetime


def labeled_items(session: Session) -> list[LabeledItem]:
    """Every labeled item with its labels, for training (human labels; ratings come separately)."""
    by_id: dict[int, dict] = {}
    stmt = select(
        LabelRow.feedback_id, LabelRow.target, LabelRow.aspect, LabelRow.value, LabelRow.updated_at
    ).order_by(LabelRow.feedback_id)
    for fid, target, aspect, value, at in session.execute(stmt):
        d = by_id.setdefault(
            fid, {"sentiment": None, "aspects": {}, "aspect_sentiments": {}, "at": at}
        )
        d["at"] = max(d["at"], at)
        if target == "sentiment":
            d["sentiment"] = value
        elif target == "aspect":
            d["aspects"][aspect] = value
        else:
            d["aspect_sentiments"][aspect] = value
    texts: dict[int, tuple[str, str | None]] = {}
    for part in _chunks(list(by_id)):
        for i, t, lang in session.execute(
            select(FeedbackRow.id, FeedbackRow.text, FeedbackRow.language).where(
                FeedbackRow.id.in_(part)
            )
        ):
            texts[i] = (t, lang)
    return [
        LabeledItem(fid, *texts[fid], d["sentiment"], d["aspects"], d["aspect_sentiments"], d["at"])
        for fid, d in by_id.items()
        if fid in texts
    ]


def rated_items(
    session: Session,
    *,
    negative_max: float,
    positive_min: float,
    scale: float,
    exclude: set[int],
    limit: int,
) -> list[tuple[int, str, str | None, str]]:
    """``(id, text, language, label)`` of items whose rating (on ``scale``) maps to a label,
    newest first: the weak labels (a rating of 3 of 5 teaches nothing by default)."""
    norm = FeedbackRow.rating * scale / func.coalesce(FeedbackRow.rating_scale, scale)
    stmt = (
        select(FeedbackRow.id, FeedbackRow.text, FeedbackRow.language, norm)
        .where(
            FeedbackRow.rating.is_not(None),
            FeedbackRow.duplicate_of.is_(None),
            (norm <= negative_max) | (norm >= positive_min),
        )
        .order_by(FeedbackRow.created_at.desc(), FeedbackRow.id.desc())
        .limit(limit + len(exclude))
    )
    out = []
    for i, t, lang, r in session.execute(stmt):
        if i in exclude:
            continue
        out.append((i, t, lang, "negative" if r <= negative_max else "positive"))
        if len(out) >= limit:
            break
    return out


# --- team models ---------------------------------------------------------------------------


def save_team_model(session: Session, **fields) -> TeamModelRow:
    row = TeamModelRow(**fields)
    session.add(row)
    session.flush()
    return row


def team_models(session: Session) -> list[TeamModelRow]:
    return list(
        session.scalars(
            select(TeamModelRow).order_by(TeamModelRow.created_at.desc(), TeamModelRow.id.desc())
        )
    )


def team_model(session: Session, *, name: str) -> TeamModelRow | None:
    return session.scalar(select(TeamModelRow).where(TeamModelRow.name == name))


def promoted_team_model(session: Session) -> TeamModelRow | None:
    """The team model that scores new items (None: the generic model)."""
    return session.scalar(
        select(TeamModelRow)
        .where(TeamModelRow.promoted_at.is_not(None), TeamModelRow.demoted_at.is_(None))
        .order_by(TeamModelRow.promoted_at.desc(), TeamModelRow.id.desc())
        .limit(1)
    )


def promoted_key(session: Session) -> tuple[str, str] | None:
    """``(name, sha256)`` of the promoted team model without reading its weights."""
    row = session.execute(
        select(TeamModelRow.name, TeamModelRow.sha256)
        .where(TeamModelRow.promoted_at.is_not(None), TeamModelRow.demoted_at.is_(None))
        .order_by(TeamModelRow.promoted_at.desc(), TeamModelRow.id.desc())
        .limit(1)
    ).first()
    return tuple(row) if row else None


def promote(session: Session, *, name: str, now: datetime) -> TeamModelRow:
    row = team_model(session, name=name)
    if row is None:
        raise KeyError(name)
    row.promoted_at, row.demoted_at = now, None
    return row


def demote_all(session: Session, *, now: datetime) -> int:
    """Back to the generic model."""
    return (
        session.execute(
            update(TeamModelRow)
            .where(and_(TeamModelRow.promoted_at.is_not(None), TeamModelRow.demoted_at.is_(None)))
            .values(demoted_at=now)
        ).rowcount
        or 0
    )


def rollback(session: Session, *, now: datetime) -> TeamModelRow | None:
    """Demote the promoted model: the one promoted before it (if any, and not rolled back
    itself) scores again. Returns the model now serving (None: the generic model)."""
    current = promoted_team_model(session)
    if current is None:
        return None
    current.demoted_at = now
    session.flush()
    return promoted_team_model(session)  # promoted before it and never rolled back itself, if any
