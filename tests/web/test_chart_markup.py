"""Issue 20: data is text in the charts. Plotly reads a subset of HTML in category labels, axis
ticks, legends and hover text (``<a href>`` becomes a link, ``<b>``/``<br>`` change the text), so a
product named ``<a href="…">`` would become a clickable link in the Segments heat map. The
dashboard escapes what comes from data before handing it to Plotly; here a small store of its
own (a keyword scorer that tags taste, so that the heat map has a column) is served on loopback
and the heat map is read back from headless Chromium."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from service.domain import AspectScore
from service.nlp.pipeline import ScoredText
from tests.conftest import FakeScorer
from tests.web.conftest import LiveServer, PageProbe

EVIL = '<a href="https://evil.example/x?a=1&b=2">pwn</a>'
BOLD = '<b>Bold</b> & <i>it\'s</i> "quoted"'
PLAIN = "Plain Noodles"


class TastyScorer(FakeScorer):
    """FakeScorer's keyword sentiment, and every item tagged with taste."""

    version = "fake-taste-1"

    def score(self, texts, languages=None):
        out = []
        for text, st in zip(texts, super().score(texts, languages)):
            s = st.score
            taste = AspectScore(
                aspect="taste",
                confidence=0.9,
                sentiment=s.sentiment,
                sentiment_score=s.sentiment_score,
                evidence=text[:40],
            )
            out.append(ScoredText(s.model_copy(update={"aspects": [taste]}), st.embedding))
        return out


@pytest.fixture(scope="module")
def markup_dashboard(tmp_path_factory):
    from service.api.app import create_app
    from service.config import Settings
    from service.runtime import Runtime
    from service.store import access

    db = tmp_path_factory.mktemp("markup-web") / "radar.db"
    rt = Runtime(
        Settings(
            database_url=f"sqlite:///{db}", api={"auth": True, "rate_limit_per_minute": 100_000}
        ),
        scorer=TastyScorer(),
    )
    with rt.sessions() as s:
        key = access.create_key(s, role="admin", actor="markup-test")[1]
    now = datetime.now(UTC).replace(microsecond=0)
    texts = [
        "great taste, love it",
        "bad taste, too salty",
        "good flavour",
        "bad bad soup",
        "taste is fine",
    ]
    items = [
        {
            "source": "web",
            "channel": "review",
            "external_id": f"{p[:3]}-{i}",
            "text": f"{text} #{i}",
            "created_at": (now - timedelta(days=1 + i)).isoformat(),
            "product": p,
            "region": "East",
            "attributes": {"age_group": "18-24"},
        }
        for p in (EVIL, BOLD, PLAIN)
        for i, text in enumerate(texts)
    ]
    with LiveServer(create_app(runtime=rt)) as server:
        r = httpx.post(
            server.url + "/v1/feedback",
            json={"items": items},
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
        )
        r.raise_for_status()
        assert r.json()["created"] == len(items), r.json()
        yield server, key
    rt.close()


def test_a_product_named_with_markup_is_text_in_the_heat_map(browser, markup_dashboard):
    server, key = markup_dashboard
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
    try:
        probe = PageProbe(ctx.new_page(), server.url)
        page = probe.open("/dashboard/segments?dimension=product", key)
        page.wait_for_selector("#chart-heat[data-rendered='1']")
        heat = page.locator("#chart-heat")
        ticks = heat.locator(".ytick text").all_text_contents()
        assert sorted(ticks) == sorted([EVIL, BOLD, PLAIN])  # shown as written, every character
        assert heat.locator("a").count() == 0  # no link anywhere in the chart
        assert (
            heat.locator(".ytick text b, .ytick text i, .ytick tspan[style*='bold']").count() == 0
        )
        # the hover label of the markup row's cell (the mouse on it): the product as text, no link
        tick = heat.locator(".ytick text").nth(ticks.index(EVIL)).bounding_box()
        plot = heat.locator(".nsewdrag").first.bounding_box()
        page.mouse.move(plot["x"] + plot["width"] / 2, tick["y"] + tick["height"] / 2)
        page.wait_for_function(
            "() => document.querySelector('#chart-heat .hoverlayer').textContent.length > 0"
        )
        hover = heat.locator(".hoverlayer").text_content()
        assert EVIL in hover and "Taste" in hover, hover
        assert heat.locator("a").count() == 0
        # the table beside it says the same, as text
        assert page.locator(f"[data-segment='{EVIL}'] td").first.text_content() == EVIL
        assert page.locator("main a[href^='https://evil.example']").count() == 0
        probe.clean()
    finally:
        ctx.close()


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/",
        "/dashboard/trends?aspect=taste",
        "/dashboard/segments?dimension=product&dimension=region",
        "/dashboard/themes",
        "/dashboard/competitors",
        "/dashboard/explorer?aspect=taste",
    ],
)
def test_every_chart_draws_escaped_data_without_errors(browser, markup_dashboard, path):
    """Each page's charts go through the same escaping; none breaks or links out."""
    server, key = markup_dashboard
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
    try:
        probe = PageProbe(ctx.new_page(), server.url)
        page = probe.open(path, key)
        assert page.locator(".chart a, .chart b, .chart i").count() == 0
        assert "&#" not in " ".join(
            page.locator(".chart").all_text_contents()
        )  # no entity shows as such
        probe.clean()
    finally:
        ctx.close()
