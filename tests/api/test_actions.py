"""Actions, pilot plans, answers to items and the response metrics over HTTP and from the CLI
(both databases; a keyword scorer: nothing here depends on model quality)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.api.app import create_app
from service.api.deps import Caller, get_caller
from service.cli.main import app as cli
from tests.analytics.conftest import AspectKeywordScorer
from tests.analytics.test_effects import ACTION_WEEK, START, WEEKS, effect_items
from tests.conftest import sqlite_only


@pytest.fixture
def actions_app(db_url, make_runtime):
    """Both databases: writes, reads, scope and the effect through each one's queries (the plan,
    the CLI and an alert's history run on SQLite alone)."""
    rt = make_runtime(db_url, scorer=AspectKeywordScorer())
    items = effect_items(per_cell=20)
    # a few answerable complaints posted recently, so "within 24 hours" is due
    for it in items[:40]:
        it["created_at"] = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    rt.ingest_service().ingest(list(enumerate(items)))
    return rt, create_app(runtime=rt)


ACTION = {
    "title": "Spicy recipe rolled back",
    "kind": "product",
    "brand": "spicewell",
    "segment": {"region": "East", "age_group": "18-24"},
    "aspect": "taste",
    "started_at": (START + timedelta(weeks=ACTION_WEEK)).isoformat(),
    "owner": "product team",
    "due_at": (START + timedelta(weeks=ACTION_WEEK + 2)).isoformat(),
}


