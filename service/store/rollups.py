"""Daily rollups: what the dashboard's grouped counts read instead of every item.

Every breakdown, benchmark and trend in Radar is one grouped count over the items of a window:
items, scored items, sentiment counts and score sums per segment, and aspect mentions per
segment and aspect. ``facts`` answers that question for a filter and one or two dimensions.

**What is rolled up.** Per UTC day, brand, region and the value of one more dimension (``dim``:
``''`` for none, or a feedback field or ``attr:<name>`` listed when the rollups were built;
``refresh(dims=...)``, from the dashboard's segment dimensions): ``rollup_day`` holds item
counts, ``rollup_aspect_day`` aspect counts. Only canonical items are counted (an item linked
``duplicate_of`` another is one voice with it), as in every default answer.

**When a question is answered from them.** When every dimension it groups or filters by is
``brand``, ``region`` or one rolled-up dimension, and it asks nothing of sentiment, aspects,
ratings or duplicates. Then the whole UTC days inside the window come from the rollups; the
partial days at its edges and the days a write has made stale come from the items, and the two
are added. Anything else is answered from the items, as before. The answer is the same either
way (tests compare them after ingest, rescoring, duplicate links and erasure, on both
databases); only its cost differs: about a day's items plus the rollup rows of the window,
instead of every item of the window.

**How they stay true.** Every write of items, scores, attributes or links marks the days it
touches in ``rollup_dirty`` in the same transaction (``service/store/dirty.py``). Reads answer
those days from the items; ``refresh`` recomputes them (``radar serve`` every
``dashboard.rollups_every_seconds``, ``radar ingest``/``rescore`` when they finish, ``radar db
rollups``). A store whose rollups were never built is answered from the items.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Float,
    String,
    case,
    cast,
    delete,
    false,
    func,
    insert,
    literal,
    null,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from service.store.dirty import day_text
from service.store.repo import (
    FeedbackFilter,
    _chunks,
    canonical,
    dimension_column,
    dimension_columns,
)
from service.store.tables import (
    AspectScoreRow,
    FeedbackRow,
    InstallationRow,
    RollupAspectDayRow,
    RollupDayRow,
    RollupDirtyRow,
    ScoreRow,
)

BUILT = "rollup_dimensions"  # installation row: the dimensions the rollups hold (JSON), absent: none built
KEYED = ("brand", "region")  # every rollup row carries these
_LOCK = 7_211_305_114  # PostgreSQL advisory lock: one refresh at a time
DAY = timedelta(days=1)


@dataclass
class ItemFacts:
    items: int = 0
    scored: int = 0
    neg: int = 0
    neu: int = 0
    pos: int = 0
    score_sum: float = 0.0
    score_sq: float = 0.0

    def add(self, o: ItemFacts | AspectFacts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(o, f.name))


@dataclass
class AspectFacts:
    mentions: int = 0
    neg: int = 0
    pos: int = 0
    score_sum: float = 0.0
    rating_sum: float = 0.0  # ratings on a 5-point scale, of the rated mentions
    rated: int = 0

    add = ItemFacts.add


def _sum(x):
    return func.coalesce(func.sum(x), 0)  # 0, not NULL, over no (scored, rated) rows


def _item_measures():
    s = ScoreRow.sentiment
    return [
        func.count(FeedbackRow.id),
        func.count(ScoreRow.feedback_id),
        _sum(case((s == "negative", 1), else_=0)),
        _sum(case((s == "neutral", 1), else_=0)),
        _sum(case((s == "positive", 1), else_=0)),
        _sum(ScoreRow.sentiment_score),
        _sum(ScoreRow.sentiment_score * ScoreRow.sentiment_score),
    ]


def _aspect_measures():
    s = AspectScoreRow.sentiment
    rating5 = case(
        (
            FeedbackRow.rating_scale > 0,
            cast(FeedbackRow.rating, Float) * 5.0 / cast(FeedbackRow.rating_scale, Float),
        ),
        else_=None,
    )
    return [
        func.count(),
        _sum(case((s == "negative", 1), else_=0)),
        _sum(case((s == "positive", 1), else_=0)),
        _sum(AspectScoreRow.sentiment_score),
        _sum(rating5),
        func.count(rating5),
    ]


def _base(aspects: bool):
    stmt = select(FeedbackRow.id).select_from(FeedbackRow)
    if aspects:
        return stmt.join(AspectScoreRow, AspectScoreRow.feedback_id == FeedbackRow.id)
    return stmt.outerjoin(ScoreRow, ScoreRow.feedback_id == FeedbackRow.id)


def _kind(aspects: bool) -> type[ItemFacts] | type[AspectFacts]:
    """The measures of a question; their names are also the rollup tables' columns."""
    return AspectFacts if aspects else ItemFacts


