"""Daily rollups give the same answers as the items themselves, on SQLite and PostgreSQL: after
ingest, updates that move an item to another day or segment, duplicate links, rescoring and
erasure, whether the touched days were recomputed yet or not; windows that start and end
mid-day; filters the rollups cannot answer; and dimensions added later."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from service.analytics.benchmark import counts as benchmark_counts
from service.analytics.segments import breakdown, differences
from service.analytics.trends import series
from service.domain import AspectScore
from service.nlp.pipeline import Scorer
from service.store import rollups
from service.store.erasure import erase_author
from service.store.repo import FeedbackFilter
from service.store.tables import RollupDayRow
from tests.conftest import fake_scored

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday
WORDS = {
    "taste": ("salty", "bland", "delicious"),
    "packaging": ("box", "lid"),
    "delivery": ("courier", "late"),
}


class AspectScorer(Scorer):
    """Keyword sentiment and aspects (each with its own sentiment): enough for counting."""

    def __init__(self, version: str = "kw-1", flip: bool = False):
        self.version, self.flip = version, flip

    def score(self, texts, languages=None):
        out = []
        for t in texts:
            low = t.lower()
            neg = any(w in low for w in ("salty", "bland", "late", "crushed"))
            if self.flip:
                neg = not neg
            label = "negative" if neg else "positive"
            s = -0.625 if neg else 0.5  # dyadic: sums in any order are exact
            aspects = [
                AspectScore(
                    aspect=a, confidence=0.9, sentiment=label, sentiment_score=s, evidence=w
                )
                for a, ws in WORDS.items()
                for w in ws
                if w in low
            ][:2]
            seen, uniq = set(), []
            for a in aspects:
                if a.aspect not in seen:
                    seen.add(a.aspect)
                    uniq.append(a)
            p = {"negative": 0.8 if neg else 0.1, "neutral": 0.1, "positive": 0.1 if neg else 0.8}
            out.append(fake_scored(t, label, p, self.version, aspects=uniq, sentiment_score=s))
        return out


def _records(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    phrases = [
        "too salty today",
        "bland noodles",
        "delicious broth",
        "the box was crushed",
        "lid fine",
        "courier late again",
        "great value",
        "salty and the courier was late",
        "nice lid on the box",
    ]
    out = []
    for i in range(n):
        at = T0 + timedelta(minutes=int(rng.integers(0, 20 * 24 * 60)))
        r = {
            "source": "shop",
            "channel": ["review", "social"][i % 2],
            "external_id": str(i),
            "text": f"{phrases[i % len(phrases)]} #{i}",
            "created_at": at.isoformat(),
            "brand": ["ours", "rival"][(i // 2) % 2],
            "region": ["East", "West", None][i % 3],
            "language": "en",
            "rating": int(rng.integers(1, 6)),
            "author": f"a{i % 40}",
        }
        if i % 5:
            r["age_group"] = ["18-24", "35-49"][i % 2]
        if i % 7 == 0 or (i // 3) % 5 == 0:  # unrated items, whole unrated segments among them
            r.pop("rating")
        out.append({k: v for k, v in r.items() if v is not None})
    return out


def _ingest(rt, recs):
    return rt.ingest_service().ingest(list(enumerate(recs, start=2)))


def _answers(s, flt: FeedbackFilter, taxonomy=None) -> dict:
    """Everything a dashboard page asks of the counts, in a comparable form."""
    out = {}
    for dims in (
        ["brand"],
        ["region"],
        ["attr:age_group"],
        ["region", "attr:age_group"],
        ["channel"],
        ["language", "brand"],
    ):
        out[f"breakdown {dims}"] = breakdown(s, dimensions=dims, flt=flt, taxonomy=taxonomy)
        out[f"differences {dims}"] = differences(s, dimensions=dims, flt=flt, min_n=5)
    for seg in (None, "region"):
        c = benchmark_counts(s, flt=flt, segment=seg)
        out[f"benchmark {seg}"] = (
            c.items,
            {
                k: (v.mentions, v.pos, v.neg, round(v.rating_sum, 9), v.rated)
                for k, v in c.cells.items()
            },
        )
    since = flt.since or T0 - timedelta(days=1)
    until = flt.until or T0 + timedelta(days=22)
    for bucket in ("day", "week"):
        for aspect in (None, "taste"):
            out[f"series {bucket} {aspect}"] = series(
                s, flt=flt, since=since, until=until, bucket=bucket, aspect=aspect
            ).to_dict()
    return out


def _same(a, b, path="") -> None:
    """Equal (scores are dyadic fractions, so sums taken in any order are exact; 1e-12 for the
    divisions after them)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _same(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-12), path
    else:
        assert a == b, path


