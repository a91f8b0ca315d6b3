"""Browser tests of the teaching pages in headless Chromium, over a copy of the demo store
(real model) so that the labels, team models and promotions made here never reach the shared
store: the Label page answers the queue from the keyboard, the explorer and an alert's quotes
correct an item in one click, and the Models page trains a team model, follows the job,
promotes it (analysts are refused) and rolls back."""

from __future__ import annotations

import re
import sqlite3
import time
from datetime import datetime, timedelta

import httpx
import pytest
from playwright.sync_api import expect

from service.teach.service import quality_gap
from tests.web.conftest import LiveServer, PageProbe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def teach_dashboard(demo_alerts, demo_store, real_pipeline, tmp_path_factory):
    """The app on loopback over a copy of the demo store (alerts included), auth on, with an
    admin and an analyst key. Yields (server, keys, runtime)."""
    from service.api.app import create_app
    from service.config import Settings
    from service.runtime import Runtime
    from service.store import access

    rt_demo, _, _ = demo_store
    src = str(rt_demo.settings.database_url).removeprefix("sqlite:///")
    dst = tmp_path_factory.mktemp("teach-web") / "teach.db"
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)  # a consistent copy, write-ahead log included
    # a light training recipe: at the default 5,000 rated items as weak labels and 5 folds a run
    # over the demo store takes minutes on two cores; the page follows a short one the same way
    rt = Runtime(
        Settings(
            database_url=f"sqlite:///{dst}",
            api={"auth": True, "rate_limit_per_minute": 100_000},
            teach={"rating_max_items": 300, "folds": 3},
        ),
        scorer=real_pipeline,
    )
    with rt.sessions() as s:
        keys = {
            role: access.create_key(s, role=role, actor="teach-web-test")[1]
            for role in ("admin", "analyst")
        }
    with LiveServer(create_app(runtime=rt)) as server:
        yield server, keys, rt
    rt.close()


@pytest.fixture
def tprobe(browser, teach_dashboard):
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
    yield PageProbe(ctx.new_page(), teach_dashboard[0].url)
    ctx.close()


def _api(dash, method: str, path: str, key: str, **kw):
    r = httpx.request(
        method,
        dash[0].url + "/v1" + path,
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
        **kw,
    )
    r.raise_for_status()
    return r.json()


def _window(dash, days: int = 91) -> dict:
    """The dashboard's window as API parameters: ``days`` up to just after the newest item."""
    newest = _api(dash, "GET", "/feedback", dash[1]["analyst"], params={"limit": 1})["items"][0][
        "created_at"
    ]
    until = datetime.fromisoformat(newest).replace(microsecond=0) + timedelta(seconds=1)
    return {"since": (until - timedelta(days=days)).isoformat(), "until": until.isoformat()}


def _expect_refused(probe: PageProbe, status: int, path: str) -> None:
    """Forget the one refusal a test provokes (the response and Chromium's console line for it)."""
    probe.failed[:] = [f for f in probe.failed if not (f.startswith(f"{status} ") and path in f)]
    probe.errors[:] = [e for e in probe.errors if f"status of {status}" not in e]


def _labels(dash, item: int) -> dict[tuple[str, str | None], dict]:
    got = _api(dash, "GET", f"/feedback/{item}/labels", dash[1]["analyst"])["labels"]
    return {(lb["target"], lb["aspect"]): lb for lb in got}


