"""Browser tests of the dashboard in headless Chromium against the demo data: every page
renders its charts without console errors or failed requests, an alert clicks through to
its quotes and is acknowledged, a filter changes the URL and the numbers, the caller's data
scope applies, and the interface speaks Chinese."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.sync_api import expect

from tests.web.conftest import api_get, screenshots_dir

pytestmark = pytest.mark.slow

# page, path, the least number of plotted charts it must show
PAGES = [
    ("overview", "/dashboard/", 2),
    ("alerts", "/dashboard/alerts", 0),
    ("alert", None, 1),  # the preference-shift alert's page, found at run time
    ("trends", "/dashboard/trends?aspect=taste&region=East&attr=age_group:18-24", 1),
    ("segments", "/dashboard/segments?dimension=region&dimension=age_group&brand=spicewell", 1),
    ("themes", "/dashboard/themes?days=28", 1),
    ("competitors", "/dashboard/competitors", 1),
    ("explorer", "/dashboard/explorer?aspect=taste&sentiment=negative&region=East", 0),
    ("taxonomy", "/dashboard/taxonomy?aspect=packaging", 0),
]


def _shift_alert(dashboard) -> dict:
    server, keys, _ = dashboard
    alerts = api_get(dashboard, "/alerts", keys["analyst"], type="preference_shift")["alerts"]
    east = [a for a in alerts if a["region"] == "East" and a["segment"].get("age_group") == "18-24"]
    assert east, [a["title"] for a in alerts]
    return east[0]


@pytest.mark.parametrize("name,path,charts", PAGES, ids=[p[0] for p in PAGES])
def test_page_renders_charts_without_errors(probe, dashboard, name, path, charts):
    server, keys, _ = dashboard
    if path is None:
        path = f"/dashboard/alerts/{_shift_alert(dashboard)['id']}"
    page = probe.open(path, keys["analyst"])
    plotted = page.locator(".chart[data-rendered='1'] svg.main-svg")
    assert page.locator(".chart[data-rendered='1']").count() >= charts
    if charts:
        assert plotted.count() >= charts
        # plotly drew marks, not an empty frame
        assert page.locator(".chart g.trace path, .chart .hm image").count() > 0
    assert page.locator("main .card").count() >= 1
    probe.clean()
    if (out := screenshots_dir()) is not None:
        page.screenshot(path=str(out / f"{name}.png"), full_page=False)


def test_alert_click_through_to_quotes_and_acknowledge(probe, dashboard):
    server, keys, rt = dashboard
    alert = _shift_alert(dashboard)
    page = probe.open("/dashboard/alerts?type=preference_shift", keys["analyst"])
    page.locator(f"tr[data-alert='{alert['id']}'] a").first.click()
    page.wait_for_url(re.compile(rf"/dashboard/alerts/{alert['id']}"))
    probe.ready()
    quotes = page.locator("#alert-quotes .quotes li")
    assert quotes.count() >= 1
    text = " ".join(quotes.all_inner_texts()).lower()
    assert any(w in text for w in ("spic", "辣", "chilli", "hot")), text
    # a quote opens the item it quotes
    qid = page.locator("#alert-quotes [data-quote]").first.get_attribute("data-quote")
    assert page.locator("main .chart[data-rendered='1'] svg.main-svg").count() >= 1
    assert (
        page.locator("#chart-alert .scatterlayer .trace").count() >= 4
    )  # band, expected, observed, breach

    assert api_get(dashboard, f"/alerts/{alert['id']}", keys["analyst"])["status"] == "open"
    page.locator("#alert-ack").click()
    expect(page.locator("#alert-status")).to_have_text("acknowledged", timeout=60_000)
    probe.ready()
    stored = api_get(dashboard, f"/alerts/{alert['id']}", keys["analyst"])
    assert stored["status"] == "acknowledged" and stored["acknowledged_by"].startswith("key:")
    assert stored["events"][-1]["action"] == "acknowledged"
    assert "acknowledged" in page.locator("#alert-history").inner_text()
    assert page.locator("#alert-ack").count() == 0 and page.locator("#alert-reopen").count() == 0
    # resolve, then reopen: the lifecycle's other buttons, and the demo store left with it open
    page.locator("#alert-resolve").click()
    expect(page.locator("#alert-status")).to_have_text("resolved", timeout=60_000)
    probe.ready()
    page.locator("#alert-reopen").click()
    expect(page.locator("#alert-status")).to_have_text("open", timeout=60_000)
    probe.ready()
    stored = api_get(dashboard, f"/alerts/{alert['id']}", keys["analyst"])
    assert stored["status"] == "open" and [e["action"] for e in stored["events"]][-3:] == [
        "acknowledged",
        "resolved",
        "open",
    ]

    # the items behind the alert: the explorer, filtered to the alert's segment and aspect
    page.locator("#alert-items").click()
    page.wait_for_url(re.compile(r"/dashboard/explorer\?"))
    probe.ready()
    q = parse_qs(urlparse(page.url).query)
    assert q["region"] == ["East"] and q["aspect"] == ["taste"] and "age_group:18-24" in q["attr"]
    rows = page.locator("#feedback-table tbody tr")
    assert rows.count() >= 1
    assert set(page.locator("#feedback-table tbody tr td:nth-child(3)").all_inner_texts()) == {
        "East"
    }
    page.goto(f"{server.url}/dashboard/explorer?item={qid}")
    probe.ready()
    assert page.locator(f"#feedback-table tr[data-item='{qid}']").count() == 1
    probe.clean()


def _volume(page) -> int:
    return int(page.locator("#kpi-volume").inner_text().replace(",", ""))


def test_filter_changes_url_and_numbers(probe, dashboard):
    server, keys, _ = dashboard
    page = probe.open("/dashboard/?days=28", keys["analyst"])
    everyone = _volume(page)
    page.select_option("#f-region", "East")
    page.wait_for_url(re.compile(r"region=East"))
    probe.ready()
    east = _volume(page)
    assert 0 < east < everyone
    q = parse_qs(urlparse(page.url).query)
    assert q["region"] == ["East"] and q["days"] == ["28"]
    # the number is the API's: East's items in the 28 days up to East's newest item
    newest = api_get(dashboard, "/feedback", keys["analyst"], region="East", limit=1)["items"][0][
        "created_at"
    ]
    from datetime import datetime, timedelta

    until = datetime.fromisoformat(newest).replace(microsecond=0) + timedelta(seconds=1)
    seg = api_get(
        dashboard,
        "/segments",
        keys["analyst"],
        dimension="brand",
        region="East",
        since=(until - timedelta(days=28)).isoformat(),
        until=until.isoformat(),
    )
    assert east == seg["total"]["volume"]
    # the link reproduces the view; nav links keep the filters
    again = probe.page.context.new_page()
    again.goto(page.url)
    again.wait_for_selector("body[data-ready='1']")
    assert _volume(again) == east
    href = page.locator("a[data-nav='segments']").get_attribute("href")
    assert "region=East" in href and "days=28" in href
    # changing the window changes the numbers too
    page.select_option("#f-days", "91")
    page.wait_for_url(re.compile(r"days=91"))
    probe.ready()
    assert _volume(page) > east
    # back restores the earlier view
    page.go_back()
    probe.ready()
    assert _volume(page) == east
    probe.clean()


def test_a_regional_key_sees_only_its_region(probe, dashboard):
    server, keys, _ = dashboard
    page = probe.open("/dashboard/?days=91", keys["east"])
    options = page.locator("#f-region option").all_inner_texts()
    assert options[1:] == ["East"], options
    mine = _volume(page)
    page.goto(f"{server.url}/dashboard/explorer?days=91")
    probe.ready()
    assert set(page.locator("#feedback-table tbody tr td:nth-child(3)").all_inner_texts()) == {
        "East"
    }
    # asking for another region in the URL shows nothing rather than West's items
    page.goto(f"{server.url}/dashboard/explorer?days=91&region=West")
    probe.ready()
    assert page.locator("#feedback-table").count() == 0
    page.goto(f"{server.url}/dashboard/?days=91")
    probe.ready()
    assert _volume(page) == mine
    analyst_east = api_get(dashboard, "/segments", keys["analyst"], dimension="region")
    assert mine <= next(
        s["volume"] for s in analyst_east["segments"] if s["segment"]["region"] == "East"
    )
    # alerts of other regions stay hidden
    page.goto(f"{server.url}/dashboard/alerts")
    probe.ready()
    regions = {
        t.strip() for t in page.locator("#alerts-table tbody td:nth-child(5)").all_inner_texts()
    }
    assert all(r.startswith("East") or r == "–" for r in regions), regions
    # the header says who this is; a viewer is offered no acknowledge button
    assert (
        page.locator("#who-role").inner_text() == "viewer"
        and "East" in page.locator("#who-scope").inner_text()
    )
    east_alert = api_get(dashboard, "/alerts", keys["east"], limit=1)["alerts"][0]
    page.goto(f"{server.url}/dashboard/alerts/{east_alert['id']}")
    probe.ready()
    assert (
        page.locator("#alert-head").count() == 1
        and page.locator("#alert-ack, #alert-resolve").count() == 0
    )
    probe.clean()


def test_sign_in_and_chinese_interface(probe, dashboard):
    server, keys, _ = dashboard
    page = probe.page
    page.goto(f"{server.url}/dashboard/?lang=zh")
    page.wait_for_selector("#signin[open]")
    probe.failed.clear()  # the 401 that asked for a key is expected
    probe.errors[:] = [e for e in probe.errors if "401" not in e]
    page.fill("#signin-key", keys["analyst"])
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#kpi-volume")
    probe.ready()
    assert page.locator("a[data-nav='alerts']").inner_text() == "预警"
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert "反馈条数" in page.locator("main").inner_text()
    page.locator("a[data-nav='trends']").click()
    probe.ready()
    assert "lang=zh" in page.url and "趋势" in page.locator("a[data-nav='trends']").inner_text()
    # a wrong key is refused and the dialog asks again
    page.evaluate("localStorage.setItem('radar.api_key', 'rk_nope_nope')")
    probe.failed.clear()
    page.reload()
    page.wait_for_selector("#signin[open]")
    probe.failed.clear()
    probe.errors[:] = [e for e in probe.errors if "401" not in e]
    probe.clean()


def test_assets_come_from_the_app(dashboard):
    server = dashboard[0]
    page = httpx.get(server.url + "/dashboard/").text
    assert "http://" not in page.replace(server.url, "") and "https://" not in page
    js = httpx.get(server.url + "/dashboard/assets/plotly.min.js")
    assert (
        js.status_code == 200
        and js.headers["content-type"].startswith("text/javascript")
        and len(js.content) > 1_000_000
    )
    assert httpx.get(server.url + "/dashboard/assets/..%2Fapp.css").status_code == 404
    assert httpx.get(server.url + "/dashboard/nope").status_code == 404
    assert httpx.get(server.url + "/", follow_redirects=False).headers["location"] == "/dashboard/"


def test_taxonomy_page_previews_an_edited_aspect(probe, dashboard):
    """Editing an aspect's rules and pressing Preview shows what it would tag among the stored
    items (counts by reason, matches with their evidence and rule, borderline items), from
    POST /v1/taxonomy/preview; an analyst gets no Save button (admins only)."""
    server, keys, _ = dashboard
    page = probe.open("/dashboard/taxonomy?aspect=taste", keys["analyst"])
    assert page.locator("#tx-aspect").input_value() == "taste"
    assert "spicy" in page.locator("#tx-include-en").input_value()
    assert page.locator("#tx-save").count() == 0
    page.locator("#tx-include-en").fill("spicy\nchili")
    page.locator("#tx-preview").click()
    page.wait_for_selector("#tx-matches li", timeout=120_000)
    tagged = page.locator("#tx-tagged").inner_text()
    n, sample = (int(x) for x in re.match(r"(\d+) / (\d+)", tagged).groups())
    assert sample == 1000 and 0 < n < sample
    first = page.locator("#tx-matches li").first.inner_text()
    assert "rule" in first or "model" in first
    assert page.locator("#tx-overlap").count() == 1
    # a new aspect: the form starts empty and its preview says it is new
    page = probe.open("/dashboard/taxonomy?aspect=__new__", keys["analyst"])
    page.locator("#tx-id").fill("spiciness")
    page.locator("#tx-name-en").fill("Spiciness")
    page.locator("#tx-description").fill("How hot and spicy the food is.")
    page.locator("#tx-examples").fill("way too spicy\n太辣了")
    page.locator("#tx-include-zh").fill("辣")
    page.locator("#tx-preview").click()
    page.wait_for_selector("#tx-change", timeout=120_000)
    assert "new aspect" in page.locator("#tx-change").inner_text()
    probe.clean()