FILTERS = [
    FeedbackFilter(),
    # a window from mid-day to mid-day: partial days at both edges
    FeedbackFilter(
        since=T0 + timedelta(days=3, hours=7, minutes=13), until=T0 + timedelta(days=15, hours=18)
    ),
    FeedbackFilter(since=T0 + timedelta(days=2), until=T0 + timedelta(days=9), brands=("ours",)),
    FeedbackFilter(regions=("East",), since=T0 + timedelta(days=1, hours=1)),
    FeedbackFilter(attributes={"age_group": ("18-24",)}, until=T0 + timedelta(days=12, hours=3)),
    FeedbackFilter(channels=("social",)),
    # not answerable from the rollups: sentiment, aspect and two extra dimensions
    FeedbackFilter(sentiments=("negative",)),
    FeedbackFilter(aspects=("taste",), since=T0 + timedelta(days=4)),
    FeedbackFilter(channels=("review",), attributes={"age_group": ("35-49",)}),
    FeedbackFilter(include_duplicates=True),
    FeedbackFilter(brands=("ours",), brand_scope=("ours", "rival")),
]


def _check(rt, label: str) -> None:
    """Every answer equals the one computed from the items alone."""
    with rt.sessions() as s:
        for flt in FILTERS:
            rolled = _answers(s, flt)
            state = rollups.built_dimensions(s)
            rollups.drop(s)  # (rolled back below: the rollups are kept)
            raw = _answers(s, flt)
            s.rollback()
            assert rollups.built_dimensions(s) == state
            _same(rolled, raw, f"{label} {flt}")


def _row_count(rt) -> int:
    from sqlalchemy import func, select

    with rt.sessions() as s:
        return s.scalar(select(func.count()).select_from(RollupDayRow))


def test_rollups_answer_exactly_what_the_items_answer(db_url, make_runtime):
    rt = make_runtime(db_url, AspectScorer())
    recs = _records(500)
    _ingest(rt, recs)
    _check(rt, "never built")  # answered from the items
    out = rt.refresh_rollups()
    assert out["rebuilt"] and out["dimensions"] == ["attr:age_group", "channel", "language"]
    assert _row_count(rt) > 0
    with rt.sessions() as s:
        assert rollups.stale_days(s) == 0
    _check(rt, "built")

    # updates: a text, a day, a segment and a brand change; a cross-post becomes a duplicate
    moved = dict(recs[10], created_at=(T0 + timedelta(days=18, hours=5)).isoformat(), region="West")
    changed = dict(recs[11], text="salty salty salty #11", brand="ours")
    repost = {**recs[16], "source": "forum", "external_id": "x16", "channel": "social"}
    repost.pop("author", None)
    _ingest(rt, [moved, changed, repost, dict(recs[13], age_group="65+")])
    with rt.sessions() as s:
        assert rollups.stale_days(s) >= 2
    _check(rt, "after updates, stale")
    assert rt.refresh_rollups()["stale_days"] >= 2
    _check(rt, "after updates, refreshed")

    # a rescore that turns every sentiment around
    from service.jobs.ingest import rescore

    assert rescore(sessions=rt.sessions, scorer=AspectScorer("kw-2", flip=True)) == 501
    _check(rt, "after rescore, stale")
    rt.refresh_rollups()
    _check(rt, "after rescore, refreshed")

    # erasure: an author's items go, and the items linked to them count again
    with rt.sessions() as s:
        assert erase_author(s, author_hash=rt.author_hasher("a7"))["items"] > 0
        s.commit()
    _check(rt, "after erasure, stale")
    rt.refresh_rollups()
    _check(rt, "after erasure, refreshed")