def test_label_page_answers_the_queue_from_the_keyboard(tprobe, teach_dashboard):
    """1 sets negative, an aspect's letter flips it, Enter stores a full label (sentiment and
    every aspect present or absent, source "queue") and the page moves to another item."""
    dash = teach_dashboard
    server, keys, _ = dash
    page = tprobe.open("/dashboard/label", keys["analyst"])
    text = page.locator("#lb-text")
    first = int(text.get_attribute("data-item"))
    queue = _api(
        dash, "GET", "/labeling/queue", keys["analyst"], params={**_window(dash), "limit": 20}
    )
    aspects = [a["id"] for a in queue["aspects"]]
    shown = queue["items"][0]
    # the page shows the queue's own choice: the text, the model's tags and the signals
    assert int(shown["id"]) == first and text.text_content() == shown["text"]
    assert page.locator("#lb-signals [data-signal]").count() == len(shown["signals"]) >= 4
    assert "No team model yet" in page.locator("#lb-quality").inner_text()
    toggles = page.locator("#lb-item [data-aspect]")
    assert toggles.count() == len(aspects)
    letters = toggles.evaluate_all("bs => bs.map((b) => b.dataset.key)")
    assert len(set(letters)) == len(letters) and all(re.fullmatch(r"[a-z]", k) for k in letters), (
        letters
    )
    for aid in aspects:  # the item's current tags start switched on
        on = page.locator(f"#lb-item [data-aspect='{aid}']").get_attribute("aria-pressed") == "true"
        assert on == (aid in shown["aspects"]), aid
    before = int(page.locator("#lb-count-sentiment").inner_text())

    flip = aspects[0]
    was_on = (
        page.locator(f"#lb-item [data-aspect='{flip}']").get_attribute("aria-pressed") == "true"
    )
    page.keyboard.press("1")
    expect(page.locator("#lb-s-negative")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press(letters[0])
    expect(page.locator(f"#lb-item [data-aspect='{flip}']")).to_have_attribute(
        "aria-pressed", "false" if was_on else "true"
    )
    page.keyboard.press("Enter")
    expect(text).not_to_have_attribute("data-item", str(first), timeout=30_000)
    assert f"#{first}" in page.locator("#lb-status").inner_text()

    stored = _labels(dash, first)
    assert stored[("sentiment", None)]["value"] == "negative"
    assert stored[("aspect", flip)]["value"] == ("absent" if was_on else "present")
    # a full label: every aspect answered, the rest as the model tagged them
    assert {a for (tg, a) in stored if tg == "aspect"} == set(aspects)
    for aid in aspects[1:]:
        assert stored[("aspect", aid)]["value"] == (
            "present" if aid in shown["aspects"] else "absent"
        ), aid
    assert {lb["source"] for lb in stored.values()} == {"queue"}
    assert int(page.locator("#lb-count-sentiment").inner_text()) == before + 1

    # Skip moves on without a label; the button saves like Enter
    second = int(text.get_attribute("data-item"))
    page.locator("#lb-skip").click()
    expect(text).not_to_have_attribute("data-item", str(second), timeout=30_000)
    assert _labels(dash, second) == {}
    third = int(text.get_attribute("data-item"))
    page.locator("#lb-s-positive").click()
    page.locator("#lb-save").click()
    expect(text).not_to_have_attribute("data-item", str(third), timeout=30_000)
    assert _labels(dash, third)[("sentiment", None)]["value"] == "positive"
    # the queue no longer offers what was labeled
    again = _api(
        dash, "GET", "/labeling/queue", keys["analyst"], params={**_window(dash), "limit": 100}
    )
    assert not {first, third} & {it["id"] for it in again["items"]}
    # and in Chinese
    page.goto(f"{server.url}/dashboard/label?lang=zh")
    tprobe.ready()
    assert (
        page.locator("a[data-nav='label']").inner_text() == "标注"
        and "保存并继续" in page.locator("#lb-save").inner_text()
    )
    assert "情感不确定" in page.locator("#lb-signals").inner_text()
    tprobe.clean()


def test_explorer_and_alert_quotes_correct_an_item(tprobe, teach_dashboard):
    """One click on a row's sentiment fix, an aspect chip and an aspect's sentiment each store
    a label with source "correction" and mark the row; the disagreement filter reaches the API;
    an alert's quote is corrected the same way."""
    dash = teach_dashboard
    server, keys, _ = dash
    page = tprobe.open("/dashboard/explorer?days=91", keys["analyst"])
    # the first row no other test has labeled
    ids = [
        int(x)
        for x in page.locator("#feedback-table tbody tr").evaluate_all(
            "rs => rs.map((r) => r.dataset.item)"
        )
    ]
    item = next(i for i in ids if not _labels(dash, i))
    row = page.locator(f"#feedback-table tbody tr[data-item='{item}']")
    model = _api(dash, "GET", f"/feedback/{item}", keys["analyst"])["score"]
    row.locator(f"[data-correct='{item}']").click()
    panel = row.locator(f"[data-correct-panel='{item}']")
    expect(panel).to_be_visible()
    # the model's reading is what the panel starts from
    assert (
        panel.locator(f"[data-fix-sentiment='{model['sentiment']}']").get_attribute("aria-pressed")
        == "true"
    )
    tagged = {a["aspect"] for a in model["aspects"]}
    for chip in panel.locator("[data-fix-aspect]").all():
        assert (chip.get_attribute("aria-pressed") == "true") == (
            chip.get_attribute("data-fix-aspect") in tagged
        )
    assert row.locator(f"[data-labeled='{item}']").is_hidden()

    fix = next(v for v in ("negative", "neutral", "positive") if v != model["sentiment"])
    panel.locator(f"[data-fix-sentiment='{fix}']").click()
    expect(row.locator(f"[data-labeled='{item}']")).to_be_visible()
    expect(panel.locator(f"[data-fix-sentiment='{fix}']")).to_have_attribute("aria-pressed", "true")
    stored = _labels(dash, item)
    assert (
        stored[("sentiment", None)]["value"] == fix
        and stored[("sentiment", None)]["source"] == "correction"
    )
    assert stored[("sentiment", None)]["labeled_by"].startswith("key:")

    # add an aspect the model missed, then give it a sentiment
    add = next(a for a in ("delivery", "price_value", "packaging", "taste") if a not in tagged)
    panel.locator(f"[data-fix-aspect='{add}']").click()
    expect(panel.locator(f"[data-fix-aspect='{add}']")).to_have_attribute("aria-pressed", "true")
    assert _labels(dash, item)[("aspect", add)]["value"] == "present"
    panel.locator(f"[data-fix-aspect-sentiment='{add}:negative']").click()
    expect(panel.locator(f"[data-fix-aspect-sentiment='{add}:negative']")).to_have_attribute(
        "aria-pressed", "true"
    )
    stored = _labels(dash, item)
    assert stored[("aspect_sentiment", add)]["value"] == "negative"
    # and remove it again: absent, its sentiment gone with it
    panel.locator(f"[data-fix-aspect='{add}']").click()
    expect(panel.locator(f"[data-fix-aspect='{add}']")).to_have_attribute("aria-pressed", "false")
    stored = _labels(dash, item)
    assert stored[("aspect", add)]["value"] == "absent" and ("aspect_sentiment", add) not in stored
    assert {lb["source"] for lb in stored.values()} == {"correction"}

    # the disagreement filter: the URL, then exactly the API's items
    page.locator("#ex-disagrees").check()
    page.wait_for_url(re.compile(r"disagrees=true"))
    tprobe.ready()
    assert page.locator("#ex-disagrees").is_checked()
    shown = [
        int(x)
        for x in page.locator("#feedback-table tbody tr").evaluate_all(
            "rs => rs.map((r) => r.dataset.item)"
        )
    ]
    window = {**_window(dash), "limit": 50}
    want = _api(dash, "GET", "/feedback", keys["analyst"], params={**window, "disagrees": "true"})[
        "items"
    ]
    everything = _api(dash, "GET", "/feedback", keys["analyst"], params=window)["items"]
    assert shown and shown == [it["id"] for it in want]
    assert shown != [it["id"] for it in everything]  # the filter changed the rows

    # an alert's quote: the same control in the alert's view
    alerts = _api(dash, "GET", "/alerts", keys["analyst"], params={"type": "preference_shift"})[
        "alerts"
    ]
    alert = next(a for a in alerts if a["details"].get("quotes"))
    page.goto(f"{server.url}/dashboard/alerts/{alert['id']}")
    tprobe.ready()
    quote = page.locator("#alert-quotes .quotes li").first
    qid = int(quote.locator("[data-quote]").get_attribute("data-quote"))
    quote.locator(f"[data-correct='{qid}']").click()
    qpanel = quote.locator(f"[data-correct-panel='{qid}']")
    qpanel.locator("[data-fix-sentiment='negative']").click()
    expect(quote.locator(f"[data-labeled='{qid}']")).to_be_visible()
    got = _labels(dash, qid)[("sentiment", None)]
    assert got["value"] == "negative" and got["source"] == "correction"
    tprobe.clean()


def test_models_page_trains_promotes_and_rolls_back(tprobe, teach_dashboard, browser):
    """Train from the page (the job followed to its end), the model listed with its figures as
    the API reports them, an analyst's promotion refused with the API's message, an admin's
    promotion switching what serves (forced when the report is worse than generic), rollback."""
    dash = teach_dashboard
    server, keys, rt = dash
    # labels to train on: the newest items answered in full (as the queue would)
    aspects = [a.id for a in rt.settings.taxonomy.aspects]
    items = _api(dash, "GET", "/feedback", keys["analyst"], params={"limit": 40})["items"]
    for it in items:
        tags = {a["aspect"] for a in it["score"]["aspects"]}
        body = {
            "source": "queue",
            "labels": [{"target": "sentiment", "value": it["score"]["sentiment"]}]
            + [
                {"target": "aspect", "aspect": a, "value": "present" if a in tags else "absent"}
                for a in aspects
            ],
        }
        _api(dash, "POST", f"/feedback/{it['id']}/labels", keys["analyst"], json=body)

    name = "web-team-1"
    page = tprobe.open("/dashboard/models", keys["analyst"])
    assert page.locator("#md-serving-model").get_attribute("data-model") == "generic"
    assert page.locator(f"#md-table tr[data-model='{name}']").count() == 0
    page.locator("#md-name").fill(name)
    t0 = time.monotonic()
    page.locator("#md-train").click()
    expect(page.locator("#md-job")).to_have_attribute("data-status", "running", timeout=10_000)
    expect(page.locator("#md-job")).to_have_attribute("data-status", "succeeded", timeout=90_000)
    assert time.monotonic() - t0 < 90
    row = page.locator(f"#md-table tr[data-model='{name}']")
    expect(row).to_be_visible()
    listed = next(
        m for m in _api(dash, "GET", "/models", keys["analyst"])["models"] if m["name"] == name
    )
    rep = listed["report"]
    s, a = rep["sentiment"], rep["aspects"]
    assert (
        row.locator("[data-figure='sentiment']").inner_text()
        == f"{s['generic']['macro_f1']:.1f} → {s['team']['macro_f1']:.1f}"
    )
    assert (
        row.locator("[data-figure='aspects']").inner_text()
        == f"{a['generic']['f1']:.1f} → {a['team']['f1']:.1f}"
    )
    assert (
        row.locator("[data-figure='false_positives']").inner_text()
        == f"{a['generic']['false_positives']} → {a['team']['false_positives']}"
    )
    assert f"{listed['params']['labels']['items']} items" in row.inner_text()
    # its full report, per aspect included
    row.locator(f"[data-detail='{name}']").click()
    expect(page.locator(f"#md-report[data-model='{name}'] #md-report-table")).to_be_visible()

    # an analyst may not promote: the API's refusal is shown, nothing changes
    row.locator(f"[data-promote='{name}']").click()
    expect(page.locator("#md-error")).to_contain_text("Your role cannot do this")
    assert _api(dash, "GET", "/models", keys["analyst"])["serving"]["model"] == "generic"
    _expect_refused(tprobe, 403, "/promote")
    assert not tprobe.errors and not tprobe.failed and not tprobe.foreign, (
        tprobe.errors,
        tprobe.failed,
    )

    # an admin promotes it (past the refusal when its report is worse than generic's)
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
    admin = PageProbe(ctx.new_page(), server.url)
    page = admin.open("/dashboard/models", keys["admin"])
    page.locator(f"#md-table [data-promote='{name}']").click()
    full = _api(dash, "GET", f"/models/{name}", keys["admin"])["report"]
    if quality_gap(full):
        expect(page.locator("#md-error")).to_contain_text("worse than the generic model")
        _expect_refused(admin, 409, "/promote")
        page.locator("#md-force").click()
    # promoting loads the team model and fits its tagger (encodes the taxonomy) before it
    # answers: seconds on a loaded 2-core machine, past the default 5 s wait
    expect(page.locator("#md-serving-model")).to_have_attribute("data-model", name, timeout=30_000)
    serving = _api(dash, "GET", "/models", keys["admin"])["serving"]
    assert serving["model"] == name and serving["model_version"] != serving["generic_version"]
    assert page.locator(f"#md-table tr[data-model='{name}'] .badge.serving").count() == 1
    # the Label page now compares this model with the generic one
    page.goto(f"{server.url}/dashboard/label")
    admin.ready()
    assert (
        name in page.locator("#lb-quality").inner_text()
        and page.locator("#lb-quality-table").count() == 1
    )
    # roll back: the generic model serves again
    page.goto(f"{server.url}/dashboard/models")
    admin.ready()
    page.locator("#md-rollback").click()
    expect(page.locator("#md-serving-model")).to_have_attribute(
        "data-model", "generic", timeout=30_000
    )
    assert _api(dash, "GET", "/models", keys["admin"])["serving"]["model"] == "generic"
    admin.clean()
    ctx.close()
