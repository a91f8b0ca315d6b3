"""Brand resolution at ingest: the brand field, else a mention in the text, else our brand;
the method is stored with the item (``brand_source``)."""

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from service.api.app import create_app
from service.config import Settings
from service.domain import Brand, Competitors
from service.store import repo
from service.store.migrate import current_revision, head_revision, upgrade


@pytest.fixture(scope="module")
def competitors():
    return Settings().competitors


# --- the matcher -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Bought NK Noodles again", {"noodleking": 1}),
        ("bought nk   noodles again", {"noodleking": 1}),  # any whitespace between the words
        ("SPICEWELL is my go-to", {"spicewell": 1}),
        ("spice well cup, SpiceWell's broth", {"spicewell": 2}),
        ("the golden bowl udon", {"goldenbowl": 1}),
    ],
)
def test_latin_names_match_case_insensitively(competitors, text, expected):
    assert competitors.mentions(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "spicewellness tea",  # a longer word is not the brand
        "myspicewell",
        "spicewell2",
        "noodlekingdom",
        "nknoodles without a hashtag",
        "golden bowls",
    ],
)
def test_latin_names_match_only_on_word_boundaries(competitors, text):
    assert competitors.mentions(text) == {}
    assert competitors.resolve_text(text) is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("这次买的辣之源太辣了", {"spicewell": 1}),
        ("面大王的牛肉面还行", {"noodleking": 1}),
        ("金碗食品的乌冬面", {"goldenbowl": 1}),  # "金碗食品" counts once, not also as "金碗"
        ("辣之源面和辣之源", {"spicewell": 2}),
        (
            "辣之源SpiceWell",
            {"spicewell": 2},
        ),  # a Latin name right after CJK text still has a boundary
    ],
)
def test_cjk_names_match_as_substrings(competitors, text, expected):
    assert competitors.mentions(text) == expected


@pytest.mark.parametrize(
    "text, brand",
    [
        ("#辣之源# 太辣了", "spicewell"),
        ("@SpiceWell the cup leaked", "spicewell"),
        ("@NoodleKing why so late", "noodleking"),
        ("#GoldenBowl# 好吃", "goldenbowl"),
        ("love it #nknoodles", "noodleking"),  # a multi-word name run together in a hashtag
        ("ＳｐｉｃｅＷｅｌｌ 全角", "spicewell"),  # full-width Latin letters
    ],
)
def test_hashtags_and_mentions(competitors, text, brand):
    assert competitors.resolve_text(text) == brand


def test_several_brands_most_mentioned_wins_then_first_mentioned(competitors):
    t = "@NoodleKing was better than SpiceWell, noodle king forever"
    assert competitors.mentions(t) == {"noodleking": 2, "spicewell": 1}
    assert list(competitors.mentions("金碗 then 面大王 then 金碗")) == ["goldenbowl", "noodleking"]
    assert competitors.resolve_text("SpiceWell, GoldenBowl, golden bowl") == "goldenbowl"
    assert competitors.resolve_text("面大王 vs 金碗") == "noodleking"  # a tie: the first mentioned
    assert competitors.resolve_text("金碗 vs 面大王") == "goldenbowl"
    assert competitors.resolve_text("GoldenBowl, SpiceWell, spicewell, golden bowl") == "goldenbowl"


def test_no_mention_is_none(competitors):
    assert competitors.mentions("Great noodles, fast delivery") == {}
    assert competitors.resolve_text("Great noodles, fast delivery") is None
    assert competitors.resolve_text("") is None


def test_matcher_is_compiled_once_and_follows_a_copy_with_other_brands(competitors):
    c = Competitors(
        our_brand="a",
        brands=[Brand(id="a", name="Alpha"), Brand(id="b", name="Beta", aliases=["贝塔"])],
    )
    assert c.resolve_text("beta 贝塔 alpha") == "b"
    assert c._matcher is c._matcher  # cached on the instance
    assert c == Competitors(
        our_brand="a", brands=list(c.brands)
    )  # the cache is not part of equality
    other = c.model_copy(
        update={"brands": [Brand(id="a", name="Alpha"), Brand(id="g", name="Gamma")]}
    )
    assert other.resolve_text("beta gamma") == "g"
    assert c.resolve_text("beta gamma") == "b"


# --- end to end ---------------------------------------------------------------------------

T0 = datetime(2026, 5, 4, 8, tzinfo=UTC)


