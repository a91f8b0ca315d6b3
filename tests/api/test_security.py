"""The findings of the security probe that concern the store and the API (issue 20): erasure
leaves nothing of an author, every read and write stays inside a key's scope, the author hash
cannot be reversed or seen by viewers, one request's cost is bounded, and malformed numbers
are field errors, not 500s. Both databases where the store is involved."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from service.api.app import create_app
from service.domain import AspectScore, Score
from service.nlp.pipeline import ScoredText
from service.store import access, themes
from service.store.tables import (
    AlertEventRow,
    FeedbackRow,
    OutboxRow,
)
from tests.analytics.conftest import AspectKeywordScorer

NOW = datetime.now(UTC).replace(microsecond=0)
RARE_EN, RARE_ZH = "zorblatt", "蟑螂腿"


class HarmScorer(AspectKeywordScorer):
    """The keyword scorer, plus a severe health_safety tag on texts about getting sick."""

    def score(self, texts, languages=None):
        out = []
        for t, s in zip(texts, super().score(texts, languages)):
            if "sick" in t or "病" in t:
                harm = AspectScore(
                    aspect="health_safety",
                    confidence=0.95,
                    sentiment="negative",
                    sentiment_score=-0.9,
                    evidence=t,
                )
                sc = Score(
                    sentiment="negative",
                    sentiment_score=-0.9,
                    probabilities={"negative": 0.95, "neutral": 0.03, "positive": 0.02},
                    aspects=[harm, *s.score.aspects],
                    model_version=self.version,
                )
                s = ScoredText(sc, s.embedding)
            out.append(s)
        return out


def _item(i: int, text: str, *, region="East", brand="spicewell", author=None, hours_ago=2) -> dict:
    return {
        "source": "shop",
        "channel": "review",
        "external_id": f"x{i}",
        "text": text,
        "region": region,
        "brand": brand,
        "author": author or f"cust-{i}",
        "language": "zh" if "汤" in text else "en",
        "created_at": (NOW - timedelta(hours=hours_ago + i % 5)).isoformat(),
    }


def _store_theme(
    s, keywords: list[str], *, scope: str, latest: list[str], quotes: list[int]
) -> int:
    """A theme with ``keywords`` and one snapshot of the week to now in ``scope`` (its
    ``latest`` keywords, quoting the items ``quotes``; figures that do not matter here), stored
    as the theme job stores them: its id."""
    zero = np.zeros(8, "<f2").tobytes()
    theme_id = themes.save_theme(
        s, theme_id=None, centroid=zero, facet=None, parent_id=None, keywords=keywords, now=NOW
    )
    figures = {"size": 3, "share": 0.3, "net_sentiment": -0.5, "emerging": True}
    snapshot = {
        "id": theme_id,
        "keywords": latest,
        "quotes": [{"id": i} for i in quotes],
        **figures,
    }
    week = NOW - timedelta(days=7)
    themes.save_snapshots(s, themes=[snapshot], scope=scope, since=week, until=NOW, now=NOW)
    return theme_id


def _h(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def app_keys(db_url, make_runtime):
    rt = make_runtime(
        db_url,
        scorer=HarmScorer(),
        api={"auth": True, "rate_limit_per_minute": 100_000},
        delivery={"signing_key": "k", "webhook_allow": ["127.0.0.1/32"]},
    )
    with rt.sessions() as s:
        keys = {
            r: access.create_key(s, role=r, actor="t")[1] for r in ("admin", "analyst", "viewer")
        }
        keys["east"] = access.create_key(s, role="analyst", actor="t", regions=["East"])[1]
        keys["east_viewer"] = access.create_key(s, role="viewer", actor="t", regions=["East"])[1]
        keys["ours"] = access.create_key(s, role="viewer", actor="t", brands=["spicewell"])[1]
    with TestClient(create_app(runtime=rt)) as client:
        yield rt, client, keys


def _db_bytes(rt) -> bytes:
    """Every byte of a SQLite store's files (the database, its write-ahead log and journal)."""
    path = Path(rt.engine.url.database)
    return b"".join(
        p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-journal")) if p.exists()
    )


def _pg_dump_text(rt) -> str:
    """Every row of every table of a PostgreSQL store, as text."""
    out = []
    with rt.engine.connect() as c:
        tables = (
            c.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
            .scalars()
            .all()
        )
        for t in tables:
            out += [r[0] for r in c.execute(text(f'SELECT CAST(t AS text) FROM "{t}" AS t'))]
            if t == "outbox":
                out += [
                    bytes(r[0]).decode("utf-8", "replace")
                    for r in c.execute(text("SELECT payload FROM outbox"))
                ]
    return "\n".join(out)


