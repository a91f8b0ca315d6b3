"""Time series of what customers say, per aspect, segment, brand and tracked phrase.

A series is counted in the database, one row per UTC bucket (``hour``, ``day`` or ``week``;
weeks start on Monday 00:00 UTC), and every bucket of the window is present: a period with
nothing in it is a row of zeros, not a gap. Per bucket:

* ``items``: items of the segment (the filters without the brand restriction when a brand is
  asked for: the brand's share of its segment's conversation);
* ``mentions``: items that mention the aspect (or the phrase; without either, the items of the
  filters themselves);
* ``negative``: mentions whose sentiment is negative (the aspect's own sentiment for an
  aspect series, the item's otherwise), and ``sentiment_sum`` likewise;
* derived: ``share_of_voice = mentions / items``, ``negative_share = negative / mentions``,
  ``mean_sentiment = sentiment_sum / mentions`` (None where the denominator is 0).

Tracked phrases ("too spicy", "太辣") match an item when the phrase occurs in its text
(case-insensitive) or when the cosine between the phrase's embedding and the item's topic
vector (its main aspect's evidence clause; the whole-text vector where it has none) reaches the
phrase's threshold (default ``PHRASE_THRESHOLD``, chosen on the demo data: it takes in the
paraphrases of a complaint and leaves out the other complaints about the same aspect; see
``tests/analytics/test_trends.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
from sqlalchemy import Integer, Select, String, case, func, literal, select
from sqlalchemy.orm import Session

from service.analytics.forecast import forecast
from service.analytics.shifts import detect
from service.analytics.theme_model import decode_vectors
from service.domain import DataScope
from service.store import rollups
from service.store.repo import FeedbackFilter
from service.store.tables import AspectScoreRow, FeedbackRow, ScoreRow, TrackedPhraseRow

Bucket = Literal["hour", "day", "week"]
BUCKETS: dict[str, timedelta] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
}
PHRASE_THRESHOLD = 0.9
MAX_PERIODS = 2_000


class SeriesError(ValueError):
    """A series request that cannot be answered (unknown bucket, window too long…)."""


def floor(ts: datetime, bucket: Bucket) -> datetime:
    """The start of ``ts``'s bucket, in UTC."""
    ts = ts.astimezone(UTC)
    if bucket == "hour":
        return ts.replace(minute=0, second=0, microsecond=0)
    day = ts.replace(hour=0, minute=0, second=0, microsecond=0)
    return day if bucket == "day" else day - timedelta(days=day.weekday())


def periods(since: datetime, until: datetime, bucket: Bucket) -> list[datetime]:
    """Bucket starts covering ``[since, until)``."""
    if bucket not in BUCKETS:
        raise SeriesError(f"unknown bucket {bucket!r}; use one of {sorted(BUCKETS)}")
    start, step = floor(since, bucket), BUCKETS[bucket]
    n = int(np.ceil((until - start) / step)) if until > start else 0
    if n > MAX_PERIODS:
        raise SeriesError(
            f"{n} {bucket} periods requested; at most {MAX_PERIODS}: use a longer bucket"
        )
    return [start + i * step for i in range(n)]


def bucket_key(session: Session, bucket: Bucket):
    """A SQL expression for the bucket of ``created_at`` as text ``YYYY-MM-DD[ HH]`` (UTC)."""
    col = FeedbackRow.created_at
    if session.get_bind().dialect.name == "postgresql":
        utc = func.timezone("UTC", col)
        fmt = "YYYY-MM-DD HH24" if bucket == "hour" else "YYYY-MM-DD"
        return func.to_char(func.date_trunc(bucket, utc), fmt)
    # SQLite keeps naive UTC text; weeks: back to Monday (%w: Sunday = 0)
    if bucket == "hour":
        return func.strftime("%Y-%m-%d %H", col)
    if bucket == "day":
        return func.strftime("%Y-%m-%d", col)
    back = (func.cast(func.strftime("%w", col), Integer) + 6) % 7
    return func.date(col, literal("-") + func.cast(back, String) + literal(" days"))


