"""Access control with API keys on (both databases): every endpoint's roles, every read
endpoint's data scope for a regional key, key lifecycle, rate limits, the audit log and the
right to erasure. The route table below must name every /v1 route: a new endpoint without
a declared policy fails `test_every_route_has_a_policy`."""

from __future__ import annotations

import json
import random
import shutil
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import DEFAULT_CONFIG_DIR
from service.store import access
from service.store.tables import AuditRow
from tests.analytics.conftest import AspectKeywordScorer
from tests.delivery.test_outbox import make_alert

START = datetime(2026, 3, 2, tzinfo=UTC)
ALL = ("admin", "analyst", "viewer", "ingest")
READ = ("admin", "analyst", "viewer")
WRITE = ("admin", "analyst", "ingest")
ANALYST = ("admin", "analyst")
ADMIN = ("admin",)
PUBLIC = None  # no key needed

# (method, path) -> roles allowed; path parameters filled by `_path`
_TAXONOMY = yaml.safe_load((DEFAULT_CONFIG_DIR / "taxonomy.yaml").read_text(encoding="utf-8"))
POLICY = {
    ("GET", "/v1/health"): ALL,
    ("GET", "/v1/me"): ALL,
    # before any label is written below: with none, a training request is answered 409 at once
    ("POST", "/v1/models/train"): ANALYST,
    ("POST", "/v1/score"): ANALYST,
    ("POST", "/v1/feedback"): WRITE,
    ("GET", "/v1/feedback"): READ,
    ("GET", "/v1/feedback/{feedback_id}"): READ,
    ("GET", "/v1/segments"): READ,
    ("GET", "/v1/segments/differences"): READ,
    ("GET", "/v1/themes"): READ,
    ("GET", "/v1/themes/{theme_id}"): READ,
    ("GET", "/v1/trends"): READ,
    ("GET", "/v1/forecast"): READ,
    ("POST", "/v1/tracked-phrases"): ANALYST,
    ("GET", "/v1/tracked-phrases"): READ,
    ("GET", "/v1/alerts"): READ,
    ("GET", "/v1/alerts/metrics"): READ,
    ("GET", "/v1/alerts/{alert_id}"): READ,
    ("PATCH", "/v1/alerts/{alert_id}"): ANALYST,
    ("GET", "/v1/benchmark"): READ,
    ("GET", "/v1/benchmark/priorities"): READ,
    ("GET", "/v1/benchmark/series"): READ,
    ("POST", "/v1/subscriptions"): ADMIN,
    ("GET", "/v1/subscriptions"): ADMIN,
    ("GET", "/v1/subscriptions/{subscription_id}"): ADMIN,
    ("PATCH", "/v1/subscriptions/{subscription_id}"): ADMIN,
    ("DELETE", "/v1/subscriptions/{subscription_id}"): ADMIN,
    ("GET", "/v1/subscriptions/{subscription_id}/preview"): ADMIN,
    ("GET", "/v1/unsubscribe"): PUBLIC,
    ("POST", "/v1/unsubscribe"): PUBLIC,
    ("GET", "/v1/outbox"): ADMIN,
    ("POST", "/v1/outbox/{message_id}/retry"): ADMIN,
    ("POST", "/v1/keys"): ADMIN,
    ("GET", "/v1/keys"): ADMIN,
    ("PATCH", "/v1/keys/{key_id}"): ADMIN,
    ("DELETE", "/v1/keys/{key_id}"): ADMIN,
    ("GET", "/v1/audit"): ADMIN,
    ("GET", "/v1/health/live"): PUBLIC,
    ("GET", "/v1/health/ready"): PUBLIC,
    ("POST", "/v1/erasure"): ADMIN,
    ("GET", "/v1/taxonomy"): READ,
    ("POST", "/v1/taxonomy/preview"): ANALYST,
    ("PUT", "/v1/taxonomy"): ADMIN,
    ("POST", "/v1/feedback/{feedback_id}/labels"): ANALYST,
    ("GET", "/v1/feedback/{feedback_id}/labels"): ANALYST,
    ("DELETE", "/v1/feedback/{feedback_id}/labels"): ANALYST,
    ("GET", "/v1/labels"): ANALYST,
    ("GET", "/v1/labeling/queue"): ANALYST,
    ("GET", "/v1/models"): READ,
    ("GET", "/v1/models/jobs/{job_id}"): ANALYST,
    ("GET", "/v1/models/{name}"): READ,
    ("POST", "/v1/models/{name}/promote"): ADMIN,
    ("POST", "/v1/models/rollback"): ADMIN,
    ("POST", "/v1/actions"): ANALYST,
    ("GET", "/v1/actions"): READ,
    ("GET", "/v1/actions/{action_id}"): READ,
    ("PATCH", "/v1/actions/{action_id}"): ANALYST,
    ("POST", "/v1/actions/{action_id}/close"): ANALYST,
    ("POST", "/v1/actions/plan"): ANALYST,
    ("POST", "/v1/feedback/{feedback_id}/response"): WRITE,
    ("GET", "/v1/feedback/{feedback_id}/response"): READ,
    ("GET", "/v1/responses/metrics"): READ,
}

