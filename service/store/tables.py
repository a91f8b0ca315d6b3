"""SQLAlchemy 2 tables. Timestamps are stored as UTC and come back timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, MappedColumn, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; everything inside is UTC-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def cascading_key(target: str, **kw: Any) -> MappedColumn[Any]:
    """A reference to the row ``target`` ("table.column") names that is deleted with it (ON
    DELETE CASCADE): an item's attributes, scores and labels go when the item is erased."""
    return mapped_column(BigId, ForeignKey(target, ondelete="CASCADE"), **kw)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class FeedbackRow(Base):
    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_feedback_source_external_id"),
        # newest-first keyset pagination; the time-window scans of PostgreSQL use the BRIN (0008)
        Index("ix_feedback_created_at_id", "created_at", "id"),
        Index(
            "ix_feedback_created_at_brin",
            "created_at",
            postgresql_using="brin",
            postgresql_with={"pages_per_range": 32},
        ).ddl_if(dialect="postgresql"),
        Index("ix_feedback_brand_created_at", "brand", "created_at"),
        Index("ix_feedback_region_created_at", "region", "created_at"),
        Index("ix_feedback_text_hash", "text_hash"),
        CheckConstraint(
            "channel IN ('review','social','complaint','support','survey','other')", name="channel"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(256))
    channel: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(40))
    content_hash: Mapped[str] = mapped_column(String(40))
    minhash: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    brand: Mapped[str] = mapped_column(String(128))
    # how the brand was resolved: field | text | default; None for items stored before 0006
    brand_source: Mapped[str | None] = mapped_column(String(16))
    product: Mapped[str | None] = mapped_column(String(128))
    region: Mapped[str | None] = mapped_column(String(128))
    rating: Mapped[float | None] = mapped_column(Float)
    rating_scale: Mapped[float | None] = mapped_column(Float)
    author_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    language: Mapped[str | None] = mapped_column(String(16))
    duplicate_of: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("feedback.id", ondelete="SET NULL"), index=True
    )
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    attributes: Mapped[list[AttributeRow]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin"
    )
    score: Mapped[ScoreRow | None] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin", uselist=False
    )


class AttributeRow(Base):
    """Free segment fields, one row per (item, name): indexed for breakdowns and filters."""

    __tablename__ = "feedback_attribute"
    # with the item id: a segment filter's semi-join is answered from the index alone
    __table_args__ = (
        Index("ix_feedback_attribute_name_value_feedback_id", "name", "value", "feedback_id"),
    )

    feedback_id: Mapped[int] = cascading_key("feedback.id", primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class BandRow(Base):
    """MinHash LSH band keys for near-duplicate look-up."""

    __tablename__ = "feedback_band"

    band: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    feedback_id: Mapped[int] = cascading_key("feedback.id", primary_key=True, index=True)


class ScoreRow(Base):
    __tablename__ = "score"
    __table_args__ = (
        CheckConstraint("sentiment IN ('negative','neutral','positive')", name="sentiment"),
        CheckConstraint("sentiment_score BETWEEN -1 AND 1", name="sentiment_score"),
    )

    feedback_id: Mapped[int] = cascading_key("feedback.id", primary_key=True)
    sentiment: Mapped[str] = mapped_column(String(8), index=True)
    sentiment_score: Mapped[float] = mapped_column(Float)
    p_negative: Mapped[float] = mapped_column(Float)
    p_neutral: Mapped[float] = mapped_column(Float)
    p_positive: Mapped[float] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(200), index=True)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float16, little-endian
    # the most confident aspect's evidence clause (float16); themes cluster these
    topic_embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # tokens past limits.max_item_tokens that the model did not read (None: it read them all)
    truncated_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime())

    aspects: Mapped[list[AspectScoreRow]] = relationship(
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
        order_by="AspectScoreRow.confidence.desc()",
    )


