"""Charts for the email digest: valid PNGs of the promised size, deterministic bytes, the
breach marked where the series leaves the forecast band, and no missing-glyph warnings in
either language (with or without a CJK font)."""

from __future__ import annotations

import io
import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from matplotlib.image import imread

from service.delivery import charts
from service.delivery.charts import (
    alert_chart,
    benchmark_chart,
    breach_indexes,
    cjk_font,
    region_sentiment_chart,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
START = datetime(2026, 5, 4, tzinfo=UTC)  # a Monday
BREACH_RGB = np.array([0xD6, 0x27, 0x28]) / 255


def step_alert(
    before: int = 20,
    after: int = 4,
    p0: float = 0.1,
    p1: float = 0.4,
    items: int = 200,
    key: str = "negative_mentions",
    zero: tuple[int, ...] = (),
    onset: int | None = None,
) -> dict:
    """A series alert with a known step: ``before`` weeks at ``p0`` of ``items`` items, then
    ``after`` weeks at ``p1`` (counts exact, no noise, except a small wobble so the history
    is not constant); periods in ``zero`` have no items."""
    series = []
    for i in range(before + after):
        n = 0 if i in zero else items
        p = p0 if i < before else p1
        wobble = (i % 3 - 1) * 0.01 if i < before else 0.0
        series.append(
            {
                "period": (START + timedelta(weeks=i)).isoformat(),
                "items": n,
                key: int(round(n * max(p + wobble, 0))),
            }
        )
    at = before if onset is None else onset
    return {
        "id": 3,
        "type": "preference_shift",
        "severity": "L2",
        "title": "taste complaints rising in East × 18-24 (spicewell)",
        "metric": "phrase_rate" if key == "matches" else "negative_mention_rate",
        "onset": series[min(at, len(series) - 1)]["period"],
        "baseline": p0,
        "observed": p1,
        "details": {
            "series": series,
            "detection": {
                "kind": "interval_breach",
                "direction": 1,
                "onset": at,
                "detected_at": before + after - 1,
                "baseline": p0,
                "observed": p1,
            },
        },
    }


def decode(png: bytes) -> np.ndarray:
    assert png[:8] == PNG_SIGNATURE
    return imread(io.BytesIO(png), format="png")


def assert_size(png: bytes, width: int, height: int) -> np.ndarray:
    img = decode(png)
    assert abs(img.shape[1] - width) <= 2 and abs(img.shape[0] - height) <= 2, img.shape
    return img


def red_pixels(img: np.ndarray) -> int:
    """Pixels of the breach colour (the breach markers and their legend entry)."""
    return int((np.abs(img[..., :3] - BREACH_RGB).max(axis=-1) < 0.06).sum())


def render_quietly(fn, *args, **kwargs):
    """Call ``fn`` with every warning recorded; fail on any missing-glyph warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    glyphs = [
        str(w.message)
        for w in caught
        if "Glyph" in str(w.message) or "missing from font" in str(w.message)
    ]
    assert not glyphs, glyphs
    return out, caught


@pytest.fixture
def no_cjk_font(monkeypatch):
    """Pretend no CJK font is installed (the cache is per process)."""
    monkeypatch.setattr(charts, "_cjk_cache", [None])


# --- breach helper --------------------------------------------------------------------------


def test_breach_indexes_above_the_upper_bound():
    observed = [0.10, 0.30, None, 0.25, 0.50, float("nan")]
    lower = [0.05, 0.05, 0.05, 0.05, 0.05, 0.05]
    upper = [0.20, 0.20, 0.20, 0.25, 0.30, 0.30]
    # 0.25 equals its bound (not above); None and NaN are periods without items.
    assert breach_indexes(observed, lower, upper) == [1, 4]


def test_breach_indexes_below_for_a_fall_and_empty_cases():
    assert breach_indexes([0.01, 0.2, 0.03], [0.05, 0.05, 0.05], [0.3, 0.3, 0.3], direction=-1) == [
        0,
        2,
    ]
    assert breach_indexes([], [], []) == []
    assert breach_indexes([0.1, 0.2], [0.0, 0.0], [0.5, 0.5]) == []
    with pytest.raises(ValueError):
        breach_indexes([0.1, 0.2], [0.0], [0.5])


# --- alert chart ----------------------------------------------------------------------------


def test_alert_chart_is_a_640x260_png_with_the_breach_marked():
    png, caught = render_quietly(alert_chart, step_alert())
    img = assert_size(png, 640, 260)
    assert img[0, 0, :3].tolist() == [1.0, 1.0, 1.0]  # white background
    assert red_pixels(img) > 50
    assert not caught, [str(w.message) for w in caught]


def test_no_breach_no_red():
    flat = step_alert(p1=0.1)
    img = assert_size(alert_chart(flat), 640, 260)
    assert red_pixels(img) == 0


def test_alert_chart_is_deterministic():
    alert = step_alert()
    assert alert_chart(alert) == alert_chart(alert)
    assert alert_chart(alert, language="zh") == alert_chart(alert, language="zh")


def test_phrase_alert_uses_matches():
    alert = step_alert(key="matches", p0=0.03, p1=0.15, items=120)
    assert "negative_mentions" not in alert["details"]["series"][0]
    img = assert_size(alert_chart(alert), 640, 260)
    assert red_pixels(img) > 50


@pytest.mark.parametrize(
    "alert",
    [
        {"id": 1, "type": "crisis_spike", "details": {"p_value": 0.001, "window_hours": 6}},
        {"id": 2, "type": "severe_complaint", "details": {"quotes": []}},
        {
            "id": 3,
            "type": "threshold",
            "details": {"period": "2026-09-14T00:00:00+00:00", "mentions": 9},
        },
        {"id": 4, "type": "preference_shift", "details": {}},
        {"id": 5, "type": "preference_shift"},
    ],
)
def test_alerts_without_a_series_have_no_chart(alert):
    assert alert_chart(alert) is None


def test_too_short_or_empty_series_have_no_chart():
    three = step_alert(before=2, after=1)
    assert len(three["details"]["series"]) == 3
    assert alert_chart(three) is None
    no_items = step_alert(zero=tuple(range(24)))
    assert alert_chart(no_items) is None
    broken = step_alert()
    broken["details"]["series"][5]["period"] = "not a date"
    assert alert_chart(broken) is None


@pytest.mark.parametrize("before", [1, 2, 3])
def test_short_history_still_draws(before):
    """Fewer than 3 observed periods before the onset: the baseline line instead of a band
    (no breach to mark); 3 periods: a band from the forecast's fallback."""
    png, caught = render_quietly(alert_chart, step_alert(before=before, after=3))
    img = assert_size(png, 640, 260)
    if before < 3:
        assert red_pixels(img) == 0
    assert not caught, [str(w.message) for w in caught]


def test_zero_item_periods_are_gaps():
    # gaps before the onset (3 and 4), right at the onset and after it
    alert = step_alert(zero=(3, 4, 20, 22))
    png, caught = render_quietly(alert_chart, alert)
    img = assert_size(png, 640, 260)
    assert red_pixels(img) > 0  # periods 21 and 23 still breach
    assert not caught, [str(w.message) for w in caught]
    # only two observed periods before the onset: the baseline fallback
    sparse = step_alert(before=6, after=2, zero=(0, 1, 2, 3))
    assert_size(render_quietly(alert_chart, sparse)[0], 640, 260)


def test_onset_at_the_last_period_and_onset_from_the_timestamp():
    last = step_alert(before=23, after=1)
    assert_size(alert_chart(last), 640, 260)
    no_index = step_alert()
    del no_index["details"]["detection"]
    assert alert_chart(no_index) == alert_chart(step_alert())


@pytest.mark.parametrize("language", ["en", "zh"])
def test_languages_render_without_warnings(language):
    png, caught = render_quietly(alert_chart, step_alert(), language=language)
    assert_size(png, 640, 260)
    assert not caught, [str(w.message) for w in caught]


def test_chinese_labels_differ_from_english_when_a_cjk_font_exists():
    if cjk_font() is None:
        pytest.skip("no CJK font installed here")
    assert alert_chart(step_alert(), language="zh") != alert_chart(step_alert(), language="en")


def test_chinese_falls_back_to_english_without_a_cjk_font(no_cjk_font):
    assert charts._labels("zh") == charts.LABELS["en"]
    zh, caught = render_quietly(alert_chart, step_alert(), language="zh")
    assert not caught, [str(w.message) for w in caught]
    assert zh == render_quietly(alert_chart, step_alert(), language="en")[0]
    rows = [
        {"region": "华东", "items": 10, "net_sentiment": -0.4, "lower": None, "upper": None},
        {"region": "East 东", "items": 12, "net_sentiment": 0.3, "lower": 0.1, "upper": 0.5},
    ]
    png, caught = render_quietly(region_sentiment_chart, rows, language="zh")
    assert_size(png, 640, decode(png).shape[0])
    assert not caught, [str(w.message) for w in caught]


def test_cjk_font_draws_chinese_and_is_cached():
    name = cjk_font()
    assert cjk_font() == name
    if name is None:
        pytest.skip("no CJK font installed here")
    font = charts._font(name)
    assert font is not None and all(font.get_char_index(ord(ch)) for ch in "预期区间净情感")


def test_labels_drop_what_no_font_can_draw():
    base = [charts.BASE_FONT]
    assert charts._drawable("华东 East", base) == "East"
    assert charts._drawable("华东", base) == "?"
    assert charts._drawable("a\x00b\nc", base) == "ab c"
    long = charts._drawable("x" * 60, base)
    assert len(long) == charts.MAX_LABEL and long.endswith("…")


def test_charts_are_thread_safe():
    alerts = [step_alert(p1=p) for p in (0.3, 0.4, 0.5)]
    serial = [alert_chart(a) for a in alerts]
    with ThreadPoolExecutor(max_workers=3) as pool:
        parallel = list(pool.map(alert_chart, alerts * 2))
    assert parallel == serial * 2


# --- bar charts -----------------------------------------------------------------------------


def regions(n: int) -> list[dict]:
    out = []
    for i in range(n):
        v = math.sin(i + 1) * 0.8
        out.append(
            {
                "region": f"Region {i}",
                "items": 20 + 7 * i,
                "net_sentiment": v,
                "lower": max(v - 0.15, -1) if i % 2 else None,
                "upper": min(v + 0.15, 1) if i % 2 else None,
            }
        )
    return out


def test_region_chart_decodes_and_grows_with_rows():
    assert region_sentiment_chart([]) is None
    heights = []
    for n in (1, 4, 12):
        png, caught = render_quietly(region_sentiment_chart, regions(n))
        img = decode(png)
        assert abs(img.shape[1] - 640) <= 2
        heights.append(img.shape[0])
        assert not caught, [str(w.message) for w in caught]
    assert heights[0] < heights[1] < heights[2] <= 900
    assert region_sentiment_chart(regions(6)) == region_sentiment_chart(list(reversed(regions(6))))
    small = [
        {"region": r, "items": 50, "net_sentiment": v, "lower": None, "upper": None}
        for r, v in (("East", -0.08), ("West", -0.02))
    ]
    assert decode(region_sentiment_chart(small, language="zh")).shape[1] == 640


def test_region_chart_limits_include_zero_and_stay_tight_for_small_values():
    left, right, full = charts._sentiment_limits([-0.1, -0.05], end_labels=True)
    assert left < -0.1 and right > 0 and not full and right - left < 0.6
    left, right, full = charts._sentiment_limits([0.9, -0.2], end_labels=True)
    assert full and left < -1 and right > 1


def benchmark_rows(aspects: int, brands: int = 3) -> list[dict]:
    names = ["spicewell", "rival A", "rival B", "rival C"][:brands]
    return [
        {
            "aspect": f"aspect {a}",
            "brand": b,
            "net_sentiment": round(0.2 * (a - j) % 1.2 - 0.6, 2),
            "lower": None if j == 1 else -0.7,
            "upper": None if j == 1 else 0.7,
        }
        for a in range(aspects)
        for j, b in enumerate(names)
    ]


def test_benchmark_chart_decodes_and_grows_with_rows():
    assert benchmark_chart([]) is None
    heights = []
    for n in (1, 3, 6):
        png, caught = render_quietly(benchmark_chart, benchmark_rows(n), language="zh")
        img = decode(png)
        assert abs(img.shape[1] - 640) <= 2
        heights.append(img.shape[0])
        assert not caught, [str(w.message) for w in caught]
    assert heights[0] < heights[1] < heights[2]
    rows = benchmark_rows(4)
    assert benchmark_chart(rows) == benchmark_chart(rows)
    missing = [r for r in rows if not (r["brand"] == "rival B" and r["aspect"] == "aspect 2")]
    assert decode(benchmark_chart(missing)).shape[1] == 640


DOLLAR_NAMES = ["$\\invalidcmd$", "price $5 or $6", "$x^2$"]


def test_names_from_the_data_are_drawn_as_text_not_mathtext():
    """Issue 20: matplotlib reads text between two dollars as mathtext; a region, brand or
    aspect named like one stopped the chart (unknown symbol) or lost its dollars."""
    from matplotlib.text import Text

    rows = [
        {"region": name, "items": 30, "net_sentiment": v, "lower": None, "upper": None}
        for name, v in zip(DOLLAR_NAMES, (-0.4, 0.1, 0.5))
    ]
    png, _ = render_quietly(region_sentiment_chart, rows)
    assert abs(decode(png).shape[1] - 640) <= 2
    bench = [
        {"aspect": aspect, "brand": brand, "net_sentiment": 0.1, "lower": None, "upper": None}
        for aspect in DOLLAR_NAMES
        for brand in ("spicewell", DOLLAR_NAMES[0])
    ]
    png, _ = render_quietly(benchmark_chart, bench)
    assert abs(decode(png).shape[1] - 640) <= 2
    for name in DOLLAR_NAMES:  # what the label holds is drawn as plain text, dollars and all
        label = charts._drawable(name, charts._families())
        assert Text(text=label)._preprocess_math(label) == (name, False)
