"""Keyword-only query functions over the store. Nothing here commits: callers own transactions."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import (
    Boolean,
    Select,
    and_,
    any_,
    bindparam,
    case,
    delete,
    exists,
    false,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.expression import ColumnElement

from service.domain import AspectScore, Feedback, Score
from service.ingest.dedup import DuplicatePolicy, Voice, VoiceScope
from service.ingest.prepare import PreparedItem
from service.store import dirty
from service.store.tables import AspectScoreRow, AttributeRow, BandRow, FeedbackRow, ScoreRow

if TYPE_CHECKING:
    from service.nlp.pipeline import ScoredText

_IN_CHUNK = 500  # bound on the size of IN (...) lists


def _chunks(seq: Sequence, n: int = _IN_CHUNK) -> Iterable[Sequence]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _insert(session: Session):
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


# --- writes --------------------------------------------------------------------------------


def _bulk_insert(session: Session, table, rows: list[dict]) -> None:
    """Insert many new rows in the session's transaction: ``COPY … FROM STDIN`` on PostgreSQL
    (for rows whose keys cannot conflict: the caller has just deleted them), batched
    ``executemany`` elsewhere. A row COPY refuses raises the SQLAlchemy error an INSERT would
    (``DataError``, ``IntegrityError``…), so callers handle both alike."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(_insert(session)(table), rows)
        return
    import psycopg  # PostgreSQL only

    cols = list(rows[0])
    sql = f"COPY {table.name} ({', '.join(cols)}) FROM STDIN"
    raw = session.connection().connection.driver_connection
    try:
        with raw.cursor() as cur, cur.copy(sql) as copy:
            for r in rows:
                copy.write_row([r[c] for c in cols])
    except psycopg.Error as exc:
        raise DBAPIError.instance(sql, None, exc, psycopg.Error, hide_parameters=True) from exc


@dataclass(frozen=True)
class Existing:
    id: int
    content_hash: str
    model_version: str | None
    region: str | None = None
    brand: str | None = None


def existing_by_key(
    session: Session, *, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], Existing]:
    out: dict[tuple[str, str], Existing] = {}
    for part in _chunks(list(dict.fromkeys(keys))):
        stmt = (
            select(
                FeedbackRow.source,
                FeedbackRow.external_id,
                FeedbackRow.id,
                FeedbackRow.content_hash,
                ScoreRow.model_version,
                FeedbackRow.region,
                FeedbackRow.brand,
            )
            .outerjoin(ScoreRow, ScoreRow.feedback_id == FeedbackRow.id)
            .where(tuple_(FeedbackRow.source, FeedbackRow.external_id).in_(part))
        )
        for src, ext, id_, ch, mv, region, brand in session.execute(stmt):
            out[(src, ext)] = Existing(id_, ch, mv, region, brand)
    return out


def lock_keys(session: Session, *, keys: Sequence[tuple[str, str]]) -> None:
    """Hold every ``(source, external_id)`` in ``keys`` for the rest of the transaction.

    Two writers of the same key then run one after the other, so what one reads of those keys
    after this call is what it will overwrite. PostgreSQL: transaction-level advisory locks on a
    64-bit hash of each key, taken in sorted order (no deadlock between overlapping batches; a
    hash collision only serialises two unrelated keys). SQLite admits one writer at a time:
    a write statement that changes nothing takes that lock now instead of at the first insert.
    """
    if not keys:
        return
    if session.get_bind().dialect.name == "postgresql":
        hashes = sorted({_key_hash(k) for k in keys})
        for part in _chunks(hashes):
            session.execute(
                text(
                    "SELECT count(*) FROM (SELECT pg_advisory_xact_lock(k) FROM "
                    "unnest(CAST(:keys AS bigint[])) WITH ORDINALITY AS u(k, n) "
                    "ORDER BY n) AS locked"
                ),
                {"keys": list(part)},
            )
    else:
        t = FeedbackRow.__table__
        session.execute(update(t).where(false()).values(id=t.c.id))