def test_erasure_leaves_no_word_of_the_author_in_any_table_message_or_file(app_keys):
    rt, client, keys = app_keys
    admin = _h(keys["admin"])
    theirs = [
        f"Found a {RARE_EN} shard in the soup and my son got sick",
        f"汤里有{RARE_ZH}，孩子吃完就病了",
    ]
    others = [
        "the soup was lovely, great bowl",
        "too spicy flavour for me",
        "the box arrived crushed",
    ]
    items = [_item(i, t, author="cust-x") for i, t in enumerate(theirs)] + [
        _item(10 + i, t) for i, t in enumerate(others * 3)
    ]
    assert client.post("/v1/feedback", json={"items": items}, headers=admin).json()["rejected"] == 0
    for sub in (
        {"target": "lead@example.test", "frequency": "immediate", "min_severity": "L2"},
        {
            "channel": "webhook",
            "target": "http://127.0.0.1:9/hook",
            "format": "generic",
            "frequency": "immediate",
            "min_severity": "L2",
        },
    ):
        r = client.post("/v1/subscriptions", json=sub, headers=admin)
        assert r.status_code in (200, 201), r.text
    as_of = datetime.now(UTC) + timedelta(seconds=1)  # after the subscriptions began
    with rt.sessions() as s:
        report = rt.alert_engine().run(s, as_of)
        assert len(report.raised) >= 2  # one severe complaint per item of theirs
        ids = list(
            s.scalars(
                select(FeedbackRow.id).where(FeedbackRow.author_hash == rt.author_hasher("cust-x"))
            )
        )
        # a theme whose keywords came partly from their words, partly from everyone's
        theme_id = _store_theme(
            s, [RARE_EN, "soup", RARE_ZH], scope="all", latest=[RARE_EN, "soup"], quotes=ids
        )
        # an e-mail already sent, its quote in base64 (how a UTF-8 body travels)
        mail = EmailMessage()
        mail["Subject"] = "Digest"
        mail.set_content(f"Top complaint: “{theirs[1]}”", charset="utf-8", cte="base64")
        s.add(
            OutboxRow(
                dedupe_key="sent-1",
                channel="email",
                format="email",
                target="lead@example.test",
                message_id="<m1@radar>",
                payload=mail.as_bytes(),
                status="sent",
                attempts=1,
                next_attempt_at=NOW,
                created_at=NOW,
                sent_at=NOW,
            )
        )
        s.commit()
    rt.delivery_service(charts=False).run(
        as_of, send=False
    )  # notices of the new alerts, composed, not sent
    with rt.sessions() as s:
        quoted = [
            r
            for r in s.scalars(select(OutboxRow))
            if RARE_EN.encode() in r.payload
            or RARE_EN in (r.subject or "")
            or RARE_ZH
            in json.dumps(json.loads(r.payload) if r.format != "email" else {}, ensure_ascii=False)
        ]
        assert quoted, "the notices should quote the complaint before the erasure"
    titles = [a["title"] for a in client.get("/v1/alerts", headers=admin).json()["alerts"]]
    assert any(RARE_EN in t for t in titles)

    r = client.post("/v1/erasure", json={"author": "cust-x"}, headers=admin)
    assert r.status_code == 200, r.text
    erased = r.json()["erased"]
    assert (
        erased["items"] == 2 and erased["alerts_scrubbed"] >= 2 and erased["themes_scrubbed"] == 1
    )
    assert erased["messages_redacted"] >= 2

    listed = client.get("/v1/alerts", headers=admin).json()["alerts"]
    assert listed and all(RARE_EN not in a["title"] and RARE_ZH not in a["title"] for a in listed)
    assert any("[erased]" in a["title"] for a in listed)
    detail = client.get(f"/v1/alerts/{listed[0]['id']}", headers=admin).json()
    assert RARE_EN not in json.dumps(detail, ensure_ascii=False)
    theme = client.get(f"/v1/themes/{theme_id}", headers=admin).json()
    assert (
        theme["keywords"] == ["soup"]
        and theme["history"][0]["keywords"] == ["soup"]
        and theme["quotes"] == []
    )
    with rt.sessions() as s:
        notes = [e.note or "" for e in s.scalars(select(AlertEventRow))]
        assert notes and not any(RARE_EN in n or RARE_ZH in n for n in notes)
        rows = s.scalars(select(OutboxRow)).all()
        assert all(RARE_EN.encode() not in bytes(r.payload) for r in rows)
        assert not any(
            r.status in ("pending", "sending") and b"erased" in bytes(r.payload) for r in rows
        )
        assert {r.status for r in rows if b"right to erasure" in bytes(r.payload)} <= {
            "cancelled",
            "sent",
        }
    if rt.engine.dialect.name == "sqlite":
        raw = _db_bytes(rt)
        assert raw and RARE_EN.encode() not in raw and RARE_ZH.encode() not in raw
        assert b"soup" in raw  # the others' words are still there
    else:
        dump = _pg_dump_text(rt)
        assert RARE_EN not in dump and RARE_ZH not in dump and "soup" in dump