def _facts(row: Sequence, aspects: bool) -> ItemFacts | AspectFacts:
    cls = _kind(aspects)
    return cls(*(type(f.default)(v or 0) for f, v in zip(fields(cls), row)))


def _merge(into: dict, key: tuple, f) -> None:
    if key in into:
        into[key].add(f)
    else:
        into[key] = f


@dataclass(frozen=True)
class Question:
    """What ``facts`` is asked: the items under ``flt``, grouped by ``([day,] *dims[, aspect])``."""

    flt: FeedbackFilter
    dims: Sequence[str]
    aspects: bool = False
    by_day: bool = False


def from_items(
    session: Session, q: Question, *, into: dict | None = None, narrow: bool = False
) -> dict:
    """``facts`` computed from the items themselves (added into ``into`` if given); ``narrow``:
    the window is a day or a few, read through the time index (``repo.canonical``)."""
    out = {} if into is None else into
    flt, dims, aspects, by_day = q.flt, q.dims, q.aspects, q.by_day
    if flt.nothing:
        return out
    stmt, cols = _base(aspects), []
    if by_day:
        cols.append(day_text(session).label("day"))
    stmt, dim_cols = dimension_columns(stmt, dims)
    cols += dim_cols
    if aspects:
        cols.append(AspectScoreRow.aspect)
    measures = _aspect_measures() if aspects else _item_measures()
    stmt = flt.apply(stmt.with_only_columns(*cols, *measures), by_time=narrow).group_by(*cols)
    k = len(cols)
    for r in session.execute(stmt):
        _merge(out, tuple(r[:k]), _facts(r[k:], aspects))
    return out


def built_dimensions(session: Session) -> list[str] | None:
    """The dimensions the rollups hold besides brand and region; None: never built."""
    value = session.scalar(select(InstallationRow.value).where(InstallationRow.name == BUILT))
    return None if value is None else list(json.loads(value))


def _field_filters(flt: FeedbackFilter) -> dict[str, tuple[str, ...]]:
    """The values ``flt`` keeps of each feedback field a rollup's extra dimension may be."""
    return {
        "source": flt.sources,
        "channel": flt.channels,
        "product": flt.products,
        "language": flt.languages,
    }


def _extra_dimension(flt: FeedbackFilter, dims: Sequence[str], built: Sequence[str]) -> str | None:
    """The one rolled-up dimension (``''``: none) a question needs besides brand and region, or
    None when the rollups cannot answer it."""
    if flt.include_duplicates or flt.sentiments or flt.aspects or flt.disagrees is not None:
        return None
    extra = {d for d in dims if d not in KEYED}
    extra.update(name for name, values in _field_filters(flt).items() if values)
    extra.update(f"attr:{name}" for name in flt.attributes)
    if len(extra) > 1:
        return None
    x = extra.pop() if extra else ""
    return x if x == "" or x in built else None


def _value_filter(flt: FeedbackFilter, x: str) -> tuple[str, ...]:
    if x.startswith("attr:"):
        return flt.attributes.get(x[5:], ())
    return _field_filters(flt).get(x, ())


def _day_start(day: str) -> datetime:
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)


