"""Store behaviour on both SQLite and PostgreSQL (every test here runs on each)."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from service.store import repo
from service.store.migrate import current_revision, head_revision, include_object_for
from service.store.tables import Base, FeedbackRow, ScoreRow

T0 = datetime(2026, 5, 4, 8, tzinfo=UTC)


def _rec(i, text=None, **kw):
    r = {
        "source": "tmall",
        "channel": "review",
        "external_id": str(i),
        "text": text or f"item number {i} tastes good and arrived on time",
        "created_at": (T0 + timedelta(hours=i)).isoformat(),
        "region": "East" if i % 2 else "West",
        "age_group": "18-24" if i % 3 else "45+",
    }
    r.update(kw)
    return r


def _ingest(rt, recs):
    return rt.ingest_service().ingest(list(enumerate(recs, start=2)))


def test_migrations_build_exactly_the_declared_schema(db_url, make_runtime, fake_scorer):
    rt = make_runtime(db_url, fake_scorer)
    engine = rt.engine
    assert current_revision(engine) == head_revision(engine) == "0015"
    with engine.connect() as c:
        ctx = MigrationContext.configure(
            c, opts={"include_object": include_object_for(c.dialect.name)}
        )
        assert compare_metadata(ctx, Base.metadata) == []
    names = set(inspect(engine).get_table_names())
    assert {"feedback", "feedback_attribute", "feedback_band", "score", "aspect_score"} <= names
    if engine.dialect.name == "sqlite":
        with engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_ingest_is_idempotent_and_updates_in_place(db_url, make_runtime, fake_scorer):
    rt = make_runtime(db_url, fake_scorer)
    recs = [_rec(i) for i in range(30)]
    first = _ingest(rt, recs)
    assert first.counts["created"] == 30
    second = _ingest(rt, recs)
    assert second.counts == {"created": 0, "updated": 0, "unchanged": 30, "rejected": 0}
    with rt.sessions() as s:
        assert repo.count_feedback(s) == 30
    changed = [_rec(0, text="item zero now arrived crushed and late")]
    rep = _ingest(rt, changed)
    assert rep.counts["updated"] == 1
    with rt.sessions() as s:
        assert repo.count_feedback(s) == 30
        item = repo.get_feedback(s, feedback_id=rep.results[0].id)
        assert item.text == "item zero now arrived crushed and late"
        assert item.score.sentiment == "negative" and item.score.model_version == "fake-1"
        assert item.attributes == {"age_group": "45+"}
        assert item.created_at.tzinfo is not None and item.created_at == T0


def test_same_key_twice_in_one_batch_keeps_the_last(db_url, make_runtime, fake_scorer):
    rt = make_runtime(db_url, fake_scorer)
    rep = _ingest(
        rt, [_rec(1, text="first version of the text"), _rec(1, text="second version of the text")]
    )
    # one answer per stored item: the earlier row is rejected, naming the row written instead
    assert [r.status.value for r in rep.results] == ["rejected", "created"] and rep.results[
        0
    ].id is None
    assert f"row {rep.results[1].row} of this batch" in rep.results[0].errors[0]["reason"]
    with rt.sessions() as s:
        assert repo.count_feedback(s) == 1
        assert (
            repo.get_feedback(s, feedback_id=rep.results[1].id).text == "second version of the text"
        )


def test_exact_and_near_duplicates_point_at_the_first_item(db_url, make_runtime, fake_scorer):
    rt = make_runtime(db_url, fake_scorer)
    complaint = "The cup was cracked and the soup leaked all over my bag, really disappointed."
    rep = _ingest(
        rt,
        [
            _rec(1, text=complaint, channel="complaint", source="hotline"),
            _rec(
                2, text="@SpiceWell " + complaint + " 😡", channel="social", source="weibo"
            ),  # a cross-post
            _rec(3, text=complaint.upper(), source="jd"),
            _rec(4, text="Delivery was super fast and the noodles taste great, will buy again."),
        ],
    )
    ids = [r.id for r in rep.results]
    with rt.sessions() as s:
        dups = {i: repo.get_feedback(s, feedback_id=i).duplicate_of for i in ids}
        assert dups == {ids[0]: None, ids[1]: ids[0], ids[2]: ids[0], ids[3]: None}
        assert repo.count_feedback(s, flt=repo.FeedbackFilter()) == 2  # voices
        assert (
            repo.count_feedback(s)
            == repo.count_feedback(s, flt=repo.FeedbackFilter(include_duplicates=True))
            == 4
        )
    assert rep.linked == 2 and [r.duplicate_of for r in rep.results] == [None, ids[0], ids[0], None]


LONG = "The cup was cracked and the soup leaked all over my bag, really disappointed."


@pytest.mark.parametrize(
    "case, first, second, linked",
    [
        (
            "same author, short text, weeks apart",
            dict(author="ann", text="too salty"),
            dict(author="ann", text="Too salty!", hours=24 * 30),
            True,
        ),
        (
            "same author, long text, another channel, months apart",
            dict(author="ann", text=LONG),
            dict(author="ann", text=LONG, channel="social", source="weibo", hours=24 * 90),
            True,
        ),
        (
            "different customers, the same long text at once",
            dict(author="ann", text=LONG),
            dict(author="bob", text=LONG, hours=1),
            False,
        ),
        (
            "unknown authors, the same short text",
            dict(text="too salty"),
            dict(text="too salty", hours=1),
            False,
        ),
        (
            "unknown authors, a cross-post within the window",
            dict(text=LONG),
            dict(text="@SpiceWell " + LONG, channel="social", source="weibo", hours=5),
            True,
        ),
        (
            "unknown authors, the same long text elsewhere a week later",
            dict(text=LONG),
            dict(text=LONG, source="weibo", hours=24 * 7),
            False,
        ),
        (
            "unknown authors, two posts of the same long text on one channel",
            dict(text=LONG),
            dict(text=LONG, hours=1),
            False,
        ),
        (
            "one author known, a cross-post within the window",
            dict(author="ann", text=LONG),
            dict(text=LONG, source="jd", hours=2),
            True,
        ),
        (
            "the same author about another brand",
            dict(author="ann", text=LONG, brand="spicewell"),
            dict(author="ann", text=LONG, brand="noodleking", hours=1),
            False,
        ),
    ],
)
def test_the_duplicate_policy(db_url, make_runtime, fake_scorer, case, first, second, linked):
    rt = make_runtime(db_url, fake_scorer)

    def rec(i, spec):
        spec = dict(spec)
        hours = spec.pop("hours", 0)
        return _rec(i, **{"created_at": (T0 + timedelta(hours=hours)).isoformat(), **spec})

    rep = _ingest(rt, [rec(1, first)])
    rep2 = _ingest(rt, [rec(2, second)])
    assert (rep2.results[0].duplicate_of == rep.results[0].id) is linked, case
    assert rep2.linked == int(linked)
    with rt.sessions() as s:
        assert repo.count_feedback(s, flt=repo.FeedbackFilter()) == (1 if linked else 2)


@pytest.mark.parametrize("read", ["through the scope", "through the keys"])
def test_a_text_many_customers_repeat_links_only_its_own_voices(
    db_url, make_runtime, fake_scorer, monkeypatch, read
):
    """The store reads a batch's candidates through the items that could be the same voice
    (few: the same author or a cross-post's window) or, when those are many, through the text
    and band keys: both give the same links."""
    monkeypatch.setattr(repo, "_SCOPE_READ_PER_ITEM", 10**6 if read == "through the scope" else 0)
    rt = make_runtime(db_url, fake_scorer)

    def at(i, hours, **kw):
        return _rec(i, text=LONG, created_at=(T0 + timedelta(hours=hours)).isoformat(), **kw)

    first = _ingest(rt, [at(1, 0, author="ann", source="hotline")]).results[0].id
    others = _ingest(rt, [at(10 + k, 1, author=f"cust-{k}") for k in range(30)])
    bob_first = others.results[0].id  # cust-0
    rep = _ingest(
        rt,
        [
            at(100, 24 * 30, author="ann", source="jd"),  # the same customer a month later
            _rec(
                101,
                text=LONG + "!!",
                author="cust-0",
                created_at=(T0 + timedelta(hours=3)).isoformat(),
            ),
            at(102, 4, author="zed"),  # one more customer
            at(103, 2, source="weibo", channel="social"),  # a cross-post, author unknown
            at(104, 5, author="ann", brand="noodleking"),  # the same customer, another brand
        ],
    )
    assert [r.duplicate_of for r in rep.results] == [first, bob_first, None, first, None]
    assert rep.linked == 3


def test_linking_can_be_turned_off(db_url, make_runtime, fake_scorer):
    rt = make_runtime(db_url, fake_scorer)
    rt.settings.ingest.link_duplicates = False
    rep = _ingest(rt, [_rec(1, text=LONG, author="ann"), _rec(2, text=LONG, author="ann")])
    assert rep.linked == 0 and [r.duplicate_of for r in rep.results] == [None, None]


def test_the_migration_clears_links_the_policy_breaks(db_url, make_runtime, fake_scorer):
    """Links made by the old rule (any brand, any author, any time) are re-evaluated by 0011."""
    from alembic import command
    from sqlalchemy import update

    from service.store.migrate import alembic_config, upgrade

    rt = make_runtime(db_url, fake_scorer)
    rep = _ingest(
        rt,
        [
            _rec(1, text=LONG, author="ann"),
            _rec(2, text=LONG, author="bob"),
            _rec(3, text=LONG, brand="noodleking"),
            _rec(4, text=LONG, author="ann"),
            _rec(5, text=LONG, source="jd", created_at=(T0 + timedelta(days=20)).isoformat()),
            _rec(6, text="@SpiceWell " + LONG, source="weibo", channel="social"),
            _rec(7, text=LONG),
        ],
    )
    ids = [r.id for r in rep.results]
    with rt.sessions() as s:  # what the old rule stored: every one linked to the first
        s.execute(
            update(FeedbackRow).where(FeedbackRow.id.in_(ids[1:])).values(duplicate_of=ids[0])
        )
        s.commit()
    cfg = alembic_config(rt.engine)
    with rt.engine.begin() as conn:  # back to before 0011, its data untouched
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0011")
        command.stamp(cfg, "0010")
    upgrade(rt.engine)
    with rt.sessions() as s:
        links = [s.get(FeedbackRow, i).duplicate_of for i in ids]
    # bob is another voice, noodleking another brand, day 20 is beyond the window, item 7 a
    # second post on the same source; ann again (same author) and the cross-post (author
    # unknown, another source) stay linked
    assert links == [None, None, None, ids[0], None, ids[0], None]


def test_filters_and_cursor_pagination(db_url, make_runtime, fake_scorer):
    rt = make_runtime(db_url, fake_scorer)
    _ingest(
        rt,
        [_rec(i) for i in range(25)]
        + [_rec(100, channel="complaint", text="this arrived crushed, bad")],
    )
    with rt.sessions() as s:
        seen, cursor = [], None
        while True:
            page, cursor = repo.list_feedback(s, flt=repo.FeedbackFilter(), limit=7, cursor=cursor)
            seen.extend(page)
            if cursor is None:
                break
        assert len(seen) == 26 and len({f.id for f in seen}) == 26
        assert [f.created_at for f in seen] == sorted((f.created_at for f in seen), reverse=True)
        east = repo.FeedbackFilter(regions=("East",), attributes={"age_group": ("18-24",)})
        got, _ = repo.list_feedback(s, flt=east, limit=100)
        assert got and all(f.region == "East" and f.attributes["age_group"] == "18-24" for f in got)
        neg, _ = repo.list_feedback(s, flt=repo.FeedbackFilter(sentiments=("negative",)), limit=100)
        assert [f.external_id for f in neg] == ["100"]
        window = repo.FeedbackFilter(since=T0 + timedelta(hours=5), until=T0 + timedelta(hours=10))
        assert repo.count_feedback(s, flt=window) == 5
        with pytest.raises(repo.CursorError):
            repo.list_feedback(s, flt=repo.FeedbackFilter(), limit=5, cursor="garbage!")


def test_embeddings_are_stored_as_float16_and_stale_scores_are_found(
    db_url, make_runtime, fake_scorer
):
    rt = make_runtime(db_url, fake_scorer)
    _ingest(rt, [_rec(i) for i in range(5)])
    with rt.sessions() as s:
        blob = s.scalars(select(ScoreRow.embedding)).first()
        assert len(np.frombuffer(blob, dtype="<f2")) == 8
        assert repo.count_stale(s, model_version="fake-1") == 0
        assert repo.count_stale(s, model_version="fake-2") == 5
        assert len(repo.stale_items(s, model_version="fake-2", limit=3)) == 3


def test_deleting_an_item_removes_its_scores_and_attributes(db_url, make_runtime, fake_scorer):
    rt = make_runtime(db_url, fake_scorer)
    rep = _ingest(rt, [_rec(1)])
    with rt.sessions() as s, s.begin():
        s.delete(s.get(FeedbackRow, rep.results[0].id))
    with rt.sessions() as s:
        assert s.scalar(select(ScoreRow.feedback_id)) is None


def _refuse_external_id(engine, ext_id: str) -> None:
    """A trigger that makes the database itself refuse one row (what validation cannot see)."""
    with engine.begin() as c:
        if engine.dialect.name == "sqlite":
            c.exec_driver_sql(
                f"CREATE TRIGGER refuse BEFORE INSERT ON feedback WHEN NEW.external_id = '{ext_id}' "
                "BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"
            )
        else:
            c.exec_driver_sql(f"""CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN
                IF NEW.external_id = '{ext_id}' THEN
                  RAISE EXCEPTION 'refused by trigger' USING ERRCODE = 'check_violation';
                END IF; RETURN NEW; END $$ LANGUAGE plpgsql""")
            c.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON feedback FOR EACH ROW EXECUTE FUNCTION refuse()"
            )


def test_a_row_the_database_refuses_is_rejected_alone(db_url, make_runtime, fake_scorer):
    rt = make_runtime(db_url, fake_scorer)
    _refuse_external_id(rt.engine, "3")
    rep = _ingest(rt, [_rec(i) for i in range(7)])
    assert rep.counts["created"] == 6 and rep.counts["rejected"] == 1
    assert rep.results[3].status == "rejected"
    assert "refused by trigger" in rep.results[3].errors[0]["reason"]
    assert rep.results[3].row == 5  # rows are numbered as in the file
    with rt.sessions() as s:
        assert repo.count_feedback(s) == 6


def test_bulk_rows_the_database_refuses_raise_the_sqlalchemy_error(
    db_url, make_runtime, fake_scorer
):
    """COPY (PostgreSQL) and executemany (SQLite) fail alike, so ingest's bisection still
    rejects only the offending rows."""
    from datetime import datetime

    from sqlalchemy.exc import IntegrityError

    from service.store.db import transaction
    from service.store.tables import ScoreRow

    rt = make_runtime(db_url, fake_scorer)
    (item,) = _ingest(rt, [_rec(1, "fine")]).results
    bad = dict(
        feedback_id=item.id + 1000,
        sentiment="bad",
        sentiment_score=0.0,
        p_negative=0.0,
        p_neutral=1.0,
        p_positive=0.0,
        model_version="x",
        embedding=b"",
        topic_embedding=None,
        scored_at=datetime.now(UTC),
    )
    with pytest.raises(IntegrityError):
        with transaction(rt.sessions) as s:
            repo._bulk_insert(s, ScoreRow.__table__, [bad])
    with rt.sessions() as s:
        assert repo.count_feedback(s) == 1


def test_one_question_gets_one_count_everywhere(db_url, make_runtime, fake_scorer):
    """Items with a cross-post and a same-author repeat among them: segments, the item list,
    trends and a volume threshold alert all count the same voices."""
    from fastapi.testclient import TestClient

    from service.alerts.engine import AlertEngine
    from service.alerts.rules import AlertConfig
    from service.api.app import create_app

    rt = make_runtime(db_url, fake_scorer)
    week0 = datetime(2026, 5, 4, tzinfo=UTC)  # a Monday
    recs = [
        _rec(
            i,
            text=f"voice {i} says the cup noodles were fine, nothing more to add here {i}",
            created_at=(week0 + timedelta(hours=3 * i)).isoformat(),
            author=f"c{i}",
        )
        for i in range(20)
    ]
    recs += [
        _rec(
            100,
            text=recs[0]["text"],
            source="weibo",
            channel="social",  # a cross-post of voice 0
            created_at=(week0 + timedelta(hours=1)).isoformat(),
        ),
        _rec(
            101,
            text=recs[1]["text"],
            author="c1",  # voice 1 again, days later
            created_at=(week0 + timedelta(days=5)).isoformat(),
        ),
    ]
    rep = _ingest(rt, recs)
    assert rep.linked == 2
    with TestClient(create_app(runtime=rt)) as c:
        span = {"since": week0.isoformat(), "until": (week0 + timedelta(weeks=1)).isoformat()}
        seg = c.get("/v1/segments", params={"dimension": "region", **span}).json()["total"][
            "volume"
        ]
        listed = len(c.get("/v1/feedback", params={"limit": 500, **span}).json()["items"])
        trend = sum(
            p["mentions"]
            for p in c.get("/v1/trends", params={"bucket": "week", **span}).json()["points"]
        )
        everything = len(
            c.get(
                "/v1/feedback", params={"limit": 500, "include_duplicates": "true", **span}
            ).json()["items"]
        )
    engine = AlertEngine(
        AlertConfig.parse(
            {
                "rules": [
                    {
                        "name": "vol",
                        "type": "threshold",
                        "metric": "volume",
                        "above": 0,
                        "min_mentions": 0,
                    }
                ]
            }
        ),
        aspects=[a.id for a in rt.settings.taxonomy.aspects],
        our_brand="spicewell",
    )
    with rt.sessions() as s:
        engine.run(s, week0 + timedelta(weeks=1))
        from service.store import alerts as alerts_repo

        observed = [a.observed for a in alerts_repo.list_alerts(s)]
    assert seg == listed == trend == 20 and everything == 22
    assert observed == [20.0]