def _key_hash(key: tuple[str, str]) -> int:
    digest = hashlib.blake2b(
        "\x1f".join(key).encode("utf-8", "surrogatepass"), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


def _feedback_row(p: PreparedItem, now: datetime) -> dict:
    """A prepared item's ``feedback`` row: the item's fields (its author only as a hash, its
    attributes in their own table), its hashes and fingerprint, and when it was stored."""
    return p.item.model_dump(exclude={"attributes", "author"}) | {
        "channel": p.item.channel.value,
        "text_hash": p.text_hash,
        "content_hash": p.content_hash,
        "minhash": p.fingerprint.signature if p.fingerprint else None,
        "brand_source": p.brand_source.value,
        "author_hash": p.author_hash,
        "ingested_at": now,
        "updated_at": now,
    }


def upsert_items(
    session: Session, *, items: Sequence[PreparedItem], now: datetime, duplicates: DuplicatePolicy
) -> dict[tuple[str, str], int]:
    """Insert or update items by ``(source, external_id)``; returns their ids.

    Attributes and LSH bands are replaced, ``duplicate_of`` is set to the earliest stored item
    with the same duplicate key or a near-identical MinHash signature that ``duplicates`` calls
    the same voice (same author, or a cross-post within its window; same brand), else cleared.
    """
    if not items:
        return {}
    # rollups: the days these keys are stored under now, and the days they will be
    dirty.mark_keys(session, [p.key for p in items])
    dirty.mark_days(session, (dirty.day_of(p.item.created_at) for p in items))
    rows = [_feedback_row(p, now) for p in items]
    ins = _insert(session)(FeedbackRow)
    stmt = ins.on_conflict_do_update(
        index_elements=[FeedbackRow.source, FeedbackRow.external_id],
        set_={
            c: getattr(ins.excluded, c)
            for c in rows[0]
            if c not in ("source", "external_id", "ingested_at")
        },
    ).returning(FeedbackRow.id, sort_by_parameter_order=True)
    ids = [r[0] for r in session.execute(stmt, rows)]
    id_by_key = {p.key: i for p, i in zip(items, ids)}

    id_list = list(id_by_key.values())
    for part in _chunks(id_list):
        session.execute(delete(AttributeRow).where(AttributeRow.feedback_id.in_(part)))
        session.execute(delete(BandRow).where(BandRow.feedback_id.in_(part)))
    attr_rows = [
        dict(feedback_id=id_by_key[p.key], name=k, value=v)
        for p in items
        for k, v in p.item.attributes.items()
    ]
    if attr_rows:
        _bulk_insert(session, AttributeRow.__table__, attr_rows)
    band_rows = list(
        {(b, id_by_key[p.key]): None for p in items if p.fingerprint for b in p.fingerprint.bands}
    )
    if band_rows:
        _bulk_insert(
            session, BandRow.__table__, [dict(band=b, feedback_id=i) for b, i in band_rows]
        )
    _link_duplicates(session, items=items, id_by_key=id_by_key, policy=duplicates)
    return id_by_key


def _select_in(session: Session, stmt: Select, col, values: Sequence) -> Iterable[tuple]:
    """Rows of ``stmt`` where ``col`` is one of ``values`` (which may run to tens of thousands):
    one array parameter per statement on PostgreSQL (``= ANY(:values)``), bounded ``IN`` lists
    elsewhere."""
    if session.get_bind().dialect.name == "postgresql":
        array = postgresql.ARRAY(col.type)
        for part in _chunks(values, 50_000):
            yield from session.execute(
                stmt.where(col == any_(bindparam("values", list(part), type_=array)))
            )
        return
    for part in _chunks(values):
        yield from session.execute(stmt.where(col.in_(part)))


# a batch's candidates are read through the items in its scope while there are at most this
# many per batch item, and through its text and band keys beyond
_SCOPE_READ_PER_ITEM = 8
_VOICE_COLUMNS = (
    FeedbackRow.id,
    FeedbackRow.brand,
    FeedbackRow.author_hash,
    FeedbackRow.created_at,
    FeedbackRow.source,
    FeedbackRow.channel,
)


def _voices(session: Session, ids: Sequence[int]) -> dict[int, Voice]:
    return {
        i: Voice(b, a, c, src, ch)
        for i, b, a, c, src, ch in _select_in(session, select(*_VOICE_COLUMNS), FeedbackRow.id, ids)
    }


def _in_scope(scope: VoiceScope) -> ColumnElement[bool]:
    """The stored items ``scope`` admits as candidates (``service/ingest/dedup.py``); of a
    batch with more authors than an ``IN`` list should hold, any author of its brands."""
    brand = FeedbackRow.brand.in_(sorted(scope.brands))
    if len(scope.authors) > _IN_CHUNK * 4:
        return brand
    same_author = FeedbackRow.author_hash.in_(sorted(scope.authors))
    if scope.since is not None:
        window = FeedbackRow.created_at.between(scope.since, scope.until)
        if not scope.any_author:
            window = and_(window, FeedbackRow.author_hash.is_(None))
        same_author = or_(same_author, window)
    return and_(brand, same_author)


def _canonicals(
    session: Session,
    items: Sequence[PreparedItem],
    id_by_key: dict[tuple[str, str], int],
    policy: DuplicatePolicy,
) -> list[int | None]:
    """Per item, the earliest stored item it duplicates under ``policy`` (None: its own voice).
    Candidates are the same duplicate key (any length: the same author may repeat a short text)
    and, for texts long enough to fingerprint, a near-identical MinHash signature, among the
    stored items that could be the same voice as one of the batch's (``policy.scope``: the
    same brand, and the same author or a cross-post's time window). The store finds the
    candidates; what makes one a duplicate is ``service/ingest/dedup.py``'s."""
    if not policy.link or not items:
        return [None] * len(items)
    own_ids = [id_by_key[p.key] for p in items]
    mine = _voices(session, own_ids)
    scope = policy.scope(
        [(mine[i], p.fingerprint is not None) for i, p in zip(own_ids, items) if i in mine]
    )
    if scope is None:
        return [None] * len(items)
    hashes = {p.text_hash for p in items}
    bands = {b for p in items if p.fingerprint for b in p.fingerprint.bands}
    by_hash: dict[str, list[int]] = {}
    by_band: dict[int, list[int]] = {}
    # the items in scope, when they are few: their keys are read and matched here (a text the
    # store holds thousands of times, each under all 32 band keys, is not read each time)
    bound = _SCOPE_READ_PER_ITEM * len(items)
    in_scope = list(
        session.scalars(select(FeedbackRow.id).where(_in_scope(scope)).limit(bound + 1))
    )
    if len(in_scope) <= bound:
        for i, h in _select_in(
            session, select(FeedbackRow.id, FeedbackRow.text_hash), FeedbackRow.id, in_scope
        ):
            if h in hashes:
                by_hash.setdefault(h, []).append(i)
        for b, i in _select_in(
            session, select(BandRow.band, BandRow.feedback_id), BandRow.feedback_id, in_scope
        ):
            if b in bands:
                by_band.setdefault(b, []).append(i)
    else:  # by key, in any scope: the policy decides
        for h, i in _select_in(
            session,
            select(FeedbackRow.text_hash, FeedbackRow.id),
            FeedbackRow.text_hash,
            list(hashes),
        ):
            by_hash.setdefault(h, []).append(i)
        for b, i in _select_in(
            session, select(BandRow.band, BandRow.feedback_id), BandRow.band, list(bands)
        ):
            by_band.setdefault(b, []).append(i)
    sig_ids = list({i for ids in by_band.values() for i in ids})
    sigs: dict[int, bytes] = dict(
        _select_in(session, select(FeedbackRow.id, FeedbackRow.minhash), FeedbackRow.id, sig_ids)
    )
    cands: list[tuple[int, list[int]]] = []
    for p, own in zip(items, own_ids):
        found = {i for i in by_hash.get(p.text_hash, []) if i < own}
        if p.fingerprint:
            # each candidate once (a copy shares all 32 bands)
            near = {
                i
                for b in p.fingerprint.bands
                for i in by_band.get(b, ())
                if i < own and sigs.get(i)
            } - found
            found |= policy.near_identical(p.fingerprint, {i: sigs[i] for i in near})
        cands.append((own, sorted(found)))
    voices = {
        **mine,
        **_voices(session, list({i for _, found in cands for i in found} - mine.keys())),
    }
    return [
        policy.earliest_same_voice(
            voices.get(own), found, voices, long_text=p.fingerprint is not None
        )
        for p, (own, found) in zip(items, cands)
    ]


def _link_duplicates(
    session: Session,
    *,
    items: Sequence[PreparedItem],
    id_by_key: dict[tuple[str, str], int],
    policy: DuplicatePolicy,
) -> None:
    updates = [
        {"b_id": id_by_key[p.key], "b_dup": canonical}
        for p, canonical in zip(items, _canonicals(session, items, id_by_key, policy))
    ]
    if session.get_bind().dialect.name == "postgresql":
        # one statement for the batch, and rows whose link does not change (most: an item that
        # duplicates nothing stays NULL) are not rewritten: no second row version per insert
        session.execute(
            text(
                "UPDATE feedback AS f SET duplicate_of = u.dup FROM unnest("
                "CAST(:ids AS bigint[]), CAST(:dups AS bigint[])) AS u(id, dup) "
                "WHERE f.id = u.id AND f.duplicate_of IS DISTINCT FROM u.dup"
            ),
            {"ids": [u["b_id"] for u in updates], "dups": [u["b_dup"] for u in updates]},
        )
        return
    t = FeedbackRow.__table__
    session.connection().execute(
        update(t).where(t.c.id == bindparam("b_id")).values(duplicate_of=bindparam("b_dup")),
        updates,
    )


def duplicate_links(session: Session, *, ids: Sequence[int]) -> dict[int, int]:
    """Of ``ids``, those linked as a duplicate: id → the item it duplicates."""
    return {
        i: d
        for i, d in _select_in(
            session,
            select(FeedbackRow.id, FeedbackRow.duplicate_of).where(
                FeedbackRow.duplicate_of.is_not(None)
            ),
            FeedbackRow.id,
            list(ids),
        )
    }


def save_scores(session: Session, *, scores: dict[int, ScoredText], now: datetime) -> None:
    """Replace the scores (and aspect scores) of the given items."""
    ids = list(scores)
    dirty.mark_ids(session, ids)
    for part in _chunks(ids):
        session.execute(delete(AspectScoreRow).where(AspectScoreRow.feedback_id.in_(part)))
        session.execute(delete(ScoreRow).where(ScoreRow.feedback_id.in_(part)))
    if not ids:
        return
    score_rows, aspect_rows = [], []
    for fid, scored in scores.items():
        s, topic = scored.score, scored.topic_embedding
        p = s.probabilities
        score_rows.append(
            dict(
                feedback_id=fid,
                sentiment=s.sentiment.value,
                sentiment_score=s.sentiment_score,
                p_negative=p["negative"],
                p_neutral=p["neutral"],
                p_positive=p["positive"],
                model_version=s.model_version,
                embedding=np.asarray(scored.embedding, dtype="<f2").tobytes(),
                topic_embedding=None if topic is None else np.asarray(topic, dtype="<f2").tobytes(),
                truncated_tokens=s.truncated_tokens,
                scored_at=now,
            )
        )
        aspect_rows.extend(
            dict(
                feedback_id=fid,
                aspect=a.aspect,
                confidence=a.confidence,
                sentiment=a.sentiment.value,
                sentiment_score=a.sentiment_score,
                evidence=a.evidence,
                reason=a.reason,
                rule=None if a.rule is None else a.rule[:200],
            )
            for a in s.aspects
        )
    _bulk_insert(session, ScoreRow.__table__, score_rows)
    _bulk_insert(session, AspectScoreRow.__table__, aspect_rows)


# --- reads ---------------------------------------------------------------------------------


def to_domain(row: FeedbackRow) -> Feedback:
    score = None
    if row.score is not None:
        s = row.score
        score = Score(
            sentiment=s.sentiment,
            sentiment_score=s.sentiment_score,
            probabilities={
                "negative": s.p_negative,
                "neutral": s.p_neutral,
                "positive": s.p_positive,
            },
            aspects=[
                AspectScore(
                    aspect=a.aspect,
                    confidence=a.confidence,
                    sentiment=a.sentiment,
                    sentiment_score=a.sentiment_score,
                    evidence=a.evidence,
                    reason=a.reason or "model",
                    rule=a.rule,
                )
                for a in s.aspects
            ],
            model_version=s.model_version,
            truncated_tokens=s.truncated_tokens,
        )
    columns = Feedback.model_fields.keys() - {"attributes", "score"}  # stored as they are
    return Feedback(
        **{name: getattr(row, name) for name in columns},
        attributes={a.name: a.value for a in row.attributes},
        score=score,
    )


def get_feedback(session: Session, *, feedback_id: int) -> Feedback | None:
    row = session.get(FeedbackRow, feedback_id)
    return to_domain(row) if row is not None else None


@dataclass(frozen=True)
class RatingDisagreement:
    """Items whose text disagrees strongly with their rating: rated low (at most
    ``negative_max`` on ``scale``) yet scored at least ``margin`` positive, or rated high (at
    least ``positive_min``) yet scored at most ``-margin``."""

    negative_max: float = 2.0
    positive_min: float = 4.0
    scale: float = 5.0
    margin: float = 0.5

    def condition(self):
        norm = FeedbackRow.rating * self.scale / func.coalesce(FeedbackRow.rating_scale, self.scale)
        score = (
            select(ScoreRow.sentiment_score)
            .where(ScoreRow.feedback_id == FeedbackRow.id)
            .correlate(FeedbackRow)
            .scalar_subquery()
        )
        return and_(
            FeedbackRow.rating.is_not(None),
            or_(
                and_(norm <= self.negative_max, score >= self.margin),
                and_(norm >= self.positive_min, score <= -self.margin),
            ),
        )


class _CanonicalUnindexed(ColumnElement):
    """``duplicate_of IS NULL`` that SQLite may not answer from an index (``canonical``)."""

    type = Boolean()
    inherit_cache = True


@compiles(_CanonicalUnindexed)
def _canonical_default(element, compiler, **kw):
    return compiler.process(FeedbackRow.duplicate_of.is_(None), **kw)


@compiles(_CanonicalUnindexed, "sqlite")
def _canonical_sqlite(element, compiler, **kw):
    # unary + makes the term unusable for an index, and changes nothing else
    return f"+{compiler.process(FeedbackRow.duplicate_of, **kw)} IS NULL"


def canonical(*, unindexed: bool = False):
    """Items that are their own voice (not linked ``duplicate_of`` another). ``unindexed``: for
    reads that walk the time index (newest-first pages, a window of a day or so). SQLite has no
    statistics, and for ``IS NULL`` (nearly every item) it otherwise walks
    ``ix_feedback_duplicate_of``: a window's partial day read every item (0.19 s → 0.035 s at a
    million items), and so did the explorer's newest page (0.23 s → 0.02 s). Over a wide window
    that walk in storage order is the faster one for an aggregate, so the default stays as it
    is. PostgreSQL plans from its statistics and gets plain ``IS NULL`` either way."""
    return _CanonicalUnindexed() if unindexed else FeedbackRow.duplicate_of.is_(None)


@dataclass(frozen=True)
class FeedbackFilter:
    """Filters shared by listing, counting and (later) every aggregate."""

    since: datetime | None = None
    until: datetime | None = None
    sources: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    sentiments: tuple[str, ...] = ()
    aspects: tuple[str, ...] = ()
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # one voice is counted once everywhere: an item linked ``duplicate_of`` an earlier one (the
    # same author, or a cross-post; service/ingest/dedup.py) is left out unless asked for
    include_duplicates: bool = False
    nothing: bool = False  # an empty intersection (e.g. of a request and a data scope)
    brand_scope: tuple[
        str, ...
    ] = ()  # the caller's brands (empty: all): a denominator never goes past it
    disagrees: RatingDisagreement | None = None  # only items whose text disagrees with their rating

    def apply(self, stmt: Select, *, by_time: bool = False) -> Select:
        """``stmt`` narrowed to the filter. ``by_time``: the read walks the time index (newest
        first pages, a window of a day or so), so no condition may offer SQLite another index
        (``canonical``)."""
        if self.nothing:
            return stmt.where(false())
        conds = []
        if self.since:
            conds.append(FeedbackRow.created_at >= self.since)
        if self.until:
            conds.append(FeedbackRow.created_at < self.until)
        for col, values in (
            (FeedbackRow.source, self.sources),
            (FeedbackRow.channel, self.channels),
            (FeedbackRow.brand, self.brands),
            (FeedbackRow.product, self.products),
            (FeedbackRow.region, self.regions),
            (FeedbackRow.language, self.languages),
        ):
            if values:
                conds.append(col.in_(values))
        if self.sentiments:
            conds.append(
                exists()
                .where(
                    ScoreRow.feedback_id == FeedbackRow.id, ScoreRow.sentiment.in_(self.sentiments)
                )
                .correlate(FeedbackRow)
            )
        if self.aspects:
            conds.append(
                exists()
                .where(
                    AspectScoreRow.feedback_id == FeedbackRow.id,
                    AspectScoreRow.aspect.in_(self.aspects),
                )
                .correlate(FeedbackRow)
            )
        for name, values in self.attributes.items():
            conds.append(
                exists()
                .where(
                    AttributeRow.feedback_id == FeedbackRow.id,
                    AttributeRow.name == name,
                    AttributeRow.value.in_(values),
                )
                .correlate(FeedbackRow)
            )
        if not self.include_duplicates:
            conds.append(canonical(unindexed=by_time))
        if self.disagrees is not None:
            conds.append(self.disagrees.condition())
        return stmt.where(and_(*conds)) if conds else stmt

    def scored(self, *columns) -> Select:
        """``columns`` of the scored items under the filter that are their own voice (never a
        duplicate, whatever ``include_duplicates`` says): what themes and the labelling queue
        are fitted on."""
        return self.apply(
            select(*columns)
            .join(ScoreRow, ScoreRow.feedback_id == FeedbackRow.id)
            .where(FeedbackRow.duplicate_of.is_(None))
        )


def utc(dt: datetime | None) -> datetime | None:
    """A timestamp as UTC; a naive one is taken to be UTC already."""
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


class AttributeFilterError(ValueError):
    def __init__(self, index: int, value: str):
        super().__init__(f"attribute filter must be NAME:VALUE, got {value!r}")
        self.index = index


def parse_attribute_filters(pairs: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``["age_group:18-24", …]`` → ``{"age_group": ("18-24", …)}`` (values of one name are OR-ed)."""
    out: dict[str, list[str]] = {}
    for i, p in enumerate(pairs):
        if ":" not in p:
            raise AttributeFilterError(i, p)
        k, v = p.split(":", 1)
        out.setdefault(k, []).append(v)
    return {k: tuple(v) for k, v in out.items()}


class CursorError(ValueError):
    pass


def encode_cursor(created_at: datetime, id_: int) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{id_}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, id_ = raw.rsplit("|", 1)
        dt = datetime.fromisoformat(ts)
        if dt.tzinfo is None:
            raise ValueError
        n = int(id_)
        if not 0 <= n < 2**63:  # ids are 64-bit signed integers in both databases
            raise ValueError(id_)
        return dt.astimezone(UTC), n
    except (ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise CursorError("cursor is not one this API issued") from exc


def list_feedback(
    session: Session, *, flt: FeedbackFilter, limit: int, cursor: str | None = None
) -> tuple[list[Feedback], str | None]:
    """Newest first, keyset-paginated on ``(created_at, id)``."""
    stmt = flt.apply(select(FeedbackRow), by_time=True)
    if cursor:
        ts, id_ = decode_cursor(cursor)
        stmt = stmt.where(
            or_(
                FeedbackRow.created_at < ts,
                and_(FeedbackRow.created_at == ts, FeedbackRow.id < id_),
            )
        )
    stmt = stmt.order_by(FeedbackRow.created_at.desc(), FeedbackRow.id.desc()).limit(limit + 1)
    rows = session.scalars(stmt).all()
    nxt = (
        encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    )
    return [to_domain(r) for r in rows[:limit]], nxt


def recent_texts(
    session: Session, *, flt: FeedbackFilter, limit: int
) -> list[tuple[int, str, str | None]]:
    """``(id, text, language)`` of the newest ``limit`` items within ``flt``."""
    stmt = flt.apply(select(FeedbackRow.id, FeedbackRow.text, FeedbackRow.language), by_time=True)
    stmt = stmt.order_by(FeedbackRow.created_at.desc(), FeedbackRow.id.desc()).limit(limit)
    return [tuple(r) for r in session.execute(stmt)]


def count_feedback(session: Session, *, flt: FeedbackFilter | None = None) -> int:
    """Items under ``flt`` (voices: duplicates left out unless it includes them); without a
    filter, every stored row."""
    stmt = select(func.count()).select_from(FeedbackRow)
    return session.scalar((flt or FeedbackFilter(include_duplicates=True)).apply(stmt)) or 0


def stale_items(
    session: Session, *, model_version: str, after_id: int = 0, limit: int = 512
) -> list[tuple[int, str, str | None]]:
    """``(id, text, language)`` of items never scored or scored by another model version."""
    stmt = (
        select(FeedbackRow.id, FeedbackRow.text, FeedbackRow.language)
        .outerjoin(ScoreRow, ScoreRow.feedback_id == FeedbackRow.id)
        .where(
            FeedbackRow.id > after_id,
            or_(ScoreRow.feedback_id.is_(None), ScoreRow.model_version != model_version),
        )
        .order_by(FeedbackRow.id)
        .limit(limit)
    )
    return [tuple(r) for r in session.execute(stmt)]


def count_stale(session: Session, *, model_version: str) -> int:
    stmt = (
        select(func.count())
        .select_from(FeedbackRow)
        .outerjoin(ScoreRow, ScoreRow.feedback_id == FeedbackRow.id)
        .where(or_(ScoreRow.feedback_id.is_(None), ScoreRow.model_version != model_version))
    )
    return session.scalar(stmt) or 0


# --- aggregates ----------------------------------------------------------------------------

DIMENSIONS = {
    "region": FeedbackRow.region,
    "brand": FeedbackRow.brand,
    "channel": FeedbackRow.channel,
    "language": FeedbackRow.language,
    "product": FeedbackRow.product,
    "source": FeedbackRow.source,
}


class UnknownDimension(ValueError):
    pass


def dimension_column(stmt: Select, name: str) -> tuple[Select, object]:
    """A column for a dimension: a feedback field or ``attr:<name>`` (joined attribute)."""
    if name in DIMENSIONS:
        return stmt, DIMENSIONS[name].label(name)
    if name.startswith("attr:") and len(name) > 5:
        a = aliased(AttributeRow)
        stmt = stmt.outerjoin(a, and_(a.feedback_id == FeedbackRow.id, a.name == name[5:]))
        return stmt, a.value.label(name)
    raise UnknownDimension(
        f"unknown dimension {name!r}; use one of {sorted(DIMENSIONS)} or attr:<name>"
    )


def dimension_columns(stmt: Select, names: Sequence[str]) -> tuple[Select, list]:
    """``dimension_column`` for each of ``names``, in order: the statement with every join it
    needs, and the columns."""
    cols = []
    for name in names:
        stmt, col = dimension_column(stmt, name)
        cols.append(col)
    return stmt, cols


def aspect_split_counts(
    session: Session,
    *,
    aspect: str,
    sentiment: str,
    split_at: datetime,
    group_by: Sequence[str],
    flt: FeedbackFilter | None = None,
) -> list[dict]:
    """Per segment and period (``before``/``after`` ``split_at``): items, and items whose
    ``aspect`` was tagged with ``sentiment``. Computed in the database."""

    stmt, cols = dimension_columns(select(FeedbackRow.id).select_from(FeedbackRow), group_by)
    period = case((FeedbackRow.created_at >= split_at, "after"), else_="before").label("period")
    hit = (
        select(AspectScoreRow.feedback_id)
        .where(
            AspectScoreRow.feedback_id == FeedbackRow.id,
            AspectScoreRow.aspect == aspect,
            AspectScoreRow.sentiment == sentiment,
        )
        .exists()
    )
    stmt = stmt.with_only_columns(
        *cols, period, func.count().label("items"), func.sum(case((hit, 1), else_=0)).label("hits")
    )
    stmt = (flt or FeedbackFilter()).apply(stmt).group_by(*cols, period)
    return [dict(r._mapping) for r in session.execute(stmt)]


def stored_brands(session: Session) -> list[str]:
    """Every brand id stored on an item."""
    return list(session.scalars(select(FeedbackRow.brand).distinct()))


def count_by(
    session: Session, *, dimension: str, flt: FeedbackFilter | None = None
) -> dict[str | None, int]:
    """Item counts per value of a dimension, largest first (computed in the database)."""
    stmt = select(FeedbackRow.id).select_from(FeedbackRow)
    stmt, col = dimension_column(stmt, dimension)
    stmt = (flt or FeedbackFilter()).apply(stmt.with_only_columns(col, func.count().label("n")))
    rows = session.execute(stmt.group_by(col).order_by(func.count().desc())).all()
    return {r[0]: r[1] for r in rows}
