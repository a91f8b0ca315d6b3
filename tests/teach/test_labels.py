"""Labels on both databases: corrections through the API (scoped like every read), file
imports with bad rows, labels kept through rescoring and re-ingest and erased with the
author, ratings as weak labels, and the rating-disagreement filter."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.api.app import create_app
from service.api.deps import Caller, get_caller
from service.cli.main import app as cli
from service.ingest.readers import read_records
from service.store import labels as store
from service.store import repo
from service.teach.labels import import_labels

START = datetime(2026, 9, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _items():
    texts = [
        "good noodles, great taste",
        "the box was crushed, bad",
        "late again, bad courier",
        "love it, good value",
        "it is fine",
        "great taste but late",
        "bad bad bad",
        "good",
    ]
    regions = ["East", "West"]
    return [
        {
            "source": "shop",
            "external_id": f"e{i}",
            "channel": "review",
            "text": t,
            "region": regions[i % 2],
            "author": f"author-{i % 3}",
            "rating": [5, 1, 2, 4, 3, 1, 5, 1][i],
            "rating_scale": 5,
            "created_at": (START + timedelta(hours=i)).isoformat(),
        }
        for i, t in enumerate(texts)
    ]


@pytest.fixture
def rt(db_url, make_runtime, fake_scorer):
    rt = make_runtime(db_url, fake_scorer)
    rep = rt.ingest_service().ingest(list(enumerate(_items())), keep_results=False)
    assert rep.counts["rejected"] == 0
    return rt


def _ids(rt) -> dict[str, int]:
    with rt.sessions() as s:
        return {
            k[1]: v.id
            for k, v in repo.existing_by_key(s, keys=[("shop", f"e{i}") for i in range(8)]).items()
        }


def _client(rt, caller: Caller | None = None) -> TestClient:
    app = create_app(rt.settings, runtime=rt)
    if caller is not None:
        app.dependency_overrides[get_caller] = lambda: caller
    return TestClient(app)


def _sentiment(value: str) -> dict:
    return {"target": "sentiment", "value": value}


def _post_labels(c: TestClient, fid, *labels: dict, **body):
    """``POST /v1/feedback/{fid}/labels`` of ``labels`` (``body``: the request's other fields)."""
    return c.post(f"/v1/feedback/{fid}/labels", json={"labels": list(labels), **body})


def test_corrections_through_the_api_replace_imply_and_are_listed(rt):
    ids = _ids(rt)
    c = _client(rt)
    fid = ids["e1"]
    r = _post_labels(
        c,
        fid,
        _sentiment("negative"),
        {"target": "aspect_sentiment", "aspect": "packaging", "value": "negative"},
    )
    assert r.status_code == 200, r.text
    got = {(lb["target"], lb["aspect"]): lb for lb in r.json()["labels"]}
    # an aspect's sentiment implies the aspect is present
    assert got[("aspect", "packaging")]["value"] == "present"
    assert (
        got[("sentiment", None)]["source"] == "correction"
        and got[("sentiment", None)]["labeled_by"] == "anonymous"
    )
    # a new label replaces the old one; marking the aspect absent drops its sentiment
    r = _post_labels(
        c,
        fid,
        _sentiment("neutral"),
        {"target": "aspect", "aspect": "packaging", "value": "absent"},
        source="queue",
    )
    got = {(lb["target"], lb["aspect"]): lb for lb in r.json()["labels"]}
    assert (
        got[("sentiment", None)]["value"] == "neutral"
        and got[("sentiment", None)]["source"] == "queue"
    )
    assert (
        got[("aspect", "packaging")]["value"] == "absent"
        and ("aspect_sentiment", "packaging") not in got
    )
    listed = c.get("/v1/labels", params={"target": "sentiment"}).json()["labels"]
    assert [lb["feedback_id"] for lb in listed] == [fid]
    # bad input: a clear 422 naming the field, nothing stored
    r = _post_labels(c, fid, {"target": "aspect", "aspect": "nope", "value": "present"})
    assert r.status_code == 422 and "nope" in r.text
    r = _post_labels(c, fid, _sentiment("awful"))
    assert r.status_code == 422
    assert _post_labels(c, 999999, _sentiment("negative")).status_code == 404
    r = c.delete(f"/v1/feedback/{fid}/labels", params={"target": "sentiment"})
    assert {lb["target"] for lb in r.json()["labels"]} == {"aspect"}


def test_label_reads_and_writes_are_scoped(rt):
    ids = _ids(rt)
    admin = _client(rt)
    for key in ("e0", "e1"):  # e0 East, e1 West
        assert _post_labels(admin, ids[key], _sentiment("positive")).status_code == 200
    east = _client(rt, Caller(id="key:east", role="analyst", regions=("East",)))
    assert _post_labels(east, ids["e1"], _sentiment("negative")).status_code == 404
    assert east.get(f"/v1/feedback/{ids['e1']}/labels").status_code == 404
    listed = east.get("/v1/labels").json()["labels"]
    assert {lb["feedback_id"] for lb in listed} == {ids["e0"]}
    viewer = _client(rt, Caller(id="key:v", role="viewer"))
    assert viewer.get("/v1/labels").status_code == 403
    assert _post_labels(viewer, ids["e0"], _sentiment("negative")).status_code == 403


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_import_with_bad_rows_keeps_the_good_ones_and_is_idempotent(rt, tmp_path):
    ids = _ids(rt)
    f = tmp_path / "labels.jsonl"
    _write(
        f,
        [
            {
                "source": "shop",
                "external_id": "e0",
                "sentiment": "pos",
                "aspects": ["taste:positive"],
            },
            {"id": ids["e1"], "sentiment": "negative", "aspects": "packaging:negative; delivery"},
            {"source": "shop", "external_id": "missing", "sentiment": "negative"},
            {"source": "shop", "external_id": "e2", "sentiment": "awful"},
            {"source": "shop", "external_id": "e3", "aspects": ["flavour_of_the_month"]},
            {"id": "x7", "sentiment": "negative"},
            {"source": "shop", "external_id": "e4"},
        ],
    )
    tax = rt.settings.taxonomy
    rep = import_labels(rt.sessions, read_records(f), taxonomy=tax, actor="test", now=NOW)
    assert rep.stored_rows == 2 and rep.rows == 7
    errs = {e.row: e for e in rep.errors}
    assert set(errs) == {3, 4, 5, 6, 7}
    assert errs[3].fields == ["external_id"] and "missing" in errs[3].reason
    assert errs[4].fields == ["sentiment"] and "awful" in errs[4].reason
    assert errs[5].fields == ["aspects"] and "flavour_of_the_month" in errs[5].reason
    assert errs[6].fields == ["id"]
    assert "labels nothing" in errs[7].reason
    with rt.sessions() as s:
        first = store.label_counts(s)
        items = {it.id: it for it in store.labeled_items(s)}
    one = items[ids["e1"]]
    assert one.sentiment == "negative" and one.aspect_sentiments == {"packaging": "negative"}
    assert (
        one.aspects["delivery"] == "present" and one.aspects["taste"] == "absent"
    )  # the list is complete
    assert len(one.aspects) == len(tax.ids)
    again = import_labels(rt.sessions, read_records(f), taxonomy=tax, actor="test", now=NOW)
    assert again.stored_rows == 2
    with rt.sessions() as s:
        assert store.label_counts(s) == first  # nothing duplicated
    # the CLI: same import, the errors file, and an export that re-imports to the same labels
    runner = CliRunner()
    env = {"RADAR_DATABASE_URL": rt.settings.database_url}
    res = runner.invoke(
        cli, ["labels", "import", str(f), "--errors", str(tmp_path / "err.jsonl")], env=env
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["rejected"] == 5
    assert len((tmp_path / "err.jsonl").read_text().splitlines()) == 5
    res = runner.invoke(cli, ["labels", "export", "-o", str(tmp_path / "exp.jsonl")], env=env)
    assert res.exit_code == 0, res.output
    rep = import_labels(
        rt.sessions, read_records(tmp_path / "exp.jsonl"), taxonomy=tax, actor="test", now=NOW
    )
    assert rep.stored_rows == 2 and not rep.errors
    with rt.sessions() as s:
        assert store.label_counts(s) == first


def test_partial_import_labels_only_what_is_listed(rt, tmp_path):
    f = tmp_path / "p.csv"
    f.write_text("source,external_id,aspects\nshop,e5,taste\n", encoding="utf-8")
    rep = import_labels(
        rt.sessions,
        read_records(f),
        taxonomy=rt.settings.taxonomy,
        actor="t",
        now=NOW,
        partial=True,
    )
    assert rep.stored_rows == 1
    with rt.sessions() as s:
        (item,) = store.labeled_items(s)
    assert item.aspects == {"taste": "present"} and item.sentiment is None


def test_labels_survive_rescoring_and_reingest_and_go_with_the_author(rt):
    ids = _ids(rt)
    with rt.sessions() as s:
        for key in ("e0", "e3"):  # author-0, author-0
            store.put_labels(
                s,
                feedback_id=ids[key],
                labels=[store.Label(target="sentiment", value="positive")],
                source="correction",
                actor="t",
                now=NOW,
            )
        store.put_labels(
            s,
            feedback_id=ids["e1"],
            labels=[store.Label(target="sentiment", value="negative")],
            source="correction",
            actor="t",
            now=NOW,
        )
        s.commit()
    # re-ingest with a changed text (rescored) and a forced rescore of everything
    items = _items()
    items[0]["text"] = "good noodles, great taste, edited"
    rt.ingest_service().ingest(list(enumerate(items)), keep_results=False)
    from service.jobs.ingest import rescore

    rt.base_scorer.version = "fake-2"
    assert rescore(sessions=rt.sessions, scorer=rt.scorer, chunk_size=4) == 8
    with rt.sessions() as s:
        assert {it.id for it in store.labeled_items(s)} == {ids["e0"], ids["e1"], ids["e3"]}
        from service.store.erasure import erase_author

        erase_author(s, author_hash=rt.author_hasher("author-0"))
        s.commit()
        assert {it.id for it in store.labeled_items(s)} == {ids["e1"]}


def test_ratings_are_weak_labels_and_disagreements_are_listed(rt):
    ids = _ids(rt)
    t = rt.settings.teach
    with rt.sessions() as s:
        rated = store.rated_items(
            s,
            negative_max=t.rating_negative_max,
            positive_min=t.rating_positive_min,
            scale=t.rating_scale,
            exclude={ids["e0"]},
            limit=100,
        )
    by_id = {i: lab for i, _, _, lab in rated}
    assert by_id[ids["e1"]] == "negative" and by_id[ids["e3"]] == "positive"
    assert ids["e4"] not in by_id  # a 3 of 5 teaches nothing
    assert ids["e0"] not in by_id  # labeled by a person: the human label wins
    c = _client(rt)
    listed = {
        it["external_id"]
        for it in c.get("/v1/feedback", params={"disagrees": "true"}).json()["items"]
    }
    # rated 1 yet scored positive ("good"), rated 5 yet scored negative ("bad bad bad")
    assert listed == {"e6", "e7"}