def test_scoped_keys_read_no_theme_series_or_phrase_outside_their_scope(app_keys):
    rt, client, keys = app_keys
    admin, east, ours = _h(keys["admin"]), _h(keys["east"]), _h(keys["ours"])
    items = [
        _item(i, t, region=region, brand=brand, hours_ago=24 * (i % 20))
        for i, (t, region, brand) in enumerate(
            (t, region, brand)
            for t in ("too spicy flavour", "lovely flavour, great")
            for region in ("East", "South")
            for brand in ("spicewell", "noodleking")
            for _ in range(8)
        )
    ]
    assert client.post("/v1/feedback", json={"items": items}, headers=admin).json()["rejected"] == 0
    with rt.sessions() as s:  # a theme found among South's items only
        theme_id = _store_theme(
            s, ["southword"], scope="south-only", latest=["southword"], quotes=[]
        )
        s.commit()
    assert client.get(f"/v1/themes/{theme_id}", headers=admin).json()["keywords"] == ["southword"]
    assert client.get(f"/v1/themes/{theme_id}", headers=east).status_code == 404

    window = {
        "since": (NOW - timedelta(days=30)).isoformat(),
        "until": (NOW + timedelta(hours=1)).isoformat(),
    }
    params = {**window, "competitor": "noodleking", "compare_aspect": "taste"}
    assert client.get("/v1/benchmark/series", params=params, headers=admin).status_code == 200
    r = client.get("/v1/benchmark/series", params=params, headers=ours)
    assert r.status_code == 404 and "noodleking" not in r.text
    r = client.get(
        "/v1/benchmark/series", params={**params, "competitor": "(competitors)"}, headers=ours
    )
    assert r.status_code == 404

    # an attribute only South's items have is unknown to an East key, as if nobody had it
    south = _item(99, "lovely flavour", region="South")
    south["attributes"] = {"secret_tier": "gold"}
    client.post("/v1/feedback", json={"items": [south]}, headers=admin)
    assert (
        client.get("/v1/segments", params={"dimension": "secret_tier"}, headers=admin).status_code
        == 200
    )
    r = client.get("/v1/segments", params={"dimension": "secret_tier"}, headers=east)
    assert r.status_code == 422 and "no stored item" in r.text

    # tracked phrases: an East analyst's phrase is not listed to a South analyst
    with rt.sessions() as s:
        south_key = access.create_key(s, role="analyst", actor="t", regions=["South"])[1]

    def track(phrase: str, headers: dict) -> int:
        body = {"phrase": phrase, "paraphrases": False}
        return client.post("/v1/tracked-phrases", json=body, headers=headers).status_code

    def seen(key: str) -> list[str]:
        return [p["phrase"] for p in client.get("/v1/tracked-phrases", headers=_h(key)).json()]

    assert track("east secret", east) == 201
    assert track("for everyone", admin) == 201
    assert seen(keys["admin"]) == ["east secret", "for everyone"]
    assert seen(keys["east"]) == ["east secret", "for everyone"]
    assert seen(south_key) == ["for everyone"]
    phrase_id = client.get("/v1/tracked-phrases", headers=east).json()[0]["id"]
    r = client.get("/v1/trends", params={**window, "phrase_id": phrase_id}, headers=_h(south_key))
    assert r.status_code == 404
    # the South analyst tracking the same phrase makes it theirs too (and reveals nothing of East's)
    assert track("east secret", _h(south_key)) == 201
    assert seen(south_key) == ["east secret", "for everyone"]