class AspectScoreRow(Base):
    __tablename__ = "aspect_score"
    __table_args__ = (
        Index("ix_aspect_score_aspect_sentiment_feedback_id", "aspect", "sentiment", "feedback_id"),
    )

    feedback_id: Mapped[int] = cascading_key("score.feedback_id", primary_key=True)
    aspect: Mapped[str] = mapped_column(String(64), primary_key=True)
    confidence: Mapped[float] = mapped_column(Float)
    sentiment: Mapped[str] = mapped_column(String(8))
    sentiment_score: Mapped[float] = mapped_column(Float)
    evidence: Mapped[str] = mapped_column(Text)
    # what tagged it (rule, model, rule+model) and the taxonomy pattern for rule tags; NULL on
    # tags stored before revision 0009 (all of them model tags)
    reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    rule: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ThemeRow(Base):
    """A theme followed over time: its latest centroid (float16) and keywords."""

    __tablename__ = "theme"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    centroid: Mapped[bytes] = mapped_column(LargeBinary)
    # "aspect:polarity" for themes within an aspect opinion, None for themes found among items
    # that carry no aspect; a theme only ever matches a cluster of its own facet
    facet: Mapped[str | None] = mapped_column(String(80), nullable=True)
    # sub-themes: the theme of their facet
    parent_id: Mapped[int | None] = cascading_key("theme.id", nullable=True, index=True)
    keywords: Mapped[str] = mapped_column(Text)  # JSON list
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ThemeSnapshotRow(Base):
    """A theme as found in one analysed window and scope (the segment's filter key)."""

    __tablename__ = "theme_snapshot"

    theme_id: Mapped[int] = cascading_key("theme.id", primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    share: Mapped[float] = mapped_column(Float)
    net_sentiment: Mapped[float] = mapped_column(Float)
    emerging: Mapped[bool] = mapped_column(Boolean)
    keywords: Mapped[str] = mapped_column(Text)  # JSON list
    quotes: Mapped[str] = mapped_column(Text)  # JSON list of feedback ids
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AlertRow(Base):
    """One alert: raised by a rule for a key (rule + what + where), updated while it lasts."""

    __tablename__ = "alert"
    __table_args__ = (
        CheckConstraint("status IN ('open','acknowledged','resolved')", name="status"),
        CheckConstraint("severity IN ('L1','L2','L3')", name="severity"),
        Index("ix_alert_key_status", "key", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(400))
    rule: Mapped[str] = mapped_column(String(80))
    type: Mapped[str] = mapped_column(String(32), index=True)
    severity: Mapped[str] = mapped_column(String(2), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    title: Mapped[str] = mapped_column(Text)
    brand: Mapped[str | None] = mapped_column(String(128), index=True)
    region: Mapped[str | None] = mapped_column(String(128), index=True)
    aspect: Mapped[str | None] = mapped_column(String(64))
    segment: Mapped[str] = mapped_column(Text)  # JSON object
    metric: Mapped[str | None] = mapped_column(String(32))
    baseline: Mapped[float | None] = mapped_column(Float)
    observed: Mapped[float | None] = mapped_column(Float)
    magnitude: Mapped[float | None] = mapped_column(Float)
    confidence: Mapped[float | None] = mapped_column(Float)
    onset: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_detected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_detected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime())
    details: Mapped[str] = mapped_column(Text)  # JSON: drivers, phrases, quotes, series
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AlertEventRow(Base):
    """An alert's history: raised, updated, acknowledged, resolved (who, when, what)."""

    __tablename__ = "alert_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = cascading_key("alert.id", index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)


class TrackedPhraseRow(Base):
    """A keyword or phrase users follow; its embedding finds paraphrases."""

    __tablename__ = "tracked_phrase"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    phrase: Mapped[str] = mapped_column(String(200), unique=True)
    threshold: Mapped[float] = mapped_column(Float)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # float16
    model_version: Mapped[str | None] = mapped_column(String(128))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # the data scope of the keys that track it (JSON lists; both empty: everyone's)
    regions: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    brands: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")


class SubscriptionRow(Base):
    """Who gets what, where and when: an email digest or a webhook, with a data scope."""

    __tablename__ = "subscription"
    __table_args__ = (
        CheckConstraint("channel IN ('email','webhook')", name="channel"),
        CheckConstraint("frequency IN ('immediate','daily','weekly')", name="frequency"),
        CheckConstraint("min_severity IN ('L1','L2','L3')", name="min_severity"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str | None] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(16))  # email | generic | slack | wecom | dingtalk
    target: Mapped[str] = mapped_column(String(2000))  # an email address or a webhook URL
    brands: Mapped[str] = mapped_column(Text, default="[]")  # JSON lists; empty: all
    regions: Mapped[str] = mapped_column(Text, default="[]")
    aspects: Mapped[str] = mapped_column(Text, default="[]")
    min_severity: Mapped[str] = mapped_column(String(2))
    frequency: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8))
    timezone: Mapped[str] = mapped_column(String(64))
    send_hour: Mapped[int] = mapped_column(Integer)
    send_weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday, for weekly digests
    quiet: Mapped[str] = mapped_column(String(16))  # skip | all_quiet: what an empty period sends
    secret_env: Mapped[str | None] = mapped_column(
        String(128)
    )  # env variable holding a webhook secret
    token_salt: Mapped[str] = mapped_column(
        String(64)
    )  # per-subscription part of the unsubscribe token
    immediate_since: Mapped[datetime] = mapped_column(
        UTCDateTime()
    )  # alerts raised before are not sent at once
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OutboxRow(Base):
    """A composed message waiting to be sent, being sent, sent or dead-lettered. ``dedupe_key``
    makes composing idempotent (one digest per subscriber and period, one notice per alert)."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("status IN ('pending','sending','sent','dead','cancelled')", name="status"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    subscription_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("subscription.id", ondelete="SET NULL"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(2000))
    subject: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(255))
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # the RFC 5322 message or the JSON body
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claim_token: Mapped[str | None] = mapped_column(String(32))  # who is sending it now
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiKeyRow(Base):
    """An API key: only its public prefix and the SHA-256 of its secret are stored."""

    __tablename__ = "api_key"
    __table_args__ = (
        CheckConstraint("role IN ('admin','analyst','viewer','ingest')", name="role"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)  # shown in lists and logs
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    regions: Mapped[str] = mapped_column(Text, default="[]")  # JSON lists; empty: unrestricted
    brands: Mapped[str] = mapped_column(Text, default="[]")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditRow(Base):
    """Who did what to what, when: keys, scopes, subscriptions, deletions, alert states."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(256))
    details: Mapped[str] = mapped_column(Text, default="{}")  # JSON; never personal data or secrets


