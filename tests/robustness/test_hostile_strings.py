"""Strings that no store keeps, in every JSON body field that is stored or echoed back: a lone
surrogate (not UTF-8: it cannot be encoded, in SQL or in the answer) and NUL (PostgreSQL's
text refuses it). Schemathesis never sends them (its strings are valid Unicode); careless
clients do. Each must be answered 4xx, never 5xx, on both databases, and leave every read
working. (Feedback items get the same treatment, field by field, in test_properties.py.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from service.runtime import Runtime
from service.store import access
from tests.analytics.conftest import AspectKeywordScorer
from tests.conftest import _reset_pg
from tests.delivery.test_outbox import make_alert
from tests.robustness._store import SECURED, seed_items

VALUES = {"surrogate": "x\ud800y", "nul": "x\x00y"}
CASES = {  # name: (method, path, body with the value in one field)
    "score text": ("POST", "/v1/score", lambda v: {"items": [{"text": v}]}),
    "score id": ("POST", "/v1/score", lambda v: {"items": [{"id": v, "text": "ok"}]}),
    "key name": ("POST", "/v1/keys", lambda v: {"role": "viewer", "name": v}),
    "key regions": ("POST", "/v1/keys", lambda v: {"role": "viewer", "regions": [v]}),
    "key brands": ("POST", "/v1/keys", lambda v: {"role": "viewer", "brands": [v]}),
    "key scope": ("PATCH", "/v1/keys/{key}", lambda v: {"regions": ["East", v]}),
    "tracked phrase": ("POST", "/v1/tracked-phrases", lambda v: {"phrase": f"too {v}"}),
    "erasure author": ("POST", "/v1/erasure", lambda v: {"author": v}),
    "alert note": ("PATCH", "/v1/alerts/{alert}", lambda v: {"status": "acknowledged", "note": v}),
    "subscription name": (
        "POST",
        "/v1/subscriptions",
        lambda v: {"target": "a@example.test", "name": v},
    ),
    "subscription target": (
        "POST",
        "/v1/subscriptions",
        lambda v: {"target": f"a{v}@example.test"},
    ),
    "subscription regions": (
        "POST",
        "/v1/subscriptions",
        lambda v: {"target": "a@example.test", "regions": [v]},
    ),
    "subscription brands": (
        "POST",
        "/v1/subscriptions",
        lambda v: {"target": "a@example.test", "brands": [v]},
    ),
    "subscription scope": ("PATCH", "/v1/subscriptions/{sub}", lambda v: {"regions": [v]}),
    "feedback item key": (
        "POST",
        "/v1/feedback",
        lambda v: {
            "items": [
                {
                    "source": "shop",
                    "external_id": v,
                    "text": "ok",
                    "created_at": "2026-03-02",
                    f"a{v}": 1,
                }
            ]
        },
    ),
}
READS = [
    "/v1/keys",
    "/v1/subscriptions",
    "/v1/tracked-phrases",
    "/v1/alerts",
    "/v1/audit",
    "/v1/feedback",
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request, tmp_path_factory):
    """One store per database for the module (each case is one request; none needs a fresh one)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'radar.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        _reset_pg(url)
    rt = Runtime(Settings(database_url=url, api=SECURED), scorer=AspectKeywordScorer())
    request.addfinalizer(rt.close)
    rt.ingest_service().ingest(list(enumerate(seed_items(20))))
    with rt.sessions() as s:
        alert = make_alert(s, at=datetime(2026, 3, 20, tzinfo=UTC)).id
        admin = access.create_key(s, role="admin", actor="test")[1]
        spare = access.create_key(s, role="viewer", actor="test")[0].id
    with TestClient(create_app(runtime=rt)) as client:
        h = {"Authorization": f"Bearer {admin}", "Content-Type": "application/json"}
        sub = client.post(
            "/v1/subscriptions", json={"target": "lead@example.test"}, headers=h
        ).json()["id"]
        yield client, h, {"key": spare, "alert": alert, "sub": sub}


@pytest.mark.parametrize("value", sorted(VALUES))
@pytest.mark.parametrize("case", sorted(CASES))
def test_unstorable_strings_get_a_4xx(api, case, value):
    client, h, ids = api
    method, path, body = CASES[case]
    r = client.request(
        method, path.format(**ids), content=json.dumps(body(VALUES[value])), headers=h
    )
    assert r.status_code < 500, r.text[:300]
    r.json()  # an answer that encodes
    for read in READS:
        assert client.get(read, headers=h).status_code == 200, read
