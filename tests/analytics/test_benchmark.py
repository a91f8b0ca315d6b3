"""The competitor benchmark on numbers known in advance: the gap test and its interval, the
Benjamini–Hochberg correction, priorities, the gap series, and the API and CLI on a store
whose rates are set by construction (both databases)."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import stats
from typer.testing import CliRunner

from service.analytics import benchmark as bm
from service.analytics.stats import benjamini_hochberg
from service.store.repo import FeedbackFilter
from tests.analytics.conftest import START, AspectKeywordScorer
from tests.conftest import ingest_new


def Cell(mentions: int, pos: int, neg: int) -> bm.AspectFacts:
    return bm.AspectFacts(mentions=mentions, pos=pos, neg=neg)


def test_gap_test_matches_the_formula():
    gap, z, p = bm.gap_test(Cell(100, 60, 40), Cell(100, 40, 60))
    se = math.sqrt(2 * (1 - 0.2**2) / 100)  # (p+ + p- - net²) / n on each side
    assert (
        gap == pytest.approx(0.4)
        and z == pytest.approx(0.4 / se)
        and p == pytest.approx(2 * stats.norm.sf(0.4 / se))
    )


def test_a_two_point_gap_is_noise_on_50_mentions_and_real_on_50000():
    small = bm.gap_test(Cell(50, 25, 24), Cell(50, 25, 25))  # net +0.02 vs 0.00
    large = bm.gap_test(Cell(50_000, 25_000, 24_000), Cell(50_000, 25_000, 25_000))
    assert small[0] == pytest.approx(0.02) and large[0] == pytest.approx(0.02)
    assert small[2] > 0.5 and large[2] < 0.01


def test_the_gap_interval_covers_the_true_gap_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    hits, runs = 0, 2000
    for _ in range(runs):
        a = rng.multinomial(200, [0.5, 0.3, 0.2])  # pos, neg, neutral: net +0.2
        b = rng.multinomial(150, [0.4, 0.4, 0.2])  # net 0.0
        gap, _, _ = bm.gap_test(Cell(200, a[0], a[1]), Cell(150, b[0], b[1]))
        half = 1.959964 * math.sqrt(
            bm._net_var(Cell(200, a[0], a[1])) + bm._net_var(Cell(150, b[0], b[1]))
        )
        hits += gap - half <= 0.2 <= gap + half
    assert 0.93 <= hits / runs <= 0.97, hits / runs


def _row(i: int, brand: str, text: str, region: str = "East", rating=None) -> dict:
    return {
        "source": "shop",
        "channel": "review",
        "external_id": f"b{i}",
        "language": "en",
        "brand": brand,
        "region": region,
        "text": f"{text} #{i}",
        "created_at": (START + timedelta(hours=(i * 7) % 400)).isoformat(),
        **({"rating": rating, "rating_scale": 5} if rating is not None else {}),
    }


def known_items() -> list[dict]:
    """Taste: ours 60 negative / 40 positive mentions, theirs 30 / 70. Packaging: both 50 / 50.
    Ratings follow taste (1 for a complaint, 5 for praise), so taste matters to our customers."""
    rows, i = [], 0
    for brand, neg in (("spicewell", 60), ("noodleking", 30)):
        for k in range(100):
            i += 1
            bad = k < neg
            rows.append(
                _row(
                    i,
                    brand,
                    "too spicy flavour" if bad else "lovely flavour, great",
                    rating=1 if bad else 5,
                )
            )
        for k in range(100):
            i += 1
            rows.append(
                _row(i, brand, "the box arrived crushed" if k < 50 else "lovely box, great")
            )
    return rows


@pytest.fixture
def known_store(db_url, make_runtime):
    return ingest_new(make_runtime(db_url, scorer=AspectKeywordScorer()), known_items())


def test_benchmark_on_known_rates(known_store):
    with known_store.sessions() as s:
        res = bm.benchmark(s, flt=FeedbackFilter(), our_brand="spicewell", min_mentions=20)
    metric = {(m["aspect"], m["brand"]): m for m in res["metrics"]}
    ours, theirs = metric[("taste", "spicewell")], metric[("taste", "noodleking")]
    assert ours["mentions"] == theirs["mentions"] == 100 and ours["items"] == 200
    assert ours["negative_rate"]["value"] == 0.6 and theirs["positive_rate"]["value"] == 0.7
    assert ours["net_sentiment"]["value"] == pytest.approx(-0.2) and theirs["net_sentiment"][
        "value"
    ] == pytest.approx(0.4)
    assert ours["mention_rate"]["value"] == 0.5 and ours["share_of_voice"] == 0.5
    assert ours["mean_rating"] == pytest.approx(0.6 * 1 + 0.4 * 5)
    lo, hi = ours["negative_rate"]["lower"], ours["negative_rate"]["upper"]
    assert lo < 0.6 < hi and hi - lo == pytest.approx(0.19, abs=0.01)  # Wilson at n=100
    gaps = {(g["aspect"], g["competitor"]): g for g in res["gaps"]}
    taste, pack = gaps[("taste", "noodleking")], gaps[("packaging", "noodleking")]
    exp_gap, exp_z, exp_p = bm.gap_test(Cell(100, 40, 60), Cell(100, 70, 30))
    assert taste["gap"] == pytest.approx(-0.6) and taste["z"] == pytest.approx(exp_z, abs=1e-3)
    assert pack["gap"] == pytest.approx(0.0) and not pack["significant"]
    # BH over the two gaps tested (no pooled "market" with a single competitor)
    assert res["tests"] == 2
    q = benjamini_hochberg([exp_p, bm.gap_test(Cell(100, 50, 50), Cell(100, 50, 50))[2]])
    assert (
        taste["q_value"] == pytest.approx(q[0], rel=1e-2)
        and taste["significant"]
        and taste["favours"] == "competitor"
    )
    with known_store.sessions() as s:
        sw = bm.strengths_and_weaknesses(s, res, flt=FeedbackFilter())
        pri = bm.priorities(s, res, flt=FeedbackFilter())
    assert [w["aspect"] for w in sw["weaknesses"]] == ["taste"] and sw["strengths"] == []
    quotes = sw["weaknesses"][0]["quotes"]
    assert all("too spicy" in q["text"] for q in quotes["ours"]) and all(
        "lovely" in q["text"] for q in quotes["competitor"]
    )
    ranked = pri["priorities"][bm.ALL]
    assert (
        pri["importance"]["target"] == "sentiment_score"
    )  # 400 ratings in all, 200 of ours: under MIN_RATED
    assert ranked[0]["aspect"] == "taste" and ranked[0]["deficit"] == pytest.approx(0.6)
    assert (
        ranked[0]["priority"] > 0
        and ranked[0]["versus"] == "noodleking"
        and ranked[0]["gap_significant"]
    )


def test_a_small_difference_is_not_called_a_strength(known_store):
    with known_store.sessions() as s:
        res = bm.benchmark(
            s, flt=FeedbackFilter(), our_brand="spicewell", aspects=["packaging"], min_mentions=20
        )
    assert [g["significant"] for g in res["gaps"]] == [False]
    with known_store.sessions() as s:  # under min_mentions: reported, not tested
        res = bm.benchmark(s, flt=FeedbackFilter(), our_brand="spicewell", min_mentions=500)
    assert res["tests"] == 0 and all(g["gap"] is None and g["q_value"] is None for g in res["gaps"])


def test_api_and_cli(known_store, monkeypatch):
    from service.api.app import create_app
    from service.cli.main import app

    with TestClient(create_app(runtime=known_store)) as c:
        r = c.get("/v1/benchmark", params={"since": START.isoformat(), "aspect": "taste"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["aspects"] == ["taste"] and body["weaknesses"][0]["competitor"] == "noodleking"
        r = c.get("/v1/benchmark/priorities", params={"since": START.isoformat()})
        assert r.json()["priorities"]["(all)"][0]["aspect"] == "taste"
        r = c.get("/v1/benchmark", params={"segment": "no_such_thing"})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "query.segment"
        r = c.get(
            "/v1/benchmark/series",
            params={
                "competitor": "noodleking",
                "compare_aspect": "taste",
                "bucket": "day",
                "since": START.isoformat(),
                "horizon": 2,
            },
        )
        assert r.status_code == 200
        pts = [p for p in r.json()["points"] if p["gap"] is not None]
        assert pts and all(-2 <= p["gap"] <= 2 for p in pts)
        ours = {"competitor": "spicewell", "compare_aspect": "taste"}  # our brand: no competitor
        assert c.get("/v1/benchmark/series", params=ours).status_code == 422
    monkeypatch.setenv("RADAR_DATABASE_URL", known_store.settings.database_url)
    res = CliRunner().invoke(app, ["benchmark", "--json", "--days", "3660", "--aspect", "taste"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["gaps"][0]["favours"] == "competitor"
    res = CliRunner().invoke(app, ["benchmark", "--priorities", "--days", "3660"])
    assert res.exit_code == 0 and "taste" in res.output