def _rec(ext, text, **kw):
    r = {
        "source": "weibo",
        "channel": "social",
        "external_id": ext,
        "text": text,
        "created_at": T0.isoformat(),
        "region": "East",
    }
    r.update(kw)
    return r


def test_ingest_stores_brand_and_how_it_was_resolved(db_url, make_runtime, fake_scorer):
    rt = make_runtime(db_url, fake_scorer)
    svc = rt.ingest_service()
    recs = [
        _rec("f1", "@SpiceWell the noodles were great", brand="NK Noodles"),  # the field wins
        _rec("f2", "great cup", brand="Acme Foods"),  # unknown brand: kept, lowercased
        _rec("t1", "#面大王# 这次的面太差了"),
        _rec("t2", "NoodleKing was fine but GoldenBowl and #金碗# are better"),
        _rec("d1", "The noodles were great and arrived on time"),
    ]
    rep = svc.ingest(list(enumerate(recs)))
    assert rep.counts["created"] == 5
    ids = {r.external_id: r.id for r in rep.results}
    with rt.sessions() as s:
        got = {e: repo.get_feedback(s, feedback_id=i) for e, i in ids.items()}
    assert {e: (f.brand, f.brand_source) for e, f in got.items()} == {
        "f1": ("noodleking", "field"),
        "f2": ("acme foods", "field"),
        "t1": ("noodleking", "text"),
        "t2": ("goldenbowl", "text"),
        "d1": ("spicewell", "default"),
    }

    # the same items again: unchanged
    again = svc.ingest(list(enumerate(recs)))
    assert again.counts["unchanged"] == 5

    # re-sent with a brand field that names the brand the text gave: only the method changes
    rep = svc.ingest(
        list(
            enumerate(
                [
                    _rec("t1", "#面大王# 这次的面太差了", brand="面大王"),
                    _rec("d1", "The noodles were great and arrived on time", brand="GoldenBowl"),
                ]
            )
        )
    )
    assert rep.counts["updated"] == 2
    assert [r.id for r in rep.results] == [ids["t1"], ids["d1"]]
    with rt.sessions() as s:
        t1 = repo.get_feedback(s, feedback_id=ids["t1"])
        d1 = repo.get_feedback(s, feedback_id=ids["d1"])
        assert (t1.brand, t1.brand_source) == ("noodleking", "field")
        assert (d1.brand, d1.brand_source) == ("goldenbowl", "field")
        assert repo.count_feedback(s) == 5

    # and the API shows it
    with TestClient(create_app(runtime=rt)) as client:
        body = client.get(f"/v1/feedback/{ids['t2']}").json()
        assert (body["brand"], body["brand_source"]) == ("goldenbowl", "text")
        body = client.get(f"/v1/feedback/{ids['d1']}").json()
        assert (body["brand"], body["brand_source"]) == ("goldenbowl", "field")


def test_mentions_are_read_after_redaction(sqlite_url, make_runtime, fake_scorer):
    """An e-mail address naming a brand is personal data, not a mention."""
    rt = make_runtime(sqlite_url, fake_scorer)
    rep = rt.ingest_service().ingest(
        [(0, _rec("e1", "write to care@noodleking.com, the cup leaked"))]
    )
    with rt.sessions() as s:
        f = repo.get_feedback(s, feedback_id=rep.results[0].id)
    assert "[EMAIL]" in f.text and (f.brand, f.brand_source) == ("spicewell", "default")


def test_rows_stored_before_0006_have_no_brand_source(sqlite_url, make_runtime, fake_scorer):
    engine = create_engine(sqlite_url)
    upgrade(engine, "0005")
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO feedback (source, external_id, channel, text, text_hash, content_hash, "
                "created_at, brand, ingested_at, updated_at) VALUES ('old', '1', 'review', 'fine', "
                "'h', 'c', '2026-05-04 08:00:00', 'spicewell', '2026-05-04 08:00:00', "
                "'2026-05-04 08:00:00')"
            )
        )
    engine.dispose()
    rt = make_runtime(sqlite_url, fake_scorer)  # upgrades to head on start
    assert current_revision(rt.engine) == head_revision(rt.engine)
    with rt.sessions() as s:
        (old,), _ = repo.list_feedback(s, flt=repo.FeedbackFilter(), limit=10)
    assert old.brand == "spicewell" and old.brand_source is None
