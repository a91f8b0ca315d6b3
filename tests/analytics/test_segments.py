"""Breakdowns and differences against counts recomputed from the generated items."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from service.analytics.segments import breakdown, differences
from service.analytics.stats import benjamini_hochberg, wilson
from service.store.repo import FeedbackFilter, UnknownDimension
from tests.analytics.conftest import START, AspectKeywordScorer


def _expected(items):
    scored = AspectKeywordScorer().score([i["text"] for i in items])
    return [(i, s.score) for i, s in zip(items, scored)]


def test_one_dimension_breakdown_matches_the_items(segment_store):
    rt, items = segment_store
    with rt.sessions() as s:
        out = breakdown(s, dimensions=["region"])
    truth = _expected(items)
    assert out["total"]["volume"] == len(items) and out["segments_total"] == 3
    for seg in out["segments"]:
        mine = [sc for i, sc in truth if i["region"] == seg["segment"]["region"]]
        assert seg["volume"] == seg["scored"] == len(mine)
        neg = sum(sc.sentiment == "negative" for sc in mine)
        share = seg["sentiment"]["negative"]
        assert share["count"] == neg and share["value"] == pytest.approx(neg / len(mine), abs=1e-4)
        lo, hi = wilson(neg, len(mine))
        assert share["lower"] == pytest.approx(lo, abs=1e-4) and share["upper"] == pytest.approx(
            hi, abs=1e-4
        )
        pos = sum(sc.sentiment == "positive" for sc in mine)
        assert seg["net_sentiment"]["value"] == pytest.approx((pos - neg) / len(mine), abs=1e-4)
        assert (
            seg["net_sentiment"]["lower"]
            < seg["net_sentiment"]["value"]
            < seg["net_sentiment"]["upper"]
        )
        mean = sum(sc.sentiment_score for sc in mine) / len(mine)
        m = seg["mean_sentiment_score"]
        assert m["value"] == pytest.approx(mean, abs=1e-4) and m["lower"] < mean < m["upper"]
        taste = next(a for a in seg["aspects"] if a["aspect"] == "taste")
        assert taste["mentions"] == sum(any(a.aspect == "taste" for a in sc.aspects) for sc in mine)
    vols = [seg["volume"] for seg in out["segments"]]
    assert vols == sorted(vols, reverse=True)


def test_two_dimensions_with_an_attribute_and_a_window(segment_store):
    rt, items = segment_store
    until = START + timedelta(hours=301)
    with rt.sessions() as s:
        out = breakdown(s, dimensions=["region", "age_group"], flt=FeedbackFilter(until=until))
    want = Counter(
        (i["region"], i["attributes"]["age_group"])
        for i in items
        if datetime.fromisoformat(i["created_at"]) < until
    )
    got = {
        (seg["segment"]["region"], seg["segment"]["age_group"]): seg["volume"]
        for seg in out["segments"]
    }
    assert got == dict(want) and out["dimensions"] == ["region", "age_group"]


def test_differences_find_the_injected_cell_first_and_correct_for_many_tests(segment_store):
    rt, _ = segment_store
    with rt.sessions() as s:
        out = differences(s, dimensions=["region", "attr:age_group"], aspects=["taste"])
    top = out["findings"][0]
    assert top["segment"] == {"region": "East", "age_group": "18-24"}
    assert top["aspect"] == "taste" or top["metric"] == "negative_share"
    assert top["segment_value"] > 2 * top["rest_value"] and top["q_value"] < 0.05
    assert "East / 18-24" in top["summary"] and f"n={top['segment_n']}" in top["summary"]
    assert out["tested"] >= out["significant"] == len(out["findings"]) > 0
    assert all(f["q_value"] >= f["p_value"] for f in out["findings"])
    scores = [f["rank_score"] for f in out["findings"]]
    assert scores == sorted(scores, reverse=True)


def test_small_segments_are_not_tested(segment_store):
    rt, _ = segment_store
    with rt.sessions() as s:
        few = differences(s, dimensions=["region", "age_group"], min_n=10_000)
    assert few["tested"] == 0 and few["findings"] == []


def test_empty_window_and_unknown_dimension(segment_store):
    rt, _ = segment_store
    with rt.sessions() as s:
        empty = breakdown(
            s, dimensions=["region"], flt=FeedbackFilter(since=datetime(2030, 1, 1, tzinfo=UTC))
        )
        assert empty["segments"] == [] and empty["total"]["volume"] == 0
        assert empty["total"]["sentiment"]["negative"]["value"] is None
        assert (
            differences(s, dimensions=["region"], flt=FeedbackFilter(nothing=True))["findings"]
            == []
        )
        with pytest.raises(UnknownDimension, match="shoe_size"):
            breakdown(s, dimensions=["shoe_size"])
        with pytest.raises(UnknownDimension, match="at most 2"):
            breakdown(s, dimensions=["region", "brand", "channel"])


def test_benjamini_hochberg_matches_the_textbook_example():
    p = [0.01, 0.04, 0.03, 0.005]
    q = benjamini_hochberg(p)
    # sorted p: .005 .01 .03 .04 → ×4/rank: .02 .02 .04 .04
    assert q == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_theme_model_recovers_synthetic_topics_across_two_languages():
    """Twelve topics, each written in two 'languages' (a language offset on every vector):
    the fitted themes match the topics, not the languages."""
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    from service.analytics.theme_model import ThemeModel

    rng = np.random.default_rng(1)
    centres = rng.normal(size=(12, 64))
    lang_shift = {"en": rng.normal(size=64) * 2.0, "zh": rng.normal(size=64) * 2.0}
    topic = rng.integers(0, 12, 3000)
    langs = rng.choice(["en", "zh"], 3000).tolist()
    emb = (
        centres[topic]
        + np.array([lang_shift[lang] for lang in langs])
        + rng.normal(scale=0.6, size=(3000, 64))
    )
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    model = ThemeModel(seed=0).fit(emb, langs)
    labels, _ = model.assign(emb, langs)
    assert adjusted_rand_score(topic[labels >= 0], labels[labels >= 0]) > 0.9
    assert (labels >= 0).mean() > 0.8


def test_a_one_item_segment_gets_wide_honest_intervals(db_url, make_runtime):
    rt = make_runtime(db_url, scorer=AspectKeywordScorer())
    rows = [
        {
            "source": "s",
            "channel": "review",
            "external_id": f"x{i}",
            "text": t,
            "language": "en",
            "created_at": "2026-03-02T10:00:00+00:00",
            "region": r,
        }
        for i, (t, r) in enumerate(
            [("too spicy", "Solo"), ("lovely", "Pair"), ("the box arrived crushed", "Pair")]
        )
    ]
    assert rt.ingest_service().ingest(list(enumerate(rows))).counts["created"] == 3
    with rt.sessions() as s:
        out = breakdown(s, dimensions=["region"])
        solo = next(x for x in out["segments"] if x["segment"]["region"] == "Solo")
        assert solo["volume"] == 1 and solo["sentiment"]["negative"]["value"] == 1.0
        assert solo["sentiment"]["negative"]["lower"] < 0.25  # Wilson at n=1 is wide, not [1, 1]
        m = solo["mean_sentiment_score"]
        assert m["value"] == m["lower"] == m["upper"]  # one value: no spread to estimate
        assert differences(s, dimensions=["region"], min_n=2)["tested"] == 0  # Solo is never tested


def test_untagged_items_that_form_no_cluster_give_no_theme_and_no_crash():
    """Scattered aspect-less vectors (every one HDBSCAN noise) next to a tagged facet: the
    facet is a theme, the scattered items stay unassigned."""
    import numpy as np

    from service.analytics.theme_model import ThemeModel

    rng = np.random.default_rng(3)
    scattered = rng.normal(size=(60, 32))
    facet = rng.normal(size=32) * 3 + rng.normal(scale=0.3, size=(40, 32))
    emb = np.vstack([scattered, facet])
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    facets = [None] * 60 + ["taste:negative"] * 40
    model = ThemeModel(seed=0, min_cluster_size=30).fit(emb, ["en"] * 100, facets)
    labels, _ = model.assign(emb, ["en"] * 100, facets)
    assert (labels[:60] == -1).all() and (labels[60:] >= 0).all()
    assert [r.facet for r in model.themes_ if r.parent is None] == ["taste:negative"]


def test_keywords_leave_out_brands_handles_links_and_stop_words(db_url, make_runtime):
    from service.analytics.keywords import keyword_tokenizer

    rt = make_runtime(db_url, scorer=AspectKeywordScorer())
    rows = [
        {
            "source": "s",
            "channel": "social",
            "external_id": "k1",
            "language": "en",
            "brand": "spicewell",
            "created_at": "2026-03-02T10:00:00+00:00",
            "text": "@SpiceWell the #spicewellnoodles broth is watery http://t.co/xYz12 via www.example.com &amp; "
            "NoodleKing tastes bland, rt 辣之源面太咸了",
        }
    ]
    assert rt.ingest_service().ingest(list(enumerate(rows))).counts["created"] == 1
    with rt.sessions() as s:
        words = keyword_tokenizer(s, rt.settings.competitors)(rows[0]["text"])
    assert {"broth", "watery", "tastes", "bland"} <= set(words)
    banned = {
        "spicewell",
        "spicewellnoodles",
        "noodleking",
        "http",
        "xyz12",
        "www",
        "example",
        "com",
        "amp",
        "via",
        "rt",
        "the",
        "is",
        "辣之源",
        "辣之源面",
    }
    assert not banned & set(words), words
