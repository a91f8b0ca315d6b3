"""The Actions pages in headless Chromium over the demo store: the demo's action listed with its
verdict, its page drawing the segment against its controls, a pilot planned, an action recorded
from an alert's page, the data scope, and the Chinese interface."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.web.conftest import api_get, screenshots_dir

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_action(dashboard, demo_store):
    """The demo's action and its service desk's answers, as `radar demo` records them."""
    from sqlalchemy import func, select

    from service.demo.run import answer_demo_complaints, record_demo_action
    from service.store import actions as actions_repo
    from service.store.tables import ResponseRow

    rt, truth, cfg = demo_store
    with rt.sessions() as s:
        have = [
            a
            for a in actions_repo.list_actions(s)
            if a.title.startswith("Spicy recipe rolled back")
        ]
        answered = s.scalar(select(func.count()).select_from(ResponseRow))
    if not answered:
        assert answer_demo_complaints(rt, cfg)["answered"] > 100
    if have:
        return have[0].id
    return record_demo_action(rt, cfg, list(truth.values()))["action_id"]


def test_actions_list_and_page_show_the_effect_against_the_controls(probe, dashboard, demo_action):
    server, keys, _ = dashboard
    page = probe.open("/dashboard/actions", keys["analyst"])
    row = page.locator(f"#actions-table tr[data-action='{demo_action}']")
    expect(row).to_have_count(1)
    assert row.locator("[data-verdict]").get_attribute("data-verdict") == "worked"
    assert "pts" in row.inner_text()
    row.locator("a").first.click()
    page.wait_for_url(re.compile(rf"/dashboard/actions/{demo_action}"))
    probe.ready()
    assert "worked" in page.locator("#action-verdict").inner_text()
    assert page.locator("#chart-action[data-rendered='1'] svg.main-svg").count() >= 1
    assert (
        page.locator("#chart-action .scatterlayer .trace").count() >= 2
    )  # this segment and its controls
    assert (
        "East" not in page.locator("#action-controls tbody tr:not(.muted)").first.inner_text()
        or "18-24" not in page.locator("#action-controls tbody tr:not(.muted)").first.inner_text()
    )
    assert page.locator("#action-did").inner_text().count("%") >= 4
    probe.clean()
    if (out := screenshots_dir()) is not None:
        page.screenshot(path=str(out / "action.png"), full_page=False)


def test_responses_card_shows_how_fast_complaints_were_answered(probe, dashboard, demo_action):
    server, keys, _ = dashboard
    page = probe.open(
        "/dashboard/actions?since=2026-09-07T00:00:00Z&until=2026-11-02T00:00:00Z&brand=spicewell",
        keys["analyst"],
    )
    rows = page.locator("#responses-table tbody tr")
    assert rows.count() >= 4  # the regions
    answered = [r.split("\t") for r in rows.all_inner_texts()]
    assert any(cells[2].strip() not in ("0%", "–") for cells in answered), answered
    assert (
        "%" in page.locator("#responses-due").inner_text()
        or "–" in page.locator("#responses-due").inner_text()
    )
    page.select_option("#rs-by", "channel")
    page.wait_for_url(re.compile(r"by=channel"))
    probe.ready()
    assert {
        r.split("\t")[0] for r in page.locator("#responses-table tbody tr").all_inner_texts()
    } <= {"complaint", "social", "review"}
    probe.clean()


def test_plan_a_pilot_from_the_actions_page(probe, dashboard):
    server, keys, _ = dashboard
    page = probe.open("/dashboard/actions", keys["analyst"])
    page.fill("#pl-region", "West")
    page.fill("#pl-age", "25-34")
    page.select_option("#pl-aspect", "taste")
    page.fill("#pl-effect", "10")
    page.locator("#pl-go").click()
    expect(page.locator("#plan-message")).to_contain_text("week", timeout=60_000)
    assert page.locator("#plan-result table tbody tr").count() == 6
    probe.clean()


def test_record_an_action_from_the_alert_page(probe, dashboard, demo_action):
    server, keys, _ = dashboard
    alerts = api_get(dashboard, "/alerts", keys["analyst"], type="preference_shift")["alerts"]
    alert = next(
        a for a in alerts if a["region"] == "East" and a["segment"].get("age_group") == "18-24"
    )
    page = probe.open(f"/dashboard/alerts/{alert['id']}", keys["analyst"])
    assert (
        "Spicy recipe rolled back" in page.locator("#alert-actions").inner_text()
    )  # the demo's answer to it
    page.fill("#ra-title", "Replies to every spicy complaint within 24 hours")
    page.select_option("#ra-kind", "communication")
    page.fill("#ra-start", "2026-10-12")
    page.fill("#ra-owner", "service desk")
    page.locator("#ra-save").click()
    page.wait_for_url(re.compile(r"/dashboard/actions/\d+"))
    probe.ready()
    new_id = int(page.url.rsplit("/", 1)[-1].split("#")[0].split("?")[0])
    stored = api_get(dashboard, f"/actions/{new_id}", keys["analyst"])
    assert stored["alert_ids"] == [alert["id"]] and stored["segment"] == {
        "region": "East",
        "age_group": "18-24",
    }
    assert (
        stored["kind"] == "communication"
        and stored["owner"] == "service desk"
        and stored["aspect"] == "taste"
    )
    probe.clean()


def test_actions_respect_the_scope_and_speak_chinese(probe, dashboard, demo_action):
    server, keys, _ = dashboard
    page = probe.open("/dashboard/actions?lang=zh", keys["east"])
    assert page.locator("#nav a[data-nav='actions']").inner_text() == "措施"
    assert (
        page.locator(f"#actions-table tr[data-action='{demo_action}']").count() == 1
    )  # an East action
    assert page.locator("#pl-go").count() == 0  # a viewer plans nothing
    assert "见效" in page.locator(f"#actions-table tr[data-action='{demo_action}']").inner_text()
    listed = api_get(dashboard, "/actions", keys["east"], effect="false")["actions"]
    assert listed and all(a["segment"].get("region") == "East" for a in listed)
    probe.clean()