BODIES = {
    ("POST", "/v1/score"): {"items": [{"text": "lovely flavour"}]},
    ("POST", "/v1/feedback"): {
        "items": [
            {
                "source": "t",
                "external_id": "new-1",
                "channel": "review",
                "text": "too spicy flavour",
                "region": "East",
                "brand": "spicewell",
                "created_at": START.isoformat(),
            }
        ]
    },
    ("POST", "/v1/tracked-phrases"): {"phrase": "too spicy", "paraphrases": False},
    ("PATCH", "/v1/alerts/{alert_id}"): {"status": "acknowledged"},
    ("POST", "/v1/subscriptions"): {"target": "x@example.test"},
    ("PATCH", "/v1/subscriptions/{subscription_id}"): {"send_hour": 9},
    ("POST", "/v1/keys"): {"role": "viewer"},
    ("PATCH", "/v1/keys/{key_id}"): {"regions": ["East"]},
    ("POST", "/v1/erasure"): {"author": "nobody"},
    ("POST", "/v1/taxonomy/preview"): {"taxonomy": _TAXONOMY, "sample": 20, "examples": 1},
    ("PUT", "/v1/taxonomy"): {"taxonomy": _TAXONOMY},
    ("POST", "/v1/feedback/{feedback_id}/labels"): {
        "labels": [{"target": "sentiment", "value": "negative"}]
    },
    ("POST", "/v1/models/train"): {},
    ("POST", "/v1/models/{name}/promote"): {},
    ("POST", "/v1/actions"): {
        "title": "recipe rolled back",
        "segment": {"region": "East"},
        "aspect": "taste",
        "started_at": START.isoformat(),
    },
    ("PATCH", "/v1/actions/{action_id}"): {"owner": "ops"},
    ("POST", "/v1/actions/{action_id}/close"): {"status": "cancelled"},
    ("POST", "/v1/actions/plan"): {
        "segment": {"region": "East"},
        "aspect": "taste",
        "min_effect": 0.1,
    },
    ("POST", "/v1/feedback/{feedback_id}/response"): {"responder": "desk"},
}
PARAMS = {
    ("GET", "/v1/segments"): {"dimension": "region"},
    ("GET", "/v1/segments/differences"): {"dimension": "region", "min_n": 5},
    ("GET", "/v1/benchmark/series"): {"competitor": "noodleking", "compare_aspect": "taste"},
    ("GET", "/v1/unsubscribe"): {"token": "1.nope"},
    ("POST", "/v1/unsubscribe"): {"token": "1.nope"},
}


