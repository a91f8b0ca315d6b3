"""The original text of feedback is never logged: not on success, not for a row that fails
validation, not for a row the database rejects; through the ingest service and the API."""

import logging
import traceback
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError

from service.api.app import create_app
from service.store import repo

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
EMAIL = "li.wei@example.com"
PHONES = ("13812345678", "+86 139 8765 4321")
SENTINEL = "db-says-7f3a"  # in the (fake) database error message, which quotes the row


def _rec(ext, text, source="weibo", **kw):
    r = {
        "source": source,
        "channel": "social",
        "external_id": ext,
        "text": text,
        "created_at": T0.isoformat(),
    }
    r.update(kw)
    return r


def _items(tag):
    """A good row, an invalid row and a row the database rejects, each with contact details."""
    good = _rec(f"{tag}-ok", f"Box crushed, mail me at {EMAIL} or call {PHONES[0]} ({tag})")
    invalid = _rec(
        f"{tag}-invalid",
        f"面条太辣了，联系{PHONES[1]}，邮箱{EMAIL} ({tag})",
        created_at="not a date",
    )
    rejected = _rec(
        f"db-{tag}",
        f"cup leaked, {EMAIL} / {PHONES[0]}, 寄到北京市朝阳区建国路88号 ({tag})",
        source="shop",
    )  # kept as written (pii_mode keep): what the database sees
    return [good, invalid, rejected]


@pytest.fixture
def failing_db(monkeypatch):
    """The database rejects rows whose external id starts with db-, quoting the row's text."""
    real = repo.upsert_items

    def upsert(session, *, items, **kw):
        bad = [p for p in items if p.item.external_id.startswith("db-")]
        if bad:
            text = bad[0].item.text
            raise IntegrityError(
                "INSERT INTO feedback (text) VALUES (%(text)s)",
                {"text": text},
                Exception(f"{SENTINEL}: value {text!r} violates a check"),
            )
        return real(session, items=items, **kw)

    monkeypatch.setattr(repo, "upsert_items", upsert)


def _everything_logged(caplog) -> str:
    parts = [caplog.text]
    for r in caplog.records:
        parts += [r.getMessage(), repr(r.args), r.exc_text or ""]
        if r.exc_info:
            parts.append("".join(traceback.format_exception(*r.exc_info)))
    return "\n".join(parts)


def _assert_nothing_raw_logged(caplog, rows):
    logged = _everything_logged(caplog)
    assert EMAIL not in logged
    for phone in PHONES:
        assert phone not in logged
    for row in rows:
        assert row["text"] not in logged
    assert SENTINEL not in logged


def test_ingest_service_never_logs_feedback_text(
    sqlite_url, make_runtime, fake_scorer, failing_db, caplog
):
    rt = make_runtime(sqlite_url, fake_scorer, ingest={"pii_mode_by_source": {"shop": "keep"}})
    rows = _items("svc")
    caplog.set_level(logging.DEBUG)
    report = rt.ingest_service().ingest(list(enumerate(rows)))

    assert [r.status.value for r in report.results] == ["created", "rejected", "rejected"]
    assert SENTINEL in report.results[2].errors[0]["reason"]  # the caller is still told why
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(m.startswith("row 2 rejected by the database") for m in warnings)
    _assert_nothing_raw_logged(caplog, rows)
    with rt.sessions() as s:
        stored = repo.get_feedback(s, feedback_id=report.results[0].id).text
    assert EMAIL not in stored and PHONES[0] not in stored and "[EMAIL]" in stored


def test_api_ingest_never_logs_feedback_text(
    sqlite_url, make_runtime, fake_scorer, failing_db, caplog
):
    rt = make_runtime(sqlite_url, fake_scorer, ingest={"pii_mode_by_source": {"shop": "keep"}})
    rows = _items("api")
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(runtime=rt)) as client:
        resp = client.post("/v1/feedback", json={"items": rows})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert (body["created"], body["rejected"]) == (1, 2)
        stored = client.get(f"/v1/feedback/{body['items'][0]['id']}").json()["text"]
        # a request the API cannot read at all: the body is not echoed into the log either
        client.post("/v1/feedback", json={"items": rows, "extra": f"{EMAIL} {PHONES[0]}"})

    assert EMAIL not in stored and "[EMAIL]" in stored and "[PHONE]" in stored
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(m.startswith("row 2 rejected by the database") for m in warnings)
    _assert_nothing_raw_logged(caplog, rows)