def parse_bucket_key(key: str) -> datetime:
    fmt = "%Y-%m-%d %H" if len(key) > 10 else "%Y-%m-%d"
    return datetime.strptime(key, fmt).replace(tzinfo=UTC)


@dataclass
class Series:
    """One metric family over the periods of a window (lists aligned with ``periods``)."""

    bucket: str
    periods: list[datetime]
    items: np.ndarray
    mentions: np.ndarray
    negative: np.ndarray
    sentiment_sum: np.ndarray

    @classmethod
    def zeros(cls, bucket: str, grid: list[datetime]) -> Series:
        """Every period of ``grid``, nothing counted yet."""
        return cls(
            bucket,
            grid,
            np.zeros(len(grid), np.int64),
            np.zeros(len(grid), np.int64),
            np.zeros(len(grid), np.int64),
            np.zeros(len(grid), np.float64),
        )

    @property
    def share_of_voice(self) -> list[float | None]:
        return _ratio(self.mentions, self.items)

    @property
    def negative_share(self) -> list[float | None]:
        return _ratio(self.negative, self.mentions)

    @property
    def mean_sentiment(self) -> list[float | None]:
        return _ratio(self.sentiment_sum, self.mentions)

    def to_dict(self) -> dict:
        return {
            "bucket": self.bucket,
            "points": [
                {
                    "period": p.isoformat(),
                    "items": int(i),
                    "mentions": int(m),
                    "negative": int(n),
                    "share_of_voice": sov,
                    "negative_share": ns,
                    "mean_sentiment": ms,
                }
                for p, i, m, n, sov, ns, ms in zip(
                    self.periods,
                    self.items,
                    self.mentions,
                    self.negative,
                    self.share_of_voice,
                    self.negative_share,
                    self.mean_sentiment,
                )
            ],
        }


def _ratio(num: np.ndarray, den: np.ndarray) -> list[float | None]:
    return [round(float(a) / float(b), 6) if b else None for a, b in zip(num, den)]


def _counts(session: Session, stmt: Select, key) -> dict[str, tuple]:
    return {k: tuple(rest) for k, *rest in session.execute(stmt.group_by(key))}


def series(
    session: Session,
    *,
    flt: FeedbackFilter,
    since: datetime,
    until: datetime,
    bucket: Bucket = "week",
    aspect: str | None = None,
    phrase: TrackedPhraseRow | None = None,
) -> Series:
    """The series of ``[since, until)`` under ``flt``; ``aspect`` or a tracked ``phrase`` (the
    items it matches, ``phrase_matches``) narrow the mentions."""
    phrase_ids = None
    if phrase is not None:
        phrase_ids = phrase_matches(
            session,
            flt=replace(flt, since=since, until=until),
            phrase=phrase.phrase,
            embedding=phrase_vector(phrase),
            threshold=phrase.threshold,
        )
    grid = periods(since, until, bucket)
    flt = replace(flt, since=since, until=until, include_duplicates=False)
    # share of voice: a brand's mentions among every brand's items in the segment (every brand
    # the caller may see, that is)
    segment = replace(flt, brands=flt.brand_scope) if flt.brands else flt
    if bucket != "hour" and phrase_ids is None:
        return _series_by_day(session, grid, bucket, flt, segment, aspect)
    key = bucket_key(session, bucket).label("k")
    base = select(key, func.count()).select_from(FeedbackRow)
    items = _counts(session, segment.apply(base), key)
    scores = AspectScoreRow if aspect is not None else ScoreRow  # an aspect's own sentiment
    stmt = (
        select(
            key,
            func.count(),
            func.sum(case((scores.sentiment == "negative", 1), else_=0)),
            func.sum(scores.sentiment_score),
        )
        .select_from(FeedbackRow)
        .join(scores, scores.feedback_id == FeedbackRow.id)
    )
    if aspect is not None:
        stmt = stmt.where(AspectScoreRow.aspect == aspect)
    elif phrase_ids is not None:
        stmt = stmt.where(FeedbackRow.id.in_(phrase_ids or {-1}))
    mentions = _counts(session, flt.apply(stmt), key)
    idx = {p: i for i, p in enumerate(grid)}
    out = Series.zeros(bucket, grid)
    for k, (n,) in items.items():
        i = idx.get(parse_bucket_key(k))
        if i is not None:
            out.items[i] = n
    for k, (n, neg, total) in mentions.items():
        i = idx.get(parse_bucket_key(k))
        if i is not None:
            out.mentions[i], out.negative[i], out.sentiment_sum[i] = n, neg or 0, total or 0.0
    return out