def _ranges(days: Sequence[str]) -> list[tuple[datetime, datetime]]:
    """Sorted days as half-open UTC time ranges, adjacent days joined."""
    out: list[tuple[datetime, datetime]] = []
    for d in sorted(set(days)):
        start = _day_start(d)
        if out and out[-1][1] == start:
            out[-1] = (out[-1][0], start + DAY)
        else:
            out.append((start, start + DAY))
    return out


def facts(
    session: Session,
    *,
    flt: FeedbackFilter,
    dims: Sequence[str],
    aspects: bool = False,
    by_day: bool = False,
) -> dict[tuple, ItemFacts | AspectFacts]:
    """Grouped counts of the items under ``flt``: key ``([day,] *dims[, aspect])`` (a dimension's
    value is None where an item lacks it) → ``ItemFacts``, or ``AspectFacts`` per tagged aspect
    when ``aspects``. From the rollups where they can answer (module docstring), else from the
    items; the same answer either way."""
    if flt.nothing:
        return {}
    q = Question(flt, dims, aspects, by_day)
    built = built_dimensions(session)
    x = None if built is None else _extra_dimension(flt, dims, built)
    if x is None:
        return from_items(session, q)
    # whole days inside the window
    first = (
        None if flt.since is None else _day_start(flt.since.astimezone(UTC).strftime("%Y-%m-%d"))
    )
    if first is not None and first < flt.since:
        first += DAY
    end = None if flt.until is None else _day_start(flt.until.astimezone(UTC).strftime("%Y-%m-%d"))
    if first is not None and end is not None and first >= end:
        return from_items(session, q)
    lo = None if first is None else first.strftime("%Y-%m-%d")
    hi = None if end is None else end.strftime("%Y-%m-%d")
    stale_q = select(RollupDirtyRow.day).distinct()
    if lo is not None:
        stale_q = stale_q.where(RollupDirtyRow.day >= lo)
    if hi is not None:
        stale_q = stale_q.where(RollupDirtyRow.day < hi)
    stale = sorted(session.scalars(stale_q))
    out: dict = {}
    # from the items: the edges and the stale days
    pieces: list[tuple[datetime | None, datetime | None]] = []
    if flt.since is not None and first > flt.since:
        pieces.append((flt.since, first))
    if flt.until is not None and end < flt.until:
        pieces.append((end, flt.until))
    pieces.extend(_ranges(stale))
    for since, until in pieces:
        piece = replace(q, flt=replace(flt, since=since, until=until))
        from_items(session, piece, into=out, narrow=True)
    # from the rollups: the rest
    t = RollupAspectDayRow if aspects else RollupDayRow
    col = {"brand": t.brand, "region": t.region, x: t.value}
    cols = ([t.day] if by_day else []) + [col[d] for d in dims] + ([t.aspect] if aspects else [])
    measures = [func.sum(getattr(t, f.name)) for f in fields(_kind(aspects))]
    stmt = select(*cols, *measures).where(t.dim == x)
    if lo is not None:
        stmt = stmt.where(t.day >= lo)
    if hi is not None:
        stmt = stmt.where(t.day < hi)
    if stale:
        stmt = stmt.where(t.day.not_in(stale))
    if flt.brands:
        stmt = stmt.where(t.brand.in_(flt.brands))
    if flt.regions:
        stmt = stmt.where(t.region.in_(flt.regions))
    values = _value_filter(flt, x) if x else ()
    if values:
        stmt = stmt.where(t.value.in_(values))
    k = len(cols)
    for r in session.execute(stmt.group_by(*cols) if cols else stmt):
        if r[k] is None:  # a sum over no rows
            continue
        _merge(out, tuple(r[:k]), _facts(r[k:], aspects))
    return out


# --- keeping them true ----------------------------------------------------------------------