def test_action_crud_effect_and_scope(actions_app):
    rt, api = actions_app
    with TestClient(api) as c:
        made = c.post("/v1/actions", json=ACTION)
        assert made.status_code == 201, made.text
        a = made.json()
        assert (
            a["status"] == "active" and a["segment"] == ACTION["segment"] and a["alert_ids"] == []
        )
        assert a["effect"]["verdict"] == "worked" and a["effect"]["effect"] < -0.15
        assert (
            a["effect"]["weeks_before"] == ACTION_WEEK - 1
        )  # week 0 of East was moved to this week
        assert a["overdue"]  # due two weeks after a start in March, not completed

        listed = c.get("/v1/actions").json()["actions"]
        assert [x["id"] for x in listed] == [a["id"]] and listed[0]["effect"]["verdict"] == "worked"
        assert (
            c.get("/v1/actions", params={"effect": "false"}).json()["actions"][0]["effect"] is None
        )
        other = c.get(f"/v1/actions/{a['id']}", params={"metric": "net_sentiment"}).json()
        assert other["effect"]["metric"] == "net_sentiment"

        patched = c.patch(
            f"/v1/actions/{a['id']}",
            json={"owner": "East desk", "controls": [{"region": "West", "age_group": "18-24"}]},
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["owner"] == "East desk"
        assert patched.json()["effect"]["controls_chosen_by"] == "team"
        closed = c.post(f"/v1/actions/{a['id']}/close", json={"status": "completed"}).json()
        assert closed["status"] == "completed" and closed["completed_at"] and not closed["overdue"]
        again = c.post(f"/v1/actions/{a['id']}/close", json={})
        assert again.status_code == 409

        # bad input names the field
        bad = c.post("/v1/actions", json={**ACTION, "aspect": "smell"})
        assert (
            bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "body.aspect"
        )
        bad = c.post("/v1/actions", json={**ACTION, "metric": "rating", "aspect": None})
        assert bad.status_code == 422 and "aspect" in bad.json()["error"]["message"]
        bad = c.post("/v1/actions", json={**ACTION, "controls": [{"region": "West"}]})
        assert (
            bad.status_code == 422
            and bad.json()["error"]["details"][0]["field"] == "body.controls.0"
        )
        bad = c.post("/v1/actions", json={**ACTION, "ended_at": ACTION["started_at"]})
        assert bad.status_code == 422
        bad = c.post("/v1/actions", json={**ACTION, "alert_ids": [999]})
        assert bad.status_code == 422 and "999" in bad.json()["error"]["message"]
        assert c.get("/v1/actions/424242").status_code == 404

        # scope: a West viewer sees no East action, and a West analyst cannot record one in the East
        api.dependency_overrides[get_caller] = lambda: Caller(
            id="west", role="viewer", regions=("West",)
        )
        assert c.get("/v1/actions").json()["actions"] == []
        assert c.get(f"/v1/actions/{a['id']}").status_code == 404
        assert c.post("/v1/actions", json=ACTION).status_code == 403  # a viewer records nothing
        api.dependency_overrides[get_caller] = lambda: Caller(
            id="west", role="analyst", regions=("West",)
        )
        assert c.post("/v1/actions", json=ACTION).status_code == 403
        west = c.post(
            "/v1/actions", json={**ACTION, "segment": {"region": "West", "age_group": "18-24"}}
        )
        assert west.status_code == 201, west.text
        assert [x["id"] for x in c.get("/v1/actions").json()["actions"]] == [west.json()["id"]]
        api.dependency_overrides.clear()


@sqlite_only
def test_plan_endpoint_and_cli(actions_app):
    rt, api = actions_app
    with TestClient(api) as c:
        r = c.post(
            "/v1/actions/plan",
            json={
                "segment": {"region": "West", "age_group": "25-34"},
                "aspect": "taste",
                "min_effect": 0.2,
                "brand": "spicewell",
            },
        )
        # the store's newest week is in June: "now" has no history, so the plan says so
        assert r.status_code == 422 and "no items" in r.json()["error"]["message"]
    runner = CliRunner()
    env = {"RADAR_DATABASE_URL": str(rt.settings.database_url)}
    as_of = (START + timedelta(weeks=WEEKS)).isoformat()
    out = runner.invoke(
        cli,
        [
            "actions",
            "plan",
            "--segment",
            "region=West",
            "--segment",
            "age_group=25-34",
            "--aspect",
            "taste",
            "--min-effect",
            "0.2",
            "--brand",
            "spicewell",
            "--as-of",
            as_of,
            "--json",
        ],
        env=env,
    )
    assert out.exit_code == 0, out.output
    plan = json.loads(out.output)
    assert plan["weeks"] is not None and 1 <= plan["weeks"] <= 52 and plan["power_at_weeks"] >= 0.8
    assert any(c["chosen"] for c in plan["controls"]) and len(plan["detectable_by_week"]) == 6
    bad = runner.invoke(
        cli, ["actions", "plan", "--segment", "region=West", "--aspect", "smell"], env=env
    )
    assert bad.exit_code == 2 and "smell" in bad.output


@sqlite_only
def test_cli_add_list_show_close(actions_app):
    rt, _ = actions_app
    runner = CliRunner()
    env = {"RADAR_DATABASE_URL": str(rt.settings.database_url)}
    out = runner.invoke(
        cli,
        [
            "actions",
            "add",
            "--title",
            "Recipe rollback",
            "--segment",
            "region=East",
            "--segment",
            "age_group=18-24",
            "--start",
            ACTION["started_at"],
            "--kind",
            "product",
            "--brand",
            "spicewell",
            "--aspect",
            "taste",
            "--owner",
            "ops",
        ],
        env=env,
    )
    assert out.exit_code == 0, out.output
    action_id = int(out.output.split()[1])
    listed = runner.invoke(cli, ["actions", "list", "--format", "json"], env=env)
    rows = json.loads(listed.output)
    assert rows[0]["id"] == action_id and rows[0]["effect"]["verdict"] == "worked"
    shown = runner.invoke(cli, ["actions", "show", str(action_id)], env=env)
    assert shown.exit_code == 0 and "worked" in shown.output and "pre-trend" in shown.output
    assert runner.invoke(cli, ["actions", "close", str(action_id)], env=env).exit_code == 0
    assert runner.invoke(cli, ["actions", "close", str(action_id)], env=env).exit_code == 1
    bad = runner.invoke(
        cli,
        ["actions", "add", "--title", "x", "--segment", "region", "--start", "2026-01-01"],
        env=env,
    )
    assert bad.exit_code == 2 and "dimension=value" in bad.output


def test_response_tracking_and_metrics(actions_app):
    rt, api = actions_app
    with TestClient(api) as c:
        recent = c.get(
            "/v1/feedback", params={"sentiment": "negative", "days": 7, "limit": 50}
        ).json()["items"]
        assert len(recent) >= 4, recent
        now = datetime.now(UTC)
        fast, slow = recent[0], recent[1]
        posted = datetime.fromisoformat(fast["created_at"])
        r = c.post(
            f"/v1/feedback/{fast['id']}/response",
            json={
                "responder": "Li",
                "channel": "phone",
                "responded_at": (posted + timedelta(hours=2)).isoformat(),
            },
        )
        assert r.status_code == 201, r.text
        assert r.json()["responses"][0]["responder"] == "Li"
        late = datetime.fromisoformat(slow["created_at"]) + timedelta(hours=30)
        assert (
            c.post(
                f"/v1/feedback/{slow['id']}/response",
                json={"responder": "Wang", "responded_at": late.isoformat()},
            ).status_code
            == 201
        )
        bad = c.post(
            f"/v1/feedback/{fast['id']}/response",
            json={"responder": "Li", "responded_at": (now + timedelta(days=1)).isoformat()},
        )
        assert (
            bad.status_code == 422
            and bad.json()["error"]["details"][0]["field"] == "body.responded_at"
        )
        bad = c.post(
            f"/v1/feedback/{fast['id']}/response",
            json={"responder": "Li", "responded_at": "2020-01-01T00:00:00Z"},
        )
        assert bad.status_code == 422
        assert c.post("/v1/feedback/987654/response", json={"responder": "Li"}).status_code == 404

        m = c.get("/v1/responses/metrics", params={"by": "region", "days": 7}).json()
        total = {g["group"]: g for g in m["groups"]}
        region = fast["region"]
        g = total[region]
        assert g["answered"] >= 1 and g["within"] >= 1 and g["median_hours_to_answer"] is not None
        everyone = sum(x["negative_items"] for x in m["groups"])
        assert everyone >= len(recent)  # the page held at most 50; the metrics count every one
        assert (
            sum(x["within"] for x in m["groups"]) == 1
            and sum(x["answered"] for x in m["groups"]) == 2
        )
        sev = c.get("/v1/responses/metrics", params={"by": "severity", "days": 7}).json()
        assert {x["group"] for x in sev["groups"]} <= {"severe", "negative"}
        assert "by_severity" in sev["alerts"] and "share_completed_by_due_date" in sev["alerts"]

    runner = CliRunner()
    env = {"RADAR_DATABASE_URL": str(rt.settings.database_url)}
    out = runner.invoke(
        cli, ["responses", "metrics", "--by", "channel", "--days", "7", "--format", "json"], env=env
    )
    assert out.exit_code == 0, out.output
    assert sum(g["answered"] for g in json.loads(out.output)["groups"]) == 2
    third = recent[2]
    assert (
        runner.invoke(
            cli, ["responses", "add", str(third["id"]), "--by", "Zhao"], env=env
        ).exit_code
        == 0
    )
    out = runner.invoke(cli, ["responses", "metrics", "--days", "7", "--format", "json"], env=env)
    assert sum(g["answered"] for g in json.loads(out.output)["groups"]) == 3


def test_erasing_an_author_removes_the_answers_to_their_items(db_url, make_runtime):
    from sqlalchemy import func, select

    from service.store.tables import ResponseRow

    rt = make_runtime(db_url, scorer=AspectKeywordScorer())
    now = datetime.now(UTC)
    items = [
        {
            "source": "shop",
            "channel": "complaint",
            "external_id": f"x{i}",
            "text": f"the box arrived crushed {i}",
            "created_at": (now - timedelta(hours=5)).isoformat(),
            "brand": "spicewell",
            "region": "East",
            "author": "cust-x" if i == 0 else f"cust-{i}",
            "language": "en",
        }
        for i in range(2)
    ]
    rt.ingest_service().ingest(list(enumerate(items)))
    api = create_app(runtime=rt)
    with TestClient(api) as c:
        ids = [x["id"] for x in c.get("/v1/feedback", params={"days": 2}).json()["items"]]
        for i in ids:
            assert c.post(f"/v1/feedback/{i}/response", json={"responder": "Li"}).status_code == 201
        assert c.post("/v1/erasure", json={"author": "cust-x"}).status_code == 200
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ResponseRow)) == 1