class LabelRow(Base):
    """A person's (or an import's) label on one item: its overall sentiment, whether an aspect
    is present, or an aspect's sentiment. One label per (item, target, aspect): a new label
    replaces the old. Kept through rescoring, model changes and re-ingest (the item keeps its
    id); erased with the item's author."""

    __tablename__ = "label"
    __table_args__ = (
        UniqueConstraint("feedback_id", "target", "aspect", name="uq_label_feedback_id"),
        CheckConstraint("target IN ('sentiment','aspect','aspect_sentiment')", name="target"),
        CheckConstraint(
            "value IN ('negative','neutral','positive','present','absent')", name="value"
        ),
        CheckConstraint("source IN ('correction','queue','import','rating')", name="source"),
        Index("ix_label_target_aspect", "target", "aspect"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    feedback_id: Mapped[int] = cascading_key("feedback.id", index=True)
    target: Mapped[str] = mapped_column(String(16))
    aspect: Mapped[str] = mapped_column(String(64), default="")  # '' for the overall sentiment
    value: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    labeled_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ThemeCacheRow(Base):
    """A themes answer (``GET /v1/themes``) for one scope and window, kept for the request path;
    quotes are item ids (their texts are read through the caller's scope when served)."""

    __tablename__ = "theme_cache"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    span_s: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # window length in seconds
    window_end: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    result: Mapped[str] = mapped_column(Text)  # JSON


class InstallationRow(Base):
    """Values that belong to this installation (``service/store/installation.py``)."""

    __tablename__ = "installation"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class TeamModelRow(Base):
    """A team model trained on the team's labels (``radar train``): small heads over the base
    pipeline's encoder, stored with their checksum and evaluation report. The promoted one
    (latest ``promoted_at`` not ``demoted_at``) scores new items."""

    __tablename__ = "team_model"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    base_pipeline: Mapped[str] = mapped_column(String(64))
    base_encoder: Mapped[str] = mapped_column(String(64))
    taxonomy: Mapped[str] = mapped_column(String(16))  # fingerprint at training time
    sha256: Mapped[str] = mapped_column(String(64))
    weights: Mapped[bytes] = mapped_column(LargeBinary)  # safetensors
    report: Mapped[str] = mapped_column(Text)  # JSON: cross-validated figures, team vs generic
    params: Mapped[str] = mapped_column(Text, default="{}")  # JSON: label counts, settings, timings
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    demoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RollupDayRow(Base):
    """Item counts per UTC day, brand, region and one more dimension's value (``dim`` names it:
    ``''`` for none, a feedback field, or ``attr:<name>``) over canonical items
    (``service/store/rollups.py``). A day's rows are rewritten whole; no key is unique."""

    __tablename__ = "rollup_day"
    __table_args__ = (Index("ix_rollup_day_dim_day", "dim", "day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD, UTC
    dim: Mapped[str] = mapped_column(String(70))
    value: Mapped[str | None] = mapped_column(String(256))
    brand: Mapped[str | None] = mapped_column(String(128))
    region: Mapped[str | None] = mapped_column(String(128))
    items: Mapped[int] = mapped_column(BigInteger)
    scored: Mapped[int] = mapped_column(BigInteger)
    neg: Mapped[int] = mapped_column(BigInteger)
    neu: Mapped[int] = mapped_column(BigInteger)
    pos: Mapped[int] = mapped_column(BigInteger)
    score_sum: Mapped[float] = mapped_column(Float)
    score_sq: Mapped[float] = mapped_column(Float)


class RollupAspectDayRow(Base):
    """Aspect mentions per UTC day, brand, region, one more dimension's value and aspect."""

    __tablename__ = "rollup_aspect_day"
    __table_args__ = (Index("ix_rollup_aspect_day_dim_day", "dim", "day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    day: Mapped[str] = mapped_column(String(10))
    dim: Mapped[str] = mapped_column(String(70))
    value: Mapped[str | None] = mapped_column(String(256))
    brand: Mapped[str | None] = mapped_column(String(128))
    region: Mapped[str | None] = mapped_column(String(128))
    aspect: Mapped[str] = mapped_column(String(64))
    mentions: Mapped[int] = mapped_column(BigInteger)
    neg: Mapped[int] = mapped_column(BigInteger)
    pos: Mapped[int] = mapped_column(BigInteger)
    score_sum: Mapped[float] = mapped_column(Float)
    rating_sum: Mapped[float] = mapped_column(Float)  # ratings on a 5-point scale
    rated: Mapped[int] = mapped_column(BigInteger)


class RollupDirtyRow(Base):
    """A day whose rollup rows are out of date: written in the same transaction as the change
    (one row per writing transaction and day, never updated, so writers never wait on each
    other here); reads answer such days from the items, a refresh recomputes them."""

    __tablename__ = "rollup_dirty"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    day: Mapped[str] = mapped_column(String(10), index=True)


class ActionRow(Base):
    """Something the team changed (a recipe, a courier, replies within 24 hours): what, where
    (brand, product, segment), from when (to when), who owns it and by when it is due; its effect
    is estimated on demand (``service/analytics/effects.py``)."""

    __tablename__ = "action"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('product','packaging','price','service','delivery','communication','other')",
            name="kind",
        ),
        CheckConstraint("status IN ('planned','active','completed','cancelled')", name="status"),
        CheckConstraint(
            "metric IN ('negative_share','net_sentiment','volume','rating')", name="metric"
        ),
        Index("ix_action_brand_started_at", "brand", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16))
    brand: Mapped[str] = mapped_column(String(128))
    product: Mapped[str | None] = mapped_column(String(256))
    region: Mapped[str | None] = mapped_column(
        String(128), index=True
    )  # the segment's region, for scoping
    segment: Mapped[str] = mapped_column(
        Text
    )  # JSON object: dimension → value (region, age_group, …)
    aspect: Mapped[str | None] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(16))
    min_effect: Mapped[float | None] = mapped_column(Float)  # the smallest change worth detecting
    controls: Mapped[str | None] = mapped_column(
        Text
    )  # JSON list of segments; NULL: chosen automatically
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    owner: Mapped[str | None] = mapped_column(String(128))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ActionAlertRow(Base):
    """Which alerts an action answers (an alert's improvement plan)."""

    __tablename__ = "action_alert"

    action_id: Mapped[int] = cascading_key("action.id", primary_key=True)
    alert_id: Mapped[int] = cascading_key("alert.id", primary_key=True, index=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ResponseRow(Base):
    """An answer to one item (from a CRM or by hand): when, by whom, on which channel. The first
    answer of an item is its time to answer; erased with the item."""

    __tablename__ = "feedback_response"
    __table_args__ = (
        Index("ix_feedback_response_feedback_id_responded_at", "feedback_id", "responded_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    feedback_id: Mapped[int] = cascading_key("feedback.id")
    responded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    responder: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(
        String(32)
    )  # how the answer went out: email, phone, public_reply, …
    recorded_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