def _lock(session: Session) -> None:
    """One refresh at a time, and on SQLite the write lock now (reads below see the newest)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
    else:
        session.execute(update(RollupDirtyRow).where(false()).values(day=RollupDirtyRow.day))


def _compute(
    session: Session, dim: str, ranges: Sequence[tuple[datetime, datetime]] | None
) -> None:
    """Insert the rollup rows of ``dim`` for the days in ``ranges`` (None: every day)."""
    day = day_text(session).label("day")
    for aspects, table in ((False, RollupDayRow), (True, RollupAspectDayRow)):
        stmt = _base(aspects)
        if dim:
            stmt, value = dimension_column(stmt, dim)
        else:
            value = cast(null(), String)
        keys = [day, literal(dim), value, FeedbackRow.brand, FeedbackRow.region]
        if aspects:
            keys.append(AspectScoreRow.aspect)
        stmt = stmt.with_only_columns(*keys, *(_aspect_measures() if aspects else _item_measures()))
        stmt = stmt.where(canonical(unindexed=ranges is not None))
        stmt = stmt.group_by(
            day,
            *([value] if dim else []),
            FeedbackRow.brand,
            FeedbackRow.region,
            *([AspectScoreRow.aspect] if aspects else []),
        )
        names = [
            "day",
            "dim",
            "value",
            "brand",
            "region",
            *(["aspect"] if aspects else []),
            *(f.name for f in fields(_kind(aspects))),
        ]
        for since, until in ranges if ranges is not None else [(None, None)]:
            part = stmt
            if since is not None:
                part = part.where(FeedbackRow.created_at >= since, FeedbackRow.created_at < until)
            session.execute(insert(table).from_select(names, part))


def refresh(
    session: Session,
    *,
    dims: Sequence[str],
    rebuild: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Bring the rollups up to date: recompute the stale days, build dimensions newly asked for,
    drop ones no longer asked for; everything when ``rebuild`` or never built. ``dims`` are
    canonical dimension names (feedback fields or ``attr:<name>``; brand and region are always
    there). The caller commits; interrupted before that, nothing changes."""
    say = progress or (lambda _m: None)
    want = list(dict.fromkeys(d for d in dims if d not in KEYED))
    _lock(session)
    have = built_dimensions(session)
    marks = session.execute(select(RollupDirtyRow.id, RollupDirtyRow.day)).all()
    full = rebuild or have is None
    days = sorted({d for _, d in marks})
    summary = {"rebuilt": full, "stale_days": 0 if full else len(days), "dimensions": want}
    if full:
        for t in (RollupDayRow, RollupAspectDayRow):
            session.execute(delete(t))
        for i, dim in enumerate(["", *want], 1):
            say(f"rollups: {dim or 'brand × region'} ({i}/{len(want) + 1})")
            _compute(session, dim, None)
    else:
        gone = [d for d in have if d not in want]
        added = [d for d in want if d not in have]
        for t in (RollupDayRow, RollupAspectDayRow):
            if gone or added:
                session.execute(delete(t).where(t.dim.in_(gone + added)))
            for part in _chunks(days):
                session.execute(delete(t).where(t.day.in_(part)))
        for i, dim in enumerate(added, 1):
            say(f"rollups: {dim} ({i}/{len(added)})")
            _compute(session, dim, None)
        if days:
            ranges = _ranges(days)
            for dim in ["", *[d for d in want if d not in added]]:
                _compute(session, dim, ranges)
    for part in _chunks([i for i, _ in marks]):
        session.execute(delete(RollupDirtyRow).where(RollupDirtyRow.id.in_(part)))
    value = json.dumps(want)
    if have is None:
        session.add(InstallationRow(name=BUILT, value=value))
    elif have != want:
        session.execute(
            update(InstallationRow).where(InstallationRow.name == BUILT).values(value=value)
        )
    session.flush()
    summary["rows"] = sum(
        session.scalar(select(func.count()).select_from(t)) or 0
        for t in (RollupDayRow, RollupAspectDayRow)
    )
    return summary


def stale_days(session: Session) -> int:
    return session.scalar(select(func.count(func.distinct(RollupDirtyRow.day)))) or 0


def drop(session: Session) -> None:
    """Forget the rollups (every answer then comes from the items)."""
    for t in (RollupDayRow, RollupAspectDayRow, RollupDirtyRow):
        session.execute(delete(t))
    session.execute(delete(InstallationRow).where(InstallationRow.name == BUILT))
