"""Ingest with the real model: what is stored for each item."""

import hashlib

from sqlalchemy import text

from service.config import Settings
from service.ingest.readers import read_records
from service.jobs.ingest import rescore
from service.store import repo


def _rec(i, text, **kw):
    r = {
        "source": "weibo",
        "channel": "social",
        "external_id": f"w{i}",
        "text": text,
        "created_at": "2026-06-01T09:30:00+08:00",
        "region": "East",
        "age_group": "18-24",
    }
    r.update(kw)
    return r


def test_ingest_stores_normalised_redacted_scored_items(db_url, real_runtime_factory):
    rt = real_runtime_factory(db_url)
    rt.settings.author_salt = Settings(author_salt="pepper").author_salt
    recs = [
        _rec(
            1,
            "  Terrible, the box arrived crushed.\u200b Call me on 138 1234 5678  ",
            author="alice@example.com",
        ),
        _rec(2, "味道太辣了，我吃不下去", brand="面大王"),
        _rec(3, "Great taste but the box arrived crushed.", brand="NoodleKing", source="Twitter"),
    ]
    rep = rt.ingest_service().ingest(list(enumerate(recs, 2)))
    assert rep.counts["created"] == 3
    with rt.sessions() as s:
        a, b, c = (repo.get_feedback(s, feedback_id=r.id) for r in rep.results)
    assert a.text == "Terrible, the box arrived crushed. Call me on [PHONE]"
    inner = hashlib.sha256(b"pepper\x00alice@example.com").hexdigest()  # RADAR_AUTHOR_SALT's hash,
    with rt.sessions() as s:  # wrapped with the store's own random salt
        salt = bytes.fromhex(
            s.scalar(text("SELECT value FROM installation WHERE name = 'author_salt'"))
        )
    assert a.author_hash == hashlib.sha256(salt + b"\x01" + inner.encode()).hexdigest()
    assert a.language == "en" and b.language == "zh"
    assert a.brand == "spicewell" and b.brand == "noodleking" and c.brand == "noodleking"
    assert c.source == "twitter"
    assert a.created_at.isoformat() == "2026-06-01T01:30:00+00:00"
    assert a.score.sentiment == "negative" and any(x.aspect == "packaging" for x in a.score.aspects)
    aspects = {x.aspect: x.sentiment for x in c.score.aspects}
    assert aspects.get("taste") == "positive" and aspects.get("packaging") == "negative"
    assert a.score.model_version == rt.scorer.version


def test_rescore_finds_items_of_another_model_version(
    db_url, real_runtime_factory, make_runtime, fake_scorer
):
    old = make_runtime(db_url, fake_scorer)
    old.ingest_service().ingest(
        list(
            enumerate(
                [_rec(i, f"Delivery number {i} was quick and the taste is great") for i in range(5)]
            )
        )
    )
    rt = real_runtime_factory(db_url)
    with rt.sessions() as s:
        assert repo.count_stale(s, model_version=rt.scorer.version) == 5
    assert rescore(sessions=rt.sessions, scorer=rt.scorer, chunk_size=2) == 5
    with rt.sessions() as s:
        assert repo.count_stale(s, model_version=rt.scorer.version) == 0
        items, _ = repo.list_feedback(s, flt=repo.FeedbackFilter(), limit=10)
        assert all(i.score.model_version == rt.scorer.version and i.score.aspects for i in items)
    assert rescore(sessions=rt.sessions, scorer=rt.scorer) == 0


def test_demo_slice_is_stored_once_even_when_ingested_twice(
    tmp_path, sqlite_url, real_runtime_factory
):
    from service.demo.generator import DemoConfig, write_demo

    src = tmp_path / "demo.csv"
    info = write_demo(src, DemoConfig(per_week=6, weeks=26))
    rt = real_runtime_factory(sqlite_url)
    first = rt.ingest_service().ingest(read_records(src), keep_results=False)
    assert first.counts["created"] == info["rows"] and first.counts["rejected"] == 0
    second = rt.ingest_service().ingest(read_records(src), keep_results=False)
    assert second.counts["unchanged"] == info["rows"]
    with rt.sessions() as s:
        assert repo.count_feedback(s) == info["rows"]
        assert set(repo.count_by(s, dimension="language")) >= {"en", "zh"}
        assert repo.count_by(s, dimension="attr:age_group").keys() == {
            "18-24",
            "25-34",
            "35-44",
            "45+",
        }