def test_writes_outside_a_keys_scope_are_not_found_and_change_nothing(app_keys):
    rt, client, keys = app_keys
    admin, east = _h(keys["admin"]), _h(keys["east"])
    south = _item(1, "the box arrived crushed", region="South")
    assert (
        client.post("/v1/feedback", json={"items": [south]}, headers=admin).json()["created"] == 1
    )
    # overwriting South's item with an East key, moving it to East: refused as not found
    moved = {**south, "region": "East", "text": "overwritten"}
    r = client.post("/v1/feedback", json={"items": [moved]}, headers=east).json()
    assert (
        r["rejected"] == 1 and r["items"][0]["status"] == "rejected" and r["items"][0]["id"] is None
    )
    assert (
        r["items"][0]["errors"][0]["field"] == "external_id"
        and "not found" in r["items"][0]["errors"][0]["reason"]
    )
    # the same answer for a new item outside the scope, so the answer tells nothing of the store
    new_south = {**_item(2, "lovely"), "region": "South"}
    r2 = client.post("/v1/feedback", json={"items": [new_south]}, headers=east).json()
    assert r2["items"][0]["errors"] == r["items"][0]["errors"]
    stored = client.get("/v1/feedback", headers=admin).json()["items"]
    assert [(i["external_id"], i["region"], i["text"]) for i in stored] == [
        ("x1", "South", "the box arrived crushed")
    ]
    # within the scope, writes work as ever
    mine = _item(3, "too spicy flavour", region="East")
    assert client.post("/v1/feedback", json={"items": [mine]}, headers=east).json()["created"] == 1
    assert (
        client.post(
            "/v1/feedback", json={"items": [{**mine, "text": "too spicy now"}]}, headers=east
        ).json()["updated"]
        == 1
    )


def test_one_key_twice_in_a_batch_is_answered_once(app_keys):
    rt, client, keys = app_keys
    rows = [_item(1, f"version {v}, too spicy flavour") for v in range(3)]
    r = client.post("/v1/feedback", json={"items": rows}, headers=_h(keys["admin"])).json()
    assert [i["status"] for i in r["items"]] == ["rejected", "rejected", "created"]
    assert "row 2" in r["items"][0]["errors"][0]["reason"] and r["created"] == 1
    assert (
        client.get("/v1/feedback", headers=_h(keys["admin"]))
        .json()["items"][0]["text"]
        .startswith("version 2")
    )


def test_author_hashes_are_salted_per_installation_and_hidden_from_viewers(app_keys, make_runtime):
    rt, client, keys = app_keys
    client.post(
        "/v1/feedback",
        json={"items": [_item(1, "lovely", author="cust-02323")]},
        headers=_h(keys["admin"]),
    )
    shown = client.get("/v1/feedback", headers=_h(keys["analyst"])).json()["items"][0][
        "author_hash"
    ]
    unsalted = hashlib.sha256(b"\x00" + b"cust-02323").hexdigest()
    assert shown and shown != unsalted and shown == rt.author_hasher("cust-02323")
    for key in ("viewer", "east_viewer"):
        listed = client.get("/v1/feedback", headers=_h(keys[key])).json()["items"]
        assert listed and all(i["author_hash"] is None for i in listed)
        one = client.get(f"/v1/feedback/{listed[0]['id']}", headers=_h(keys[key])).json()
        assert one["author_hash"] is None
    # another process on the same store hashes alike (the salt lives in the store)
    again = make_runtime(
        str(rt.engine.url.render_as_string(hide_password=False)), scorer=HarmScorer()
    )
    assert again.author_hasher("cust-02323") == shown


def test_a_store_made_before_the_salt_keeps_its_links_and_erasure(db_url, make_runtime):
    """Migration 0012 wraps the hashes an older store holds: the same author still links and
    can still be erased, and no stored hash is the plain one any more."""
    from alembic import command

    from service.store.migrate import alembic_config, upgrade
    from service.store.tables import InstallationRow

    rt = make_runtime(db_url, scorer=HarmScorer())
    cfg = alembic_config(rt.engine)
    with rt.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0011")
    old = rt.settings.author_hasher()("cust-7")  # what 0011 stores held
    with rt.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO feedback (source, external_id, channel, text, text_hash, content_hash, "
                "created_at, brand, author_hash, ingested_at, updated_at) VALUES ('shop', 'old-1', "
                "'review', 'too spicy flavour', 'h', 'c', :t, 'spicewell', :a, :t, :t)"
            ),
            {"t": NOW - timedelta(days=1), "a": old},
        )
    upgrade(rt.engine)
    with rt.sessions() as s:
        assert s.get(InstallationRow, "author_salt") is not None
        stored = s.scalar(select(FeedbackRow.author_hash))
    assert stored != old and stored == rt.author_hasher("cust-7")
    from service.store.erasure import erase_author

    with rt.sessions() as s:
        assert erase_author(s, author_hash=rt.author_hasher("cust-7"))["items"] == 1
        s.commit()