def _series_by_day(
    session: Session,
    grid: list[datetime],
    bucket: Bucket,
    flt: FeedbackFilter,
    segment: FeedbackFilter,
    aspect: str | None,
) -> Series:
    """``series`` from daily counts (the rollups where they answer), folded into ``bucket``."""
    idx = {p: i for i, p in enumerate(grid)}
    out = Series.zeros(bucket, grid)

    def slot(day: str) -> int | None:
        return idx.get(floor(parse_bucket_key(day), bucket))

    if aspect is not None and flt.aspects == (aspect,):
        # the items that mention the aspect (the API's aspect filter) are its mentions: counted
        # from the aspect's rows, which the rollups hold, instead of through a filter they lack
        flt, segment = replace(flt, aspects=()), replace(segment, aspects=())
        for (day, a), f in rollups.facts(
            session, flt=segment, dims=[], aspects=True, by_day=True
        ).items():
            if a == aspect and (i := slot(day)) is not None:
                out.items[i] += f.mentions
    else:
        for (day,), f in rollups.facts(session, flt=segment, dims=[], by_day=True).items():
            if (i := slot(day)) is not None:
                out.items[i] += f.items
    if aspect is not None:
        for (day, a), f in rollups.facts(
            session, flt=flt, dims=[], aspects=True, by_day=True
        ).items():
            if a == aspect and (i := slot(day)) is not None:
                out.mentions[i] += f.mentions
                out.negative[i] += f.neg
                out.sentiment_sum[i] += f.score_sum
    else:
        for (day,), f in rollups.facts(session, flt=flt, dims=[], by_day=True).items():
            if (i := slot(day)) is not None:
                out.mentions[i] += f.scored
                out.negative[i] += f.neg
                out.sentiment_sum[i] += f.score_sum
    return out


def phrase_matches(
    session: Session,
    *,
    flt: FeedbackFilter,
    phrase: str,
    embedding: np.ndarray | None,
    threshold: float = PHRASE_THRESHOLD,
    chunk: int = 20_000,
) -> set[int]:
    """Ids of the canonical items under ``flt`` that mention ``phrase`` or a close paraphrase."""

    flt = replace(flt, include_duplicates=False)
    literal_ids = set(
        session.scalars(
            flt.apply(
                select(FeedbackRow.id).where(
                    func.lower(FeedbackRow.text).contains(phrase.lower(), autoescape=True)
                )
            )
        )
    )
    if embedding is None:
        return literal_ids
    target = np.asarray(embedding, np.float32)
    target = target / max(float(np.linalg.norm(target)), 1e-12)
    stmt = flt.apply(
        select(FeedbackRow.id, ScoreRow.embedding, ScoreRow.topic_embedding).join(
            ScoreRow, ScoreRow.feedback_id == FeedbackRow.id
        )
    ).order_by(FeedbackRow.id)
    found = set(literal_ids)
    rows = session.execute(stmt).yield_per(chunk).partitions(chunk)
    for part in rows:
        vecs = decode_vectors([t if t is not None else e for _, e, t in part])
        hit = vecs @ target >= threshold
        found.update(int(part[i][0]) for i in np.flatnonzero(hit))
    return found


def slope(values: list[float | None], weights: np.ndarray | None = None) -> dict | None:
    """Weighted least-squares slope per period of a series (None values skipped) with its
    95% interval and p-value: how a slow trend is reported (not alerted)."""
    import statsmodels.api as sm  # slow to import (seconds): only when this analysis runs

    y = np.array([np.nan if v is None else v for v in values], float)
    ok = ~np.isnan(y)
    if ok.sum() < 4:
        return None
    x = np.arange(len(y))[ok]
    w = np.ones(ok.sum()) if weights is None else np.maximum(np.asarray(weights, float)[ok], 1e-9)
    res = sm.WLS(y[ok], sm.add_constant(x.astype(float)), weights=w).fit()
    lo, hi = res.conf_int(0.05)[1]
    p = float(res.pvalues[1]) if np.isfinite(res.pvalues[1]) else 1.0
    return {
        "per_period": round(float(res.params[1]), 6),
        "lower": round(float(lo), 6),
        "upper": round(float(hi), 6),
        "p_value": round(p, 6),
        "direction": "flat" if p >= 0.05 else ("up" if res.params[1] > 0 else "down"),
    }


