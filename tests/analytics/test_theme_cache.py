"""Themes on the request path come from stored answers: served while recent, recomputed when
asked or stale, kept warm by the job for every key's scope, quoting only what the caller may
read now (an erased or out-of-scope item is never quoted)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from service.api.app import create_app
from service.cli.main import app as cli
from service.store import access
from service.store.tables import FeedbackRow, ThemeCacheRow
from tests.analytics.conftest import START


def _h(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def _quotes(result: dict) -> list[dict]:
    out = []
    for t in result["themes"]:
        out += t["quotes"] + [q for c in t.get("children", []) for q in c["quotes"]]
    return out


def test_a_stored_answer_serves_until_refreshed_and_quotes_through_the_scope(
    segment_store, make_runtime
):
    rt, items = segment_store
    rt = make_runtime(rt.settings.database_url, scorer=rt.base_scorer, api={"auth": True})
    with rt.sessions() as s:
        admin = access.create_key(s, role="admin", actor="t")[1]
        east = access.create_key(s, role="viewer", actor="t", regions=["East"])[1]
    with TestClient(create_app(runtime=rt)) as c:
        first = c.get("/v1/themes", headers=_h(admin)).json()
        assert first["cached_at"] is None and first["themes"] and _quotes(first)
        again = c.get("/v1/themes", headers=_h(admin)).json()
        assert again["cached_at"] is not None
        assert [t["id"] for t in again["themes"]] == [t["id"] for t in first["themes"]]
        assert _quotes(again) == _quotes(first)  # texts read back through the caller's filter
        with rt.sessions() as s:
            assert s.scalar(select(func.count()).select_from(ThemeCacheRow)) == 1
        # a new item moves "the last 28 days" a little: the stored answer still serves (slack)...
        late = {
            **items[0],
            "external_id": "late-1",
            "created_at": (START + timedelta(days=25, hours=12)).isoformat(),
        }
        assert (
            c.post("/v1/feedback", json={"items": [late]}, headers=_h(admin)).json()["created"] == 1
        )
        moved = c.get("/v1/themes", headers=_h(admin)).json()
        assert moved["cached_at"] == again["cached_at"] and moved["items"] == first["items"]
        # ...until asked to compute now
        fresh = c.get("/v1/themes", params={"refresh": True}, headers=_h(admin)).json()
        assert fresh["cached_at"] is None and fresh["items"] == first["items"] + 1
        # another scope has its own answer, quoting only its own items
        mine = c.get("/v1/themes", headers=_h(east)).json()
        assert mine["cached_at"] is None and mine["items"] < first["items"]
        with rt.sessions() as s:
            regions = dict(s.execute(select(FeedbackRow.id, FeedbackRow.region)).all())
        assert _quotes(mine) and {regions[q["id"]] for q in _quotes(mine)} == {"East"}


def test_the_job_stores_every_keys_scope_and_requests_are_served_from_it(
    segment_store, make_runtime, monkeypatch
):
    rt, _ = segment_store
    rt = make_runtime(rt.settings.database_url, scorer=rt.base_scorer, api={"auth": True})
    with rt.sessions() as s:
        admin = access.create_key(s, role="admin", actor="t")[1]
        east = access.create_key(s, role="viewer", actor="t", regions=["East"])[1]
        access.create_key(s, role="viewer", actor="t", regions=["West"])
    monkeypatch.setenv("RADAR_DATABASE_URL", rt.settings.database_url)
    res = CliRunner().invoke(cli, ["analyze", "themes", "--refresh-cache", "--format", "json"])
    assert res.exit_code == 0, res.output
    import json

    done = json.loads(res.output)
    assert len(done) == 3 and all(
        d["days"] == 28 and d["items"] > 0 for d in done
    )  # everyone, East, West
    with TestClient(create_app(runtime=rt)) as c:
        for key in (admin, east):
            r = c.get("/v1/themes", headers=_h(key)).json()
            assert r["cached_at"] is not None and r["themes"]


def test_an_erasure_drops_stored_answers_and_erased_items_are_never_quoted(
    segment_store, make_runtime
):
    rt, items = segment_store
    with TestClient(create_app(runtime=rt)) as c:
        first = c.get("/v1/themes").json()
        quoted = _quotes(first)[0]["id"]
        with rt.sessions() as s:  # give the quoted item an author and erase them
            row = s.get(FeedbackRow, quoted)
            row.author_hash = rt.author_hasher("cust-q")
            s.commit()
        assert c.post("/v1/erasure", json={"author": "cust-q"}).json()["erased"]["items"] == 1
        with rt.sessions() as s:
            assert s.scalar(select(func.count()).select_from(ThemeCacheRow)) == 0
        after = c.get("/v1/themes").json()
        assert after["cached_at"] is None and quoted not in {q["id"] for q in _quotes(after)}