def test_dimensions_added_and_removed_later_and_a_rebuild(db_url, make_runtime):
    rt = make_runtime(db_url, AspectScorer())
    _ingest(rt, _records(200, seed=1))
    rt.settings.dashboard.segment_dimensions = ["region", "brand"]
    assert rt.refresh_rollups()["dimensions"] == []
    with rt.sessions() as s:
        flt = FeedbackFilter(since=T0 + timedelta(days=1), until=T0 + timedelta(days=10))
        assert (
            rollups._extra_dimension(flt, ["attr:age_group"], rollups.built_dimensions(s)) is None
        )
    _check(rt, "base only")
    rt.settings.dashboard.segment_dimensions = ["age_group", "product"]
    out = rt.refresh_rollups()
    assert not out["rebuilt"] and out["dimensions"] == ["attr:age_group", "product"]
    with rt.sessions() as s:
        assert rollups.built_dimensions(s) == ["attr:age_group", "product"]
        assert (
            rollups._extra_dimension(flt, ["attr:age_group"], ["attr:age_group", "product"])
            == "attr:age_group"
        )
        assert rollups._extra_dimension(flt, ["channel"], ["attr:age_group", "product"]) is None
    _check(rt, "age_group and product")
    before = _row_count(rt)
    assert rt.refresh_rollups(rebuild=True)["rebuilt"]
    assert _row_count(rt) == before
    _check(rt, "rebuilt")


def test_a_write_during_a_refresh_leaves_its_day_stale(pg_database, make_runtime):
    """PostgreSQL (SQLite admits one writer, so there a write waits for the refresh): an item
    committed while a refresh is computing is not in what it computed, and the refresh does
    not clear the mark that write left, so its day is answered from the items until the next
    refresh."""
    from tests.conftest import _reset_pg

    _reset_pg(pg_database)
    rt = make_runtime(pg_database, AspectScorer())
    recs = _records(100, seed=2)
    _ingest(rt, recs)
    other = make_runtime(pg_database, AspectScorer())
    late = dict(
        recs[0],
        external_id="late",
        text="crushed box, late courier",
        created_at=(T0 + timedelta(days=6, hours=3)).isoformat(),
    )
    wrote = []

    def meanwhile(_message: str) -> None:
        if not wrote:
            wrote.append(_ingest(other, [late]).counts["created"])

    rt.refresh_rollups(rebuild=True, progress=meanwhile)
    assert wrote == [1]
    with rt.sessions() as s:
        assert rollups.stale_days(s) == 1
    _check(rt, "a write during the refresh")
    rt.refresh_rollups()
    with rt.sessions() as s:
        assert rollups.stale_days(s) == 0
    _check(rt, "refreshed")


def test_segments_read_rollup_rows_not_every_item(sqlite_url, make_runtime):
    """The whole days of a window come from the rollups: emptying them (without marking a day
    stale) changes a rolled-up answer and leaves an unanswerable one alone."""
    from sqlalchemy import delete

    rt = make_runtime(sqlite_url, AspectScorer())
    _ingest(rt, _records(300, seed=3))
    rt.refresh_rollups()
    flt = FeedbackFilter(
        since=T0 + timedelta(days=2, hours=12), until=T0 + timedelta(days=12, hours=12)
    )
    with rt.sessions() as s:
        rolled = breakdown(s, dimensions=["region"], flt=flt)["total"]["volume"]
        unanswerable = breakdown(
            s, dimensions=["region"], flt=replace(flt, sentiments=("negative",))
        )
        s.execute(delete(RollupDayRow))
        assert (
            0 < breakdown(s, dimensions=["region"], flt=flt)["total"]["volume"] < rolled
        )  # only the edges left
        assert (
            breakdown(s, dimensions=["region"], flt=replace(flt, sentiments=("negative",)))
            == unanswerable
        )
        s.rollback()