def test_a_long_text_is_scored_on_its_token_budget_and_the_cut_recorded(
    real_runtime_factory, sqlite_url
):
    rt = real_runtime_factory(sqlite_url)
    pipeline = rt.scorer
    budget = pipeline.max_item_tokens
    assert budget == rt.settings.limits.max_item_tokens
    long_zh = "面条太咸了，包装也破了。" * 1500  # ~18,000 characters, one token each or so
    t0 = time.perf_counter()
    scored = pipeline.score([long_zh, "too salty"])
    assert time.perf_counter() - t0 < 10
    assert scored[0].score.truncated_tokens > 10_000 and scored[1].score.truncated_tokens is None
    item = _item(1, long_zh)
    rep = rt.ingest_service().ingest([(0, item)])
    assert rep.counts["created"] == 1
    with rt.sessions() as s:
        from service.store import repo

        stored = repo.get_feedback(s, feedback_id=rep.results[0].id)
    assert (
        stored.text == long_zh and stored.score.truncated_tokens == scored[0].score.truncated_tokens
    )


def test_the_model_timeout_stops_the_work(sqlite_url, make_runtime):
    from service.nlp.cancel import check

    calls = []

    class Slow(AspectKeywordScorer):
        def score(self, texts, languages=None):
            out = []
            for t in (
                texts
            ):  # one text at a time, checking between them as the encoder does between batches
                check()
                calls.append(t)
                time.sleep(0.05)
                out += super().score([t])
            return out

    rt = make_runtime(sqlite_url, scorer=Slow(), limits={"model_timeout_s": 0.3})
    items = [_item(i, f"too spicy flavour {i}") for i in range(60)]
    with TestClient(create_app(runtime=rt)) as c:
        r = c.post("/v1/feedback", json={"items": items})
        assert r.status_code == 503 and "stopped" in r.json()["error"]["message"]
        time.sleep(0.5)
        done = len(calls)
        time.sleep(0.5)
        assert len(calls) == done < 60  # nothing runs on after the answer
        assert c.get("/v1/feedback").json()["items"] == []


@pytest.mark.parametrize(
    "field,value",
    [
        ("external_id", 10**400),
        ("region", 10**400),
        ("rating", "Infinity"),
        ("rating", 1e400),
        ("rating_scale", "Infinity"),
    ],
)
def test_malformed_numbers_are_field_errors_not_500(sqlite_url, make_runtime, field, value):
    rt = make_runtime(sqlite_url, scorer=AspectKeywordScorer())
    good = _item(1, "lovely flavour")
    bad = {**_item(2, "too spicy flavour"), field: value}
    body = json.dumps({"items": [good, bad]}).replace('"Infinity"', "Infinity")
    with TestClient(create_app(runtime=rt)) as c:
        r = c.post("/v1/feedback", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["created"] == 1 and out["rejected"] == 1
        assert out["items"][1]["errors"][0]["field"].startswith(field)


def test_cursor_beyond_64_bits_is_a_422(sqlite_url, make_runtime):
    import base64

    rt = make_runtime(sqlite_url, scorer=AspectKeywordScorer())
    cursor = base64.urlsafe_b64encode(f"{NOW.isoformat()}|{2**63}".encode()).decode().rstrip("=")
    with TestClient(create_app(runtime=rt)) as c:
        r = c.get("/v1/feedback", params={"cursor": cursor})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "query.cursor"


def test_attribute_limits_are_field_errors_never_silent_cuts(sqlite_url, make_runtime):
    rt = make_runtime(sqlite_url, scorer=AspectKeywordScorer(), limits={"max_attributes": 5})
    base = _item(1, "lovely flavour")
    cases = {
        "too many": {f"a{i}": "v" for i in range(6)},
        "long name": {"n" * 65: "v"},
        "long value": {"tier": "v" * 257},
        "shared prefix": {"p" * 64 + "x": "1", "p" * 64 + "y": "2"},
    }
    with TestClient(create_app(runtime=rt)) as c:
        for i, (what, attrs) in enumerate(cases.items()):
            item = {**base, "external_id": f"attr-{i}", "attributes": attrs}
            out = c.post("/v1/feedback", json={"items": [item]}).json()
            assert out["rejected"] == 1, (what, out)
            err = out["items"][0]["errors"][0]
            assert err["field"].startswith("attributes") and (
                "limit" in err["reason"] or "longer" in err["reason"]
            )
        ok = {**base, "external_id": "attr-ok", "attributes": {"n" * 64: "v" * 256}}
        assert c.post("/v1/feedback", json={"items": [ok]}).json()["created"] == 1
        stored = c.get("/v1/feedback").json()["items"][0]["attributes"]
        assert stored == {"n" * 64: "v" * 256}