@sqlite_only
def test_an_action_answering_an_alert_is_in_its_history_and_the_alert_metrics(actions_app):
    from tests.delivery.test_outbox import make_alert

    rt, api = actions_app
    at = START + timedelta(weeks=ACTION_WEEK - 1)
    with rt.sessions() as s:
        alert = make_alert(s, at=at)
        unanswered = make_alert(s, at=at, region="West")
        alert_id, other_id = alert.id, unanswered.id
        s.commit()
    with TestClient(api) as c:
        made = c.post("/v1/actions", json={**ACTION, "alert_ids": [alert_id]}).json()
        assert made["alert_ids"] == [alert_id]
        assert [
            x["id"]
            for x in c.get("/v1/actions", params={"alert_id": alert_id, "effect": "false"}).json()[
                "actions"
            ]
        ] == [made["id"]]
        assert c.get("/v1/actions", params={"alert_id": other_id}).json()["actions"] == []
        c.post(f"/v1/actions/{made['id']}/close", json={})
        events = [
            (e["action"], e["note"]) for e in c.get(f"/v1/alerts/{alert_id}").json()["events"]
        ]
        assert ("action_planned", f"action #{made['id']}: {ACTION['title']}") in events
        assert ("action_completed", f"action #{made['id']}: {ACTION['title']}") in events
        m = c.get("/v1/responses/metrics", params={"action_days": 30}).json()["alerts"]
        l2 = next(g for g in m["by_severity"] if g["severity"] == "L2")
        # the answered alert got its action long after 30 days (the action was recorded today)
        assert (
            l2["alerts"] == 2
            and l2["with_action"] == 1
            and l2["due"] == 2
            and l2["with_action_in_time"] == 0
        )
        assert (
            m["actions_due"] == 1 and m["actions_completed_by_due_date"] == 0
        )  # completed today, due in March