def _items() -> list[dict]:
    rng = random.Random(4)
    rows = []
    for i in range(240):
        region = ("East", "West")[i % 2]
        brand = ("spicewell", "noodleking")[(i // 2) % 2]
        text = rng.choice(
            ["too spicy flavour", "lovely flavour, great", "the box arrived crushed", "great box"]
        )
        rows.append(
            {
                "source": "shop",
                "channel": "review",
                "external_id": f"a{i}",
                "language": "en",
                "brand": brand,
                "region": region,
                "text": f"{text} {i}",
                "author": f"cust-{i % 7}",
                "attributes": {"age_group": ("18-24", "25-34")[i % 3 == 0]},
                "created_at": (START + timedelta(hours=3 * i)).isoformat(),
            }
        )
    return rows


@pytest.fixture
def secured(db_url, make_runtime, tmp_path):
    """A store with items and alerts in East and West, and one key per role plus an East viewer
    (configs copied: an admin's PUT /v1/taxonomy writes the copy)."""
    shutil.copytree(DEFAULT_CONFIG_DIR, tmp_path / "configs")
    rt = make_runtime(
        db_url,
        scorer=AspectKeywordScorer(),
        api={"auth": True, "rate_limit_per_minute": 10_000},
        config_dir=tmp_path / "configs",
    )
    assert rt.ingest_service().ingest(list(enumerate(_items()))).counts["rejected"] == 0
    with rt.sessions() as s:
        east = make_alert(s, at=START + timedelta(days=20), region="East")
        west = make_alert(s, at=START + timedelta(days=21), region="West")
        keys = {role: access.create_key(s, role=role, actor="test")[1] for role in ALL}
        keys["east"] = access.create_key(s, role="viewer", actor="test", regions=["East"])[1]
    with TestClient(create_app(runtime=rt)) as client:
        yield rt, client, keys, {"east": east.id, "west": west.id}


def _h(key: str | None) -> dict:
    return {"Authorization": f"Bearer {key}"} if key else {}


def test_every_route_has_a_policy(secured):
    _, client, _, _ = secured
    routes = {
        (m.upper(), path)
        for path, ops in client.app.openapi()["paths"].items()
        if path.startswith("/v1")
        for m in ops
    }
    assert routes == set(POLICY), (routes - set(POLICY), set(POLICY) - routes)


def test_no_key_a_wrong_key_and_a_revoked_key_are_refused(secured):
    rt, client, keys, _ = secured
    r = client.get("/v1/feedback")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/v1/feedback", headers=_h(keys["viewer"][:-2] + "xx")).status_code == 401
    assert client.get("/v1/feedback", headers={"X-API-Key": keys["viewer"]}).status_code == 200
    with rt.sessions() as s:
        row = access.lookup(s, keys["viewer"])
        stored = access.key_dict(row)
        assert (
            keys["viewer"].split("_", 2)[2] not in json.dumps(stored)
            and row.secret_hash != keys["viewer"]
        )
        access.revoke_key(s, row, actor="test")
    assert client.get("/v1/feedback", headers=_h(keys["viewer"])).status_code == 401


def _path(path: str, ids: dict) -> str:
    return (
        path.replace("{feedback_id}", str(ids["feedback"]))
        .replace("{alert_id}", str(ids["alert"]))
        .replace("{theme_id}", "1")
        .replace("{subscription_id}", str(ids["subscription"]))
        .replace("{message_id}", "999999")
        .replace("{key_id}", str(ids["key"]))
        .replace("{name}", "generic")
        .replace("{job_id}", "nope")
        .replace("{action_id}", "999999")
    )


def test_each_endpoint_lets_exactly_its_roles_through(secured):
    rt, client, keys, alerts = secured
    admin = _h(keys["admin"])
    sub = client.post(
        "/v1/subscriptions", json={"target": "lead@example.test"}, headers=admin
    ).json()
    key = client.post("/v1/keys", json={"role": "viewer", "name": "spare"}, headers=admin).json()
    feedback = client.get("/v1/feedback", headers=admin).json()["items"][0]["id"]
    ids = {
        "feedback": feedback,
        "alert": alerts["east"],
        "subscription": sub["id"],
        "key": key["id"],
    }
    for (method, path), allowed in sorted(POLICY.items(), key=lambda kv: kv[0][0] == "DELETE"):
        for role in ALL:
            r = client.request(
                method,
                _path(path, ids),
                headers=_h(keys[role]),
                json=BODIES.get((method, path)),
                params=PARAMS.get((method, path)),
            )
            if allowed is PUBLIC:
                assert r.status_code not in (401, 403), (method, path, role, r.text)
            elif role in allowed:
                assert r.status_code not in (401, 403), (
                    method,
                    path,
                    role,
                    r.status_code,
                    r.text[:300],
                )
                assert r.status_code < 500, (method, path, role, r.text[:300])
            else:
                assert r.status_code == 403, (method, path, role, r.status_code)
                assert r.json()["error"]["code"] == "forbidden"


def test_a_regional_key_sees_only_its_region_everywhere(secured):
    rt, client, keys, alerts = secured
    east, admin = _h(keys["east"]), _h(keys["admin"])
    me = client.get("/v1/me", headers=east).json()
    assert (me["role"], me["regions"], me["brands"], me["id"][:4]) == (
        "viewer",
        ["East"],
        None,
        "key:",
    )
    assert client.get("/v1/me", headers=admin).json()["regions"] is None
    items = client.get("/v1/feedback", params={"limit": 500}, headers=east).json()["items"]
    assert items and {i["region"] for i in items} == {"East"}
    west_item = next(
        i
        for i in client.get("/v1/feedback", params={"limit": 500}, headers=admin).json()["items"]
        if i["region"] == "West"
    )
    assert client.get(f"/v1/feedback/{west_item['id']}", headers=east).status_code == 404
    assert client.get("/v1/feedback", params={"region": "West"}, headers=east).json()["items"] == []
    segs = client.get("/v1/segments", params={"dimension": "region"}, headers=east).json()
    assert [s["segment"]["region"] for s in segs["segments"]] == ["East"] and segs["total"][
        "volume"
    ] == 120
    diffs = client.get(
        "/v1/segments/differences", params={"dimension": "age_group", "min_n": 5}, headers=east
    ).json()
    assert all(f["segment_n"] + f["rest_n"] <= 120 for f in diffs["findings"])
    window = {"since": START.isoformat(), "until": (START + timedelta(days=40)).isoformat()}
    trend = client.get("/v1/trends", params={**window, "bucket": "week"}, headers=east).json()
    assert sum(p["items"] for p in trend["points"]) == 120
    fc = client.get("/v1/forecast", params={**window, "horizon": 2}, headers=east).json()
    assert sum(h["value"] for h in fc["history"]) == 120
    themes = client.get("/v1/themes", params=window, headers=east).json()
    assert themes["items"] == 120
    listed = client.get("/v1/alerts", headers=east).json()["alerts"]
    assert [a["id"] for a in listed] == [alerts["east"]]
    assert client.get(f"/v1/alerts/{alerts['west']}", headers=east).status_code == 404
    metrics = client.get("/v1/alerts/metrics", headers=east).json()
    assert set(metrics["by_region"]) == {"East"}
    bench = client.get("/v1/benchmark", params={**window}, headers=east).json()
    assert sum(m["items"] for m in bench["metrics"] if m["aspect"] == "taste") == 120
    pri = client.get("/v1/benchmark/priorities", params=window, headers=east).json()
    assert pri["importance"]["items"] <= 60  # our brand's East items only
    series = client.get(
        "/v1/benchmark/series",
        params={**window, "competitor": "noodleking", "compare_aspect": "taste"},
        headers=east,
    ).json()
    everyone = client.get(
        "/v1/benchmark/series",
        params={**window, "competitor": "noodleking", "compare_aspect": "taste"},
        headers=admin,
    ).json()
    assert sum(p["ours_mentions"] for p in series["points"]) < sum(
        p["ours_mentions"] for p in everyone["points"]
    )


def test_rate_limit_answers_429_with_retry_after(db_url, make_runtime):
    rt = make_runtime(
        db_url, scorer=AspectKeywordScorer(), api={"auth": True, "rate_limit_per_minute": 3}
    )
    with rt.sessions() as s:
        key = access.create_key(s, role="viewer", actor="t")[1]
    with TestClient(create_app(runtime=rt)) as c:
        codes = [c.get("/v1/feedback", headers=_h(key)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get("/v1/feedback", headers=_h(key))
        assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 20


def test_keys_audit_and_the_right_to_erasure(secured):
    rt, client, keys, alerts = secured
    admin = _h(keys["admin"])
    made = client.post(
        "/v1/keys", json={"role": "analyst", "regions": ["West"]}, headers=admin
    ).json()
    assert made["key"].startswith(f"rk_{made['prefix']}_")
    assert "key" not in client.get("/v1/keys", headers=admin).json()["keys"][-1]
    client.patch(f"/v1/keys/{made['id']}", json={"regions": ["East", "West"]}, headers=admin)
    client.delete(f"/v1/keys/{made['id']}", headers=admin)
    assert client.get("/v1/alerts", headers=_h(made["key"])).status_code == 401
    client.patch(
        f"/v1/alerts/{alerts['east']}", json={"status": "acknowledged"}, headers=_h(keys["analyst"])
    )
    # the erasure of one author: items, scores and embeddings, and their words in alert quotes
    with rt.sessions() as s:
        from sqlalchemy import func, select

        from service.store.tables import AlertRow, FeedbackRow, ScoreRow

        author_hash = rt.author_hasher("cust-3")
        theirs = list(
            s.scalars(select(FeedbackRow.id).where(FeedbackRow.author_hash == author_hash))
        )
        alert = s.get(AlertRow, alerts["east"])
        details = json.loads(alert.details)
        details["quotes"] = [{"id": theirs[0], "text": "their words"}, *details["quotes"]]
        alert.details = json.dumps(details)
        s.commit()
        before = s.scalar(select(func.count()).select_from(FeedbackRow))
    r = client.post("/v1/erasure", json={"author": "cust-3"}, headers=admin)
    assert r.status_code == 200 and r.json()["erased"] == {
        "items": len(theirs),
        "alerts_scrubbed": 1,
        "themes_scrubbed": 0,
        "messages_redacted": 0,
    }
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(FeedbackRow)) == before - len(theirs)
        assert (
            s.scalar(
                select(func.count()).select_from(ScoreRow).where(ScoreRow.feedback_id.in_(theirs))
            )
            == 0
        )
        assert "their words" not in s.get(AlertRow, alerts["east"]).details
        log = [(a.action, a.actor) for a in s.scalars(select(AuditRow).order_by(AuditRow.id))]
    actions = [a for a, _ in log]
    for expected in ("key.create", "key.scope", "key.revoke", "alert.acknowledged", "erasure"):
        assert expected in actions, actions
    assert ("erasure", f"key:{keys['admin'].split('_')[1]}") in log
    entries = client.get("/v1/audit", params={"action": "erasure"}, headers=admin).json()["entries"]
    assert len(entries) == 1 and "cust-3" not in json.dumps(entries)  # no personal data in the log


def test_radar_keys_commands(sqlite_url, monkeypatch):
    from typer.testing import CliRunner

    from service.cli.main import app

    monkeypatch.setenv("RADAR_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    r = runner.invoke(app, ["keys", "create", "--role", "viewer", "--region", "East", "--json"])
    assert r.exit_code == 0, r.output
    made = json.loads(r.output)
    assert made["regions"] == ["East"] and made["key"].startswith("rk_")
    assert runner.invoke(app, ["keys", "create", "--role", "boss"]).exit_code == 2
    listed = json.loads(runner.invoke(app, ["keys", "list", "--json"]).output)
    assert [k["prefix"] for k in listed] == [made["prefix"]] and "key" not in listed[0]
    assert runner.invoke(app, ["keys", "revoke", made["prefix"]]).exit_code == 0
    assert json.loads(runner.invoke(app, ["keys", "list", "--json"]).output)[0]["revoked_at"]


def test_a_slow_model_answers_503_with_retry_after(sqlite_url, make_runtime):
    import time

    class Slow(AspectKeywordScorer):
        def score(self, texts, languages=None):
            time.sleep(1.5)
            return super().score(texts, languages)

    rt = make_runtime(sqlite_url, scorer=Slow(), limits={"model_timeout_s": 0.3})
    with TestClient(create_app(runtime=rt)) as c:
        r = c.post("/v1/score", json={"items": [{"text": "lovely flavour"}]})
        assert (
            r.status_code == 503
            and r.headers["Retry-After"] == "30"
            and "within 0.3 s" in r.json()["error"]["message"]
        )
        item = {
            "source": "t",
            "external_id": "slow-1",
            "channel": "review",
            "text": "too spicy flavour",
            "created_at": START.isoformat(),
        }
        assert c.post("/v1/feedback", json={"items": [item]}).status_code == 503
        time.sleep(
            1.6
        )  # the ingest was stopped: nothing of it is stored, and the retry stores it once
        assert c.get("/v1/feedback").json()["items"] == []
    rt2 = make_runtime(sqlite_url, scorer=AspectKeywordScorer())
    with TestClient(create_app(runtime=rt2)) as c:
        assert c.post("/v1/feedback", json={"items": [item]}).json()["created"] == 1
        assert c.post("/v1/feedback", json={"items": [item]}).json()["unchanged"] == 1