# --- tracked phrases -----------------------------------------------------------------------


class PhraseError(ValueError):
    pass


class PhraseScope(DataScope):
    """The data scope of a key that tracks a phrase (None: unrestricted)."""

    @staticmethod
    def _of(values: str) -> set[str]:
        return set(json.loads(values or "[]"))

    def sees(self, row: TrackedPhraseRow) -> bool:
        """Whether this scope lists ``row``: every phrase for an unrestricted key, and for a
        scoped one the phrases of everyone (tracked by an unrestricted key) or of its scope."""
        regions, brands = self._of(row.regions), self._of(row.brands)
        return (not regions or self.regions is None or bool(regions & set(self.regions))) and (
            not brands or self.brands is None or bool(brands & set(self.brands))
        )

    def widen(self, row: TrackedPhraseRow) -> None:
        """``row`` is tracked by this scope too: its scope is the union (unrestricted wins)."""
        for name, mine in (("regions", self.regions), ("brands", self.brands)):
            theirs = self._of(getattr(row, name))
            union = [] if mine is None or not theirs else sorted(theirs | set(mine))
            setattr(row, name, json.dumps(union, ensure_ascii=False))


def add_phrase(
    session: Session,
    *,
    phrase: str,
    embedding: np.ndarray | None,
    threshold: float | None,
    model_version: str | None,
    actor: str,
    scope: PhraseScope = PhraseScope(),
) -> TrackedPhraseRow:
    phrase = " ".join(phrase.split())
    if not phrase:
        raise PhraseError("the phrase is empty")
    if len(phrase) > 200:
        raise PhraseError(f"the phrase has {len(phrase)} characters; at most 200")
    existing = session.scalars(
        select(TrackedPhraseRow).where(TrackedPhraseRow.phrase == phrase)
    ).first()
    if existing is not None:
        if not scope.sees(existing):
            scope.widen(existing)
            session.commit()
        return existing
    row = TrackedPhraseRow(
        phrase=phrase,
        threshold=PHRASE_THRESHOLD if threshold is None else threshold,
        embedding=None if embedding is None else np.asarray(embedding, "<f2").tobytes(),
        model_version=model_version,
        created_by=actor,
        created_at=datetime.now(UTC),
        regions=json.dumps(sorted(scope.regions or []), ensure_ascii=False),
        brands=json.dumps(sorted(scope.brands or []), ensure_ascii=False),
    )
    session.add(row)
    session.commit()
    return row


def track_phrase(
    session: Session,
    scorer,
    phrase: str,
    *,
    threshold: float | None = None,
    paraphrases: bool = True,
    actor: str,
    scope: PhraseScope = PhraseScope(),
) -> TrackedPhraseRow:
    """Track ``phrase``; with ``paraphrases`` its embedding (as the scorer embeds an evidence
    clause) is stored so that close paraphrases match too."""
    emb = None
    if paraphrases:
        scored = scorer.score([phrase])[0]
        emb = scored.topic_embedding if scored.topic_embedding is not None else scored.embedding
    return add_phrase(
        session,
        phrase=phrase,
        embedding=emb,
        threshold=threshold,
        model_version=getattr(scorer, "version", None),
        actor=actor,
        scope=scope,
    )


def phrase_dict(row: TrackedPhraseRow) -> dict:
    return {
        "id": row.id,
        "phrase": row.phrase,
        "threshold": row.threshold,
        "paraphrases": row.embedding is not None,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
    }


# --- reports (what the API and the CLI answer) ---------------------------------------------

METRICS = ("volume", "share_of_voice", "negative_share", "mean_sentiment")


