"""Operations through the real app: liveness and readiness without a key, the health details,
a read-only store, a corrupted one, brute-forced keys, Prometheus metrics and the access log."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select, text

from service.api.app import create_app
from service.api.logs import JsonFormatter
from service.api.readiness import Readiness
from service.store import access
from service.store.tables import ApiKeyRow, OutboxRow
from tests.delivery.test_outbox import make_alert

START = datetime(2026, 5, 4, tzinfo=UTC)


def _items(n: int, *, start: int = 0, words: int = 1) -> list[dict]:
    return [
        {
            "source": "shop",
            "channel": "review",
            "external_id": f"o{i}",
            "region": ("East", "West")[i % 2],
            "text": " ".join([f"great noodles, order {i}"] * words),
            "created_at": (START + timedelta(hours=i)).isoformat(),
        }
        for i in range(start, start + n)
    ]


def _store(make_runtime, url, scorer, *, n=4, words=1, **settings):
    """A runtime over a store with ``n`` items and an admin key (its text)."""
    rt = make_runtime(url, scorer=scorer, **settings)
    assert (
        rt.ingest_service().ingest(list(enumerate(_items(n, words=words)))).counts["created"] == n
    )
    with rt.sessions() as s:
        key = access.create_key(s, role="admin", actor="test")[1]
    return rt, key


def _h(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def _metrics(body: str) -> dict[tuple, float]:
    """``{(sample name, (label, value), ...): value}`` of a Prometheus exposition."""
    return {
        (s.name, *sorted(s.labels.items())): s.value
        for fam in text_string_to_metric_families(body)
        for s in fam.samples
    }


def test_live_and_ready_need_no_key_and_health_keeps_the_details(db_url, make_runtime, fake_scorer):
    rt, key = _store(make_runtime, db_url, fake_scorer, api={"auth": True})
    with TestClient(create_app(runtime=rt)) as c:
        live = c.get("/v1/health/live")
        assert live.status_code == 200 and live.json() == {"status": "alive"}
        ready = c.get("/v1/health/ready")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["status"] == "ready" and body["failed"] == []
        assert {ch["name"]: ch["state"] for ch in body["checks"]} == {
            "database": "ok",
            "write": "ok",
            "migrations": "ok",
            "model": "loaded",
        }
        assert c.get("/v1/health").status_code == 401  # the details need a key
        h = c.get("/v1/health", headers=_h(key)).json()
        assert (
            h["status"] == "ok"
            and h["database"] == "ok"
            and h["items"] == 4
            and h["model_version"] == "fake-1"
        )
        assert [ch["name"] for ch in h["checks"]] == ["database", "write", "migrations", "model"]
        spec = c.get("/openapi.json").json()["paths"]
        assert (
            "security" not in spec["/v1/health/ready"]["get"]
            and "503" in spec["/v1/health/ready"]["get"]["responses"]
        )


def test_the_model_check_finds_the_packaged_model_without_loading_it(sqlite_url, make_runtime):
    rt = make_runtime(sqlite_url)  # no scorer injected: the registry's
    ready = Readiness(rt).model()
    assert ready.ok and ready.state == "loadable" and ready.detail.startswith("default:")
    assert rt._scorer is None  # nothing was loaded


def test_a_schema_behind_the_code_is_not_ready(sqlite_url, make_runtime, fake_scorer):
    rt = make_runtime(sqlite_url, scorer=fake_scorer)
    with rt.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0010'"))
    check = Readiness(rt).migrations()
    assert not check.ok and check.state == "behind" and "0010" in check.detail


@pytest.fixture
def read_only(db_url, make_runtime, fake_scorer, request):
    """A store, then a runtime that can only read it: SQLite through a read-only URI
    (``mode=ro``: file permissions do not stop root), PostgreSQL with read-only transactions
    for every new session of the database."""
    rt, key = _store(make_runtime, db_url, fake_scorer, api={"auth": True})
    rt.close()
    if db_url.startswith("sqlite"):
        path = db_url.removeprefix("sqlite:///")
        yield (
            make_runtime(
                f"sqlite:///file:{path}?mode=ro&uri=true",
                scorer=fake_scorer,
                api={"auth": True, "metrics": True},
            ),
            key,
        )
        return
    from tests.conftest import PG_ADMIN_URL

    name = db_url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
    try:
        yield make_runtime(db_url, scorer=fake_scorer, api={"auth": True, "metrics": True}), key
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
        admin.dispose()


def test_a_read_only_store_still_serves_reads_and_says_why_writes_fail(read_only):
    rt, key = read_only
    with TestClient(create_app(runtime=rt)) as c:
        # the key's last use cannot be recorded: the request goes on (it was a 500 before)
        h = c.get("/v1/health", headers=_h(key))
        assert h.status_code == 200, h.text
        assert (
            h.json()["database"] == "read-only"
            and h.json()["status"] == "degraded"
            and h.json()["items"] == 4
        )
        assert len(c.get("/v1/feedback", headers=_h(key)).json()["items"]) == 4
        ready = c.get("/v1/health/ready")
        assert ready.status_code == 503 and ready.json()["failed"] == ["write"]
        write = next(ch for ch in ready.json()["checks"] if ch["name"] == "write")
        assert write["state"] == "read-only" and "read" in write["detail"].lower()
        r = c.post("/v1/feedback", headers=_h(key), json={"items": _items(1, start=100)})
        assert r.status_code == 503 and r.json()["error"]["code"] == "database_read_only"
        assert r.headers["Retry-After"] and "read" in r.json()["error"]["message"]
        m = _metrics(c.get("/metrics").text)
        assert m[("radar_database_errors_total", ("kind", "read-only"))] == 1
    with rt.sessions() as s:
        assert s.scalar(select(ApiKeyRow.last_used_at)) is None


def _checkpointed_copy(url: str, dest) -> str:
    src = url.removeprefix("sqlite:///")
    conn = sqlite3.connect(src)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    shutil.copy(src, dest)
    return f"sqlite:///{dest}"


def _corrupt(path) -> None:
    """Overwrite 12 KiB in the middle of the file (the feedback table's pages)."""
    size = os.path.getsize(path)
    with open(path, "r+b") as fh:
        fh.seek(size // 2)
        fh.write(b"\xa5" * 12288)


def test_a_corrupted_copy_is_reported_corrupt_and_not_ready(
    sqlite_url, make_runtime, fake_scorer, tmp_path
):
    rt, key = _store(make_runtime, sqlite_url, fake_scorer, n=1500, words=8, api={"auth": True})
    rt.close()
    bad = tmp_path / "copy.db"
    url = _checkpointed_copy(sqlite_url, bad)
    _corrupt(bad)
    broken = make_runtime(url, scorer=fake_scorer, api={"auth": True})
    with TestClient(create_app(runtime=broken)) as c:
        h = c.get("/v1/health", headers=_h(key))
        assert h.status_code == 200, h.text
        assert h.json()["database"] == "corrupt" and h.json()["status"] == "degraded"
        ready = c.get("/v1/health/ready")
        assert ready.status_code == 503 and "database" in ready.json()["failed"]
        db = next(ch for ch in ready.json()["checks"] if ch["name"] == "database")
        assert db["state"] == "corrupt" and db["detail"] and len(db["detail"]) <= 500
        assert (
            c.get("/v1/health/live").status_code == 200
        )  # alive: restarting will not mend the file
        item = {
            "source": "t",
            "external_id": "after-damage",
            "text": "good noodles",
            "channel": "review",
            "created_at": "2026-05-01T00:00:00Z",
        }
        w = c.post(
            "/v1/feedback", json={"items": [item]}, headers=_h(key)
        )  # no write lands in a damaged file
        assert w.status_code == 503 and w.json()["error"]["code"] == "database_corrupt"


def test_the_integrity_answer_is_cached_for_a_while(
    sqlite_url, make_runtime, fake_scorer, tmp_path
):
    rt, _ = _store(make_runtime, sqlite_url, fake_scorer, n=1500, words=8)
    rt.close()
    path = tmp_path / "copy.db"
    copy = make_runtime(_checkpointed_copy(sqlite_url, path), scorer=fake_scorer)
    now = [0.0]
    readiness = Readiness(copy, integrity_ttl=30, clock=lambda: now[0])
    assert readiness.database().state == "ok"
    copy.engine.dispose()
    _corrupt(path)
    now[0] = 29.0
    assert readiness.database().state == "ok"  # the cached answer: health stays cheap
    now[0] = 30.0
    assert readiness.database().state == "corrupt"


def test_unknown_keys_count_against_the_address_until_429(sqlite_url, make_runtime, fake_scorer):
    rt, key = _store(
        make_runtime, sqlite_url, fake_scorer, api={"auth": True, "rate_limit_per_minute": 3}
    )
    with TestClient(create_app(runtime=rt)) as c:
        guesses = [c.get("/v1/feedback", headers=_h(f"rk_guess{i}_nope")) for i in range(4)]
        assert [r.status_code for r in guesses] == [401, 401, 401, 429]
        assert 1 <= int(guesses[-1].headers["Retry-After"]) <= 20
        assert guesses[-1].json()["error"]["code"] == "rate_limited"
        # the address is refused before any key is looked up: a right guess is not told apart
        assert c.get("/v1/feedback", headers=_h(key)).status_code == 429
        assert c.get("/v1/health/live").status_code == 200  # probes are not keyed nor limited


def test_metrics_count_requests_scoring_and_the_store(sqlite_url, make_runtime, fake_scorer):
    rt = make_runtime(sqlite_url, scorer=fake_scorer, api={"metrics": True})
    with TestClient(create_app(runtime=rt)) as c:
        assert c.post("/v1/feedback", json={"items": _items(3)}).status_code == 200
        assert (
            c.post("/v1/score", json={"items": [{"text": "great"}, {"text": "bad"}]}).status_code
            == 200
        )
        fid = c.get("/v1/feedback").json()["items"][0]["id"]
        for _ in range(2):
            c.get(f"/v1/feedback/{fid}")
        c.get("/v1/feedback/999999")
        c.get("/no/such/page")
        with rt.sessions() as s:
            make_alert(s, at=START, severity="L2")
            make_alert(s, at=START + timedelta(days=1), severity="L1", region="West")
            for i, status in enumerate(("pending", "pending", "dead")):
                s.add(
                    OutboxRow(
                        dedupe_key=f"d{i}",
                        channel="email",
                        format="text",
                        target="a@example.test",
                        message_id=f"<m{i}@t>",
                        payload=b"x",
                        status=status,
                        attempts=0,
                        next_attempt_at=START,
                        created_at=START,
                    )
                )
            s.commit()
        r = c.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        m = _metrics(r.text)
    req = "radar_http_requests_total"
    assert (
        m[(req, ("method", "GET"), ("route", "/v1/feedback/{feedback_id}"), ("status", "200"))] == 2
    )
    assert (
        m[(req, ("method", "GET"), ("route", "/v1/feedback/{feedback_id}"), ("status", "404"))] == 1
    )
    assert m[(req, ("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1
    assert m[(req, ("method", "POST"), ("route", "/v1/feedback"), ("status", "200"))] == 1
    assert not any(
        "999999" in str(k) or "/no/such" in str(k) for k in m
    )  # templates, never raw paths
    assert (
        m[("radar_http_request_duration_seconds_count", ("method", "POST"), ("route", "/v1/score"))]
        == 1
    )
    assert m[("radar_items_scored_total",)] == 5
    assert m[("radar_scoring_batch_size_count",)] == 2 and m[("radar_scoring_batch_size_sum",)] == 5
    assert m[("radar_scoring_duration_seconds_count",)] == 2
    assert m[("radar_items_stored", ("channel", "review"))] == 3
    assert m[("radar_scores_stored", ("model_version", "fake-1"))] == 3
    assert (
        m[("radar_outbox_messages", ("status", "pending"))] == 2
        and m[("radar_outbox_messages", ("status", "dead"))] == 1
    )
    assert m[("radar_alerts", ("rule", "pref"), ("severity", "L1"), ("status", "open"))] == 1
    assert m[("radar_alerts", ("rule", "pref"), ("severity", "L2"), ("status", "open"))] == 1
    assert m[("radar_model_pool_depth",)] == 0 and m[("radar_scoring_queue_texts",)] == 0
    assert m[("radar_store_up",)] == 1


def test_metrics_are_off_by_default_per_app_and_behind_their_key(
    sqlite_url, make_runtime, fake_scorer
):
    rt = make_runtime(sqlite_url, scorer=fake_scorer)
    with TestClient(create_app(runtime=rt)) as c:
        assert c.get("/metrics").status_code == 404
    keyed = make_runtime(
        sqlite_url, scorer=fake_scorer, api={"metrics": True, "metrics_key": "scrape-me"}
    )
    other = make_runtime(sqlite_url, scorer=fake_scorer, api={"metrics": True})
    with TestClient(create_app(runtime=keyed)) as c, TestClient(create_app(runtime=other)) as o:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers=_h("wrong")).status_code == 401
        c.get("/v1/health/live")
        m = _metrics(c.get("/metrics", headers=_h("scrape-me")).text)
        assert (
            m[
                (
                    "radar_http_requests_total",
                    ("method", "GET"),
                    ("route", "/v1/health/live"),
                    ("status", "200"),
                )
            ]
            == 1
        )
        # another app of the same process counts its own requests only
        mo = _metrics(o.get("/metrics").text)
        assert not any(
            k[0] == "radar_http_requests_total" and ("route", "/v1/health/live") in k for k in mo
        )
    assert "/metrics" not in create_app(runtime=keyed).openapi()["paths"]


def test_one_json_access_line_per_request_without_text_or_keys(
    sqlite_url, make_runtime, fake_scorer
):
    rt, key = _store(make_runtime, sqlite_url, fake_scorer, api={"auth": True})
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record):
            lines.append(JsonFormatter().format(record))

    handler = Capture()
    access_log = logging.getLogger("radar.access")
    access_log.addHandler(handler)
    old = access_log.level
    access_log.setLevel(logging.INFO)
    try:
        with TestClient(create_app(runtime=rt)) as c:
            secret_text = "my order arrived crushed, call me on 555-0100"
            r = c.post(
                "/v1/feedback",
                headers={**_h(key), "X-Request-ID": "trace-42"},
                json={"items": [{**_items(1, start=50)[0], "text": secret_text}]},
            )
            assert r.status_code == 200 and r.headers["X-Request-ID"] == "trace-42"
            fid = r.json()["items"][0]["id"]
            r2 = c.get(f"/v1/feedback/{fid}", headers=_h(key))
            generated = r2.headers["X-Request-ID"]
            assert len(generated) == 32
            assert (
                c.get("/v1/health", headers={"X-Request-ID": "bad id with spaces"}).headers[
                    "X-Request-ID"
                ]
                != "bad id with spaces"
            )
    finally:
        access_log.removeHandler(handler)
        access_log.setLevel(old)
    records = [json.loads(line) for line in lines]
    assert len(records) == 3
    first, second = records[0], records[1]
    prefix = key.split("_")[1]
    assert (
        first["request_id"] == "trace-42"
        and first["route"] == "/v1/feedback"
        and first["method"] == "POST"
    )
    assert first["status"] == 200 and first["latency_ms"] > 0 and first["key_prefix"] == prefix
    assert second["request_id"] == generated and second["route"] == "/v1/feedback/{feedback_id}"
    assert records[2]["status"] == 401 and records[2]["key_prefix"] is None
    everything = "\n".join(lines)
    assert key not in everything and key.split("_", 2)[2] not in everything
    assert "crushed" not in everything and "555-0100" not in everything
