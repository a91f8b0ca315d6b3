"""The HTTP API on both databases, with the real model for scoring."""

import json

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.deps import Caller, get_caller


@pytest.fixture
def client(db_url, real_runtime_factory):
    rt = real_runtime_factory(db_url)
    with TestClient(create_app(runtime=rt)) as c:
        yield c


def _item(i, **kw):
    d = {
        "source": "app",
        "channel": "review",
        "external_id": f"e{i}",
        "text": f"Great noodles, order {i} arrived fast",
        "created_at": f"2026-05-{4 + i % 20:02d}T10:00:00+08:00",
        "region": "East" if i % 2 else "West",
        "attributes": {"age_group": "18-24"},
    }
    d.update(kw)
    return d


def test_health_and_docs(client):
    h = client.get("/v1/health").json()
    assert h["status"] == "ok" and h["database"] == "ok" and h["items"] == 0
    assert h["model_version"].startswith("default:")
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v1/score", "/v1/feedback", "/v1/feedback/{feedback_id}", "/v1/health"} <= set(
        spec["paths"]
    )


def test_score_is_stateless_and_returns_the_cli_fields(client):
    r = client.post(
        "/v1/score",
        json={
            "items": [
                {"id": "a", "text": "Great taste but the box arrived crushed."},
                {"text": "味道太辣了"},
            ]
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    a, b = body["results"]
    assert a["id"] == "a" and b["id"] is None
    assert set(a) >= {
        "sentiment",
        "sentiment_score",
        "p_negative",
        "p_neutral",
        "p_positive",
        "aspects",
        "language",
        "model_version",
    }
    assert {x["aspect"] for x in a["aspects"]} >= {"taste", "packaging"} and b["language"] == "zh"
    assert client.get("/v1/health").json()["items"] == 0


def test_ingest_reports_each_item_and_keeps_good_ones(client):
    items = [
        _item(1),
        _item(2, text=""),
        _item(3, created_at="yesterday"),
        _item(4, channel="fax"),
        _item(5, unknown_field=1),
        _item(6),
    ]
    r = client.post("/v1/feedback", json={"items": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["created"], body["rejected"]) == (2, 4)
    st = {it["index"]: it for it in body["items"]}
    assert st[0]["status"] == "created" and st[0]["id"]
    assert st[1]["errors"][0]["field"] == "text"
    assert (
        st[2]["errors"][0]["field"] == "created_at"
        and "cannot parse" in st[2]["errors"][0]["reason"]
    )
    assert st[3]["errors"][0]["field"] == "channel"
    assert st[4]["errors"][0]["field"] == "unknown_field"
    again = client.post("/v1/feedback", json={"items": [_item(1), _item(6)]}).json()
    assert again["unchanged"] == 2 and again["created"] == 0
    assert client.get("/v1/health").json()["items"] == 2


def test_list_filter_paginate_and_get(client):
    client.post(
        "/v1/feedback",
        json={
            "items": [_item(i) for i in range(12)]
            + [_item(99, text="The box arrived crushed and the soup leaked everywhere.")]
        },
    )
    got, cursor = [], None
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/feedback", params=params).json()
        got += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(got) == 13 and len({g["id"] for g in got}) == 13
    east = client.get("/v1/feedback", params={"region": "East", "attr": "age_group:18-24"}).json()[
        "items"
    ]
    assert east and all(i["region"] == "East" for i in east)
    neg = client.get("/v1/feedback", params={"sentiment": "negative"}).json()["items"]
    assert [i["external_id"] for i in neg] == ["e99"]
    pack = client.get("/v1/feedback", params={"aspect": "packaging"}).json()["items"]
    assert "e99" in [i["external_id"] for i in pack]
    one = client.get(f"/v1/feedback/{neg[0]['id']}").json()
    assert (
        one["score"]["sentiment"] == "negative"
        and one["created_at"].endswith("Z")
        or "+00:00" in one["created_at"]
    )
    assert client.get("/v1/feedback/999999").status_code == 404
    window = client.get(
        "/v1/feedback", params={"since": "2026-05-06T00:00:00Z", "until": "2026-05-08T00:00:00Z"}
    ).json()
    assert {i["external_id"] for i in window["items"]} == {"e2", "e3"}


def test_errors_are_json_with_field_paths(client):
    r = client.post("/v1/score", json={"items": [{"txt": "x"}]})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "validation_error"
    assert {d["field"] for d in err["details"]} == {"body.items.0.text", "body.items.0.txt"}
    r = client.post("/v1/score", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = client.post("/v1/score", json={"items": [{"text": "   "}]})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "body.items.0.text"
    r = client.get("/v1/feedback", params={"cursor": "nonsense"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "query.cursor"
    r = client.get("/v1/feedback", params={"channel": "fax"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "query.channel.0"


def test_size_and_batch_limits(db_url, real_runtime_factory):
    rt = real_runtime_factory(db_url)
    rt.settings.limits.max_batch_items = 3
    rt.settings.limits.max_body_bytes = 2000
    with TestClient(create_app(runtime=rt)) as c:
        r = c.post("/v1/score", json={"items": [{"text": "ok"}] * 4})
        assert r.status_code == 413 and "limit is 3" in r.json()["error"]["message"]
        r = c.post("/v1/feedback", json={"items": [_item(i) for i in range(4)]})
        assert r.status_code == 413
        r = c.post(
            "/v1/score",
            content=json.dumps({"items": [{"text": "x" * 3000}]}),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"

        def chunks():
            yield b'{"items": ['
            for _ in range(100):
                yield b'{"text": "' + b"y" * 50 + b'"},'
            yield b'{"text": "end"}]}'

        r = c.post("/v1/score", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413


def test_every_route_takes_its_caller_from_one_dependency(db_url, real_runtime_factory):
    """A data scope set in the caller dependency narrows what the routes return."""
    rt = real_runtime_factory(db_url)
    app = create_app(runtime=rt)
    with TestClient(app) as c:
        c.post("/v1/feedback", json={"items": [_item(i) for i in range(6)]})
        app.dependency_overrides[get_caller] = lambda: Caller(
            id="lead-east", role="viewer", regions=("East",)
        )
        items = c.get("/v1/feedback").json()["items"]
        assert items and {i["region"] for i in items} == {"East"}
        west = c.get("/v1/feedback", params={"region": "West"}).json()["items"]
        assert west == []
        west_id = next(i for i in range(1, 10) if c.get(f"/v1/feedback/{i}").status_code == 404)
        assert west_id