def _metric_inputs(s: Series, metric: str) -> tuple[np.ndarray, str, np.ndarray | None]:
    """``(y, kind, trials)`` for the forecaster/detectors."""
    if metric == "volume":
        return s.mentions.astype(float), "count", None
    if metric == "share_of_voice":
        return s.mentions.astype(float), "proportion", s.items
    if metric == "negative_share":
        return s.negative.astype(float), "proportion", s.mentions
    if metric == "mean_sentiment":
        vals = np.array([np.nan if v is None else v for v in s.mean_sentiment], float)
        return vals, "level", None
    raise SeriesError(f"unknown metric {metric!r}; use one of {list(METRICS)}")


def phrase_vector(phrase: TrackedPhraseRow) -> np.ndarray | None:
    return (
        None
        if phrase.embedding is None
        else np.frombuffer(phrase.embedding, "<f2").astype(np.float32)
    )


@dataclass(frozen=True)
class TrendQuery:
    """What a trend or forecast report is of: the items under ``flt`` in ``[since, until)`` per
    ``bucket``, and of them an aspect's mentions, a tracked phrase's, or (neither) every item.
    Its fields are the parameters of ``series``."""

    flt: FeedbackFilter
    since: datetime
    until: datetime
    bucket: Bucket = "week"
    aspect: str | None = None
    phrase: TrackedPhraseRow | None = None

    def series(self, session: Session) -> Series:
        return series(session, **vars(self))

    def selection(self) -> dict:
        """The aspect and the tracked phrase, as the reports name them."""
        return {
            "aspect": self.aspect,
            "phrase": None if self.phrase is None else phrase_dict(self.phrase),
        }


def trend_report(session: Session, query: TrendQuery) -> dict:
    """The series, each metric's linear trend, and the shifts the detectors see in it."""

    s = query.series(session)
    out = {
        "window": {"since": query.since.isoformat(), "until": query.until.isoformat()},
        **query.selection(),
        **s.to_dict(),
    }
    out["trend"] = {
        "volume": slope([float(v) for v in s.mentions]),
        "share_of_voice": slope(s.share_of_voice, s.items),
        "negative_share": slope(s.negative_share, s.mentions),
        "mean_sentiment": slope(s.mean_sentiment, s.mentions),
    }
    shifts = []
    for metric in ("volume", "negative_share"):
        y, kind, trials = _metric_inputs(s, metric)
        for d in detect(y, kind=kind, trials=trials):
            shifts.append(
                {
                    "metric": metric,
                    "period": s.periods[min(d.onset, len(s.periods) - 1)].isoformat(),
                    **d.to_dict(),
                }
            )
    out["shifts"] = shifts
    return out


def forecast_report(
    session: Session, query: TrendQuery, *, metric: str, horizon: int, alpha: float, seed: int
) -> dict:
    s = query.series(session)
    y, kind, trials = _metric_inputs(s, metric)
    if kind == "level":  # periods without mentions carry no level: forecast the observed ones
        keep = ~np.isnan(y)
        y = y[keep]
    if len(y) == 0:
        raise SeriesError("nothing to forecast: the series has no observed periods in this window")
    season = 7 if query.bucket == "day" else None
    fc = forecast(y, horizon, kind=kind, trials=trials, alpha=alpha, seed=seed, season=season)
    step = BUCKETS[query.bucket]
    start = s.periods[-1] + step if s.periods else floor(query.until, query.bucket)
    history = getattr(s, metric) if metric != "volume" else [int(v) for v in s.mentions]
    return {
        "metric": metric,
        **query.selection(),
        "bucket": query.bucket,
        "alpha": alpha,
        "seed": seed,
        "model": fc.model,
        "criterion": fc.criterion,
        "history": [{"period": p.isoformat(), "value": v} for p, v in zip(s.periods, history)],
        "forecast": [
            {
                "period": (start + i * step).isoformat(),
                "mean": float(m),
                "lower": float(lo),
                "upper": float(hi),
            }
            for i, (m, lo, hi) in enumerate(zip(fc.mean, fc.lower, fc.upper))
        ],
    }
