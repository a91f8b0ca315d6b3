"""PNG charts for the email digest: small, crisp images that are embedded inline in HTML mail.

Every chart is drawn on a ``matplotlib.figure.Figure`` with its own ``FigureCanvasAgg``:
pyplot keeps global state (the current figure, a GUI backend), which is neither thread-safe
nor wanted on a server, so it is never imported. Nothing here changes ``rcParams``; fonts and
colours are passed to each artist instead.

Sizes are fixed in pixels (inches × 100 dpi, no ``bbox_inches="tight"``): about 640 px wide,
so a chart fits the usual 600 px mail column when scaled to ``width: 100%``. There is no title
inside the image; the email carries it in HTML, where it is translatable and accessible.

Output is deterministic: the same input gives the same bytes (the forecast is seeded, and the
PNG carries no software version or date), so a digest can be tested and cached by content.

Fonts. Chinese labels need a CJK font (``cjk_font``). Where none is installed the Chinese
chart labels fall back to English, and characters of data labels (region, aspect, brand
names) that no available font can draw are dropped, so a chart never shows "tofu" boxes.
"""

from __future__ import annotations

import io
import math
import re
import threading
import unicodedata
import warnings
from datetime import datetime
from types import SimpleNamespace

import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import date2num
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, PercentFormatter

from service.analytics.forecast import forecast

# Every label we draw is checked against the fonts first, so this warning should never fire;
# the filter only keeps a stray one (a glyph we did not foresee) out of the logs. It is set
# once at import: ``warnings.catch_warnings`` per chart would not be thread-safe.
warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from (current )?font")

DPI = 100
WIDTH_IN = 6.4
ALERT_HEIGHT_IN = 2.6
MIN_PERIODS = 4  # an alert series shorter than this is not worth a picture
MIN_HISTORY = 3  # observed periods before the onset needed to fit a forecast band
MAX_BARS = 30  # rows of a bar chart at most (the ones with the most items are kept)
MAX_LABEL = 28  # characters of a data label (region, aspect, brand) at most
LABEL_MARGIN = 0.26  # net-sentiment units beyond ±1 kept free for the "n=…" labels
BASE_FONT = "DejaVu Sans"  # bundled with matplotlib, so always present

# Families that draw Chinese, best first (Linux, macOS and Windows names).
KNOWN_CJK = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Microsoft YaHei",
    "PingFang SC",
    "Hiragino Sans GB",
    "Heiti SC",
    "STHeiti",
    "SimHei",
    "Noto Sans CJK TC",
    "Noto Sans CJK JP",
    "Source Han Sans TC",
    "Source Han Sans",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "AR PL UKai CN",
    "SimSun",
    "Arial Unicode MS",
)
_CJK_FILE = re.compile(
    r"cjk|wqy|wenquan|sourcehan|source-han|droidsansfallback|yahei|msyh|simhei|"
    r"simsun|pingfang|hiragino|heiti|stheiti|uming|ukai|notosanssc|notoserifsc",
    re.IGNORECASE,
)
# What a CJK font must draw to be used: the Chinese labels below and the date format.
_CJK_PROBE = "实际预期区间超出起点基线净情感年月日时（）"

COLORS = {
    "observed": "#1f4e79",
    "band": "#a6c8e6",
    "mean": "#2b6cb0",
    "breach": "#d62728",
    "onset": "#555555",
    "baseline": "#7f7f7f",
    "negative": "#d9534f",
    "positive": "#3c9a5f",
    "neutral": "#9e9e9e",
    "grid": "#e6e6e6",
    "text": "#333333",
    "spine": "#bbbbbb",
}
BRAND_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
)  # no red or green: those mean "negative" and "positive" here

LABELS = {
    "en": {
        "observed": "observed",
        "expected": "expected ({level}% band)",
        "breach": "breach",
        "onset": "onset",
        "baseline": "baseline",
        "net_sentiment": "net sentiment",
    },
    "zh": {
        "observed": "实际",
        "expected": "预期（{level}%区间）",
        "breach": "超出区间",
        "onset": "起点",
        "baseline": "基线",
        "net_sentiment": "净情感",
    },
}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# --- fonts ----------------------------------------------------------------------------------

_font_lock = threading.Lock()
_cjk_cache: list[str | None] = []  # empty until looked up; then [family or None]


def cjk_font() -> str | None:
    """The family name of an installed font that draws Chinese, or ``None``.

    Known families are tried first, then any font whose file name suggests CJK. A font that
    matplotlib's cached font list does not know yet (installed after the cache was built) is
    added from the system font folders. Each candidate must really draw the Chinese chart
    labels. The answer is cached for the life of the process.
    """
    with _font_lock:
        if not _cjk_cache:
            _cjk_cache.append(_find_cjk_font())
        return _cjk_cache[0]


def _find_cjk_font() -> str | None:
    found = _cjk_in_font_list()
    if found:
        return found
    known = {str(getattr(e, "fname", "")) for e in font_manager.fontManager.ttflist}
    added = False
    try:
        paths = font_manager.findSystemFonts()
    except Exception:  # noqa: BLE001 - no system font folders: no CJK font
        paths = []
    for path in sorted(paths):
        if path not in known and _CJK_FILE.search(path.rsplit("/", 1)[-1]):
            try:
                font_manager.fontManager.addfont(path)
                added = True
            except Exception:  # noqa: BLE001 - an unreadable font file is skipped
                continue
    return _cjk_in_font_list() if added else None


def _cjk_in_font_list() -> str | None:
    entries = font_manager.fontManager.ttflist
    names = {e.name for e in entries}
    candidates = [name for name in KNOWN_CJK if name in names]
    candidates += sorted(
        {
            e.name
            for e in entries
            if _CJK_FILE.search(str(e.fname).rsplit("/", 1)[-1]) and e.name not in candidates
        }
    )
    for name in candidates:
        if all(_has_glyph(name, ch) for ch in _CJK_PROBE):
            return name
    return None


def _has_glyph(family: str, ch: str) -> bool:
    font = _font(family)
    return font is not None and font.get_char_index(ord(ch)) != 0


def _font(family: str):
    """matplotlib's (cached, per-thread) FT2Font for a family, or ``None`` if not installed."""
    try:
        return font_manager.get_font(
            font_manager.findfont(FontProperties(family=family), fallback_to_default=False)
        )
    except Exception:  # noqa: BLE001 - not installed or unreadable
        return None


def _families() -> list[str]:
    """Font fallback list for every text: Latin from DejaVu Sans, Chinese from the CJK font."""
    cjk = cjk_font()
    return [BASE_FONT, cjk] if cjk else [BASE_FONT]


def _labels(language: str) -> dict[str, str]:
    """Chart labels in ``language``; Chinese only where a CJK font can draw it."""
    return LABELS["zh"] if _is_zh(language) and cjk_font() else LABELS["en"]


def _is_zh(language: str) -> bool:
    return str(language or "").lower().startswith("zh") and cjk_font() is not None


def _drawable(text: object, families: list[str]) -> str:
    """``text`` cleaned for a label: control characters and characters that none of the
    fonts can draw are dropped (never tofu), long names are shortened with an ellipsis, and
    every ``$`` is escaped: matplotlib reads text between two dollars as mathtext, so a name
    from the data such as ``$\\foo$`` would stop the chart (an unknown symbol) and
    ``price $5 or $6`` would lose its dollars."""
    fonts = [f for f in (_font(name) for name in families) if f is not None]
    out = []
    for ch in str(text if text is not None else ""):
        if ch.isspace():
            out.append(" ")
        elif unicodedata.category(ch)[0] == "C":
            continue
        elif any(f.get_char_index(ord(ch)) != 0 for f in fonts):
            out.append(ch)
    label = " ".join("".join(out).split())
    if len(label) > MAX_LABEL:
        label = label[: MAX_LABEL - 1].rstrip() + "…"
    return label.replace("$", r"\$") or "?"


# --- figure plumbing ------------------------------------------------------------------------


def _figure(height_in: float) -> tuple[Figure, object]:
    fig = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_facecolor("white")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(COLORS["spine"])
    ax.tick_params(labelsize=8, colors=COLORS["text"], labelfontfamily=_families(), length=3)
    return fig, ax


def _png(fig: Figure) -> bytes:
    """Tight layout inside the fixed canvas, PNG without version or date metadata."""
    fig.tight_layout(pad=0.4)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})
    return buf.getvalue()


def _font_props(size: float = 8) -> FontProperties:
    return FontProperties(family=_families(), size=size)


def _legend_above(ax, *handles_and_labels, ncol: int, handlelength: float) -> None:
    """A frameless legend of ``ncol`` columns just above the plot, from its left edge
    (``handles_and_labels``: as ``Axes.legend`` takes them; none: the labelled artists)."""
    ax.legend(
        *handles_and_labels,
        loc="lower left",
        bbox_to_anchor=(0, 1.0),
        ncol=ncol,
        frameon=False,
        prop=_font_props(8),
        handlelength=handlelength,
        columnspacing=1.4,
        borderaxespad=0.2,
        labelcolor=COLORS["text"],
    )


# --- alert chart ----------------------------------------------------------------------------


def breach_indexes(observed, lower, upper, *, direction: int = 1) -> list[int]:
    """Indexes of the observed values outside the forecast band on the alert's side.

    ``observed``, ``lower`` and ``upper`` are aligned (same periods); missing observations
    (``None``/NaN, e.g. periods without items) are never a breach. ``direction=1`` (a rise,
    the default) returns the values above ``upper``; ``direction=-1`` those below ``lower``.
    """
    y = np.asarray([np.nan if v is None else v for v in observed], dtype=float)
    lo = np.asarray(lower, dtype=float)
    hi = np.asarray(upper, dtype=float)
    if not (y.shape == lo.shape == hi.shape):
        raise ValueError(
            f"observed, lower and upper differ in length: {y.size}, {lo.size}, {hi.size}"
        )
    with np.errstate(invalid="ignore"):
        outside = y < lo if direction < 0 else y > hi
    return [int(i) for i in np.flatnonzero(outside & np.isfinite(y))]


def _parse_series(alert: dict) -> tuple[list[datetime], np.ndarray, np.ndarray] | None:
    """``(periods, items, hits)`` from ``details["series"]``, or ``None`` if it is missing,
    too short or malformed."""
    details = alert.get("details") if isinstance(alert, dict) else None
    series = details.get("series") if isinstance(details, dict) else None
    if not isinstance(series, list) or len(series) < MIN_PERIODS:
        return None
    key = (
        "matches"
        if any(isinstance(p, dict) and "matches" in p for p in series)
        else "negative_mentions"
    )
    periods, items, hits = [], [], []
    try:
        for p in series:
            periods.append(datetime.fromisoformat(str(p["period"]).replace("Z", "+00:00")))
            n = max(int(p.get("items") or 0), 0)
            items.append(n)
            hits.append(min(max(int(p.get(key) or 0), 0), n))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return periods, np.asarray(items, dtype=float), np.asarray(hits, dtype=float)


def _onset_index(alert: dict, periods: list[datetime]) -> int | None:
    """The detection's onset index (clamped to the series), else the first period at or after
    ``alert["onset"]``, else ``None``."""
    detection = (alert.get("details") or {}).get("detection") or {}
    onset = detection.get("onset")
    if isinstance(onset, (int, float)) and not isinstance(onset, bool) and math.isfinite(onset):
        return int(min(max(int(onset), 0), len(periods) - 1))
    if alert.get("onset"):
        try:
            at = datetime.fromisoformat(str(alert["onset"]).replace("Z", "+00:00"))
            later = [i for i, p in enumerate(periods) if date2num(p) >= date2num(at)]
            return later[0] if later else None
        except (TypeError, ValueError):
            return None
    return None


def _date_label(d: datetime, zh: bool, hourly: bool, with_year: bool) -> str:
    if zh:
        text = f"{d.month}月{d.day}日" + (f"{d.hour}时" if hourly else "")
        return f"{d.year}年{text}" if with_year else text
    text = f"{MONTHS[d.month - 1]} {d.day}" + (f" {d.hour:02d}:00" if hourly else "")
    return f"{text} {d.year}" if with_year else text


def _date_ticks(periods: list[datetime], anchor: int, zh: bool) -> tuple[list[int], list[str]]:
    """Indexes and labels of at most 7 (hourly: 5) evenly spaced periods, one of them the
    onset (``anchor``); the year is shown on the first tick and where it changes, if the
    series spans more than one year. Labels are built by hand: ``strftime("%b")`` follows
    the process locale."""
    n = len(periods)
    hourly = n > 1 and (date2num(periods[-1]) - date2num(periods[0])) / (n - 1) < 0.99
    most = 5 if hourly else 7
    step = max(1, math.ceil(n / most))
    idx = sorted(i for i in range(anchor % step, n, step))
    years = {p.year for p in periods}
    labels, last_year = [], None
    for i in idx:
        d = periods[i]
        labels.append(_date_label(d, zh, hourly, len(years) > 1 and d.year != last_year))
        last_year = d.year
    return idx, labels


def _stored_band(alert: dict, n: int):
    """The band stored with the alert when it was detected (``details.band``,
    ``service.analytics.shifts.expected_band``), as arrays; None when it has none."""

    stored = (alert.get("details") or {}).get("band")
    if not isinstance(stored, list) or len(stored) != n:
        return None
    try:
        lo = np.array([np.nan if b.get("lower") is None else float(b["lower"]) for b in stored])
        hi = np.array([np.nan if b.get("upper") is None else float(b["upper"]) for b in stored])
        mean = np.array(
            [np.nan if b.get("expected") is None else float(b["expected"]) for b in stored]
        )
    except (TypeError, ValueError, AttributeError):
        return None
    return SimpleNamespace(lower=lo, upper=hi, mean=mean) if np.isfinite(hi).any() else None


def alert_chart(
    alert: dict, *, language: str = "en", alpha: float = 0.05, seed: int = 0
) -> bytes | None:
    """A 640×260 px PNG of a series alert's per-period rate against what was expected.

    The rate is ``matches`` (phrase alerts) or ``negative_mentions`` over ``items`` per
    period; periods without items are gaps, not 0 %. The expected band is the one stored with
    the alert at detection (``details.band``: the detector's expected rate ± 1.96 binomial
    standard errors per period), the same band the dashboard draws; the observed points after
    the onset outside it on the alert's side are marked as the breach, and a vertical line marks
    the onset. An alert stored before bands were gets ``forecast()`` (``kind="proportion"``)
    fitted on the periods before its onset; with fewer than 3 observed periods there, the
    alert's ``baseline`` is drawn as a horizontal line instead.

    ``None`` when the alert has no series (spikes, severe complaints, thresholds), fewer
    than 4 periods, no period with items, or a malformed series.
    """
    parsed = _parse_series(alert)
    if parsed is None:
        return None
    periods, items, hits = parsed
    if not np.any(items > 0):
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(items > 0, hits / np.where(items > 0, items, 1), np.nan)
    x = np.asarray([date2num(p) for p in periods], dtype=float)
    step = float(np.median(np.diff(x))) if len(x) > 1 else 7.0
    onset = _onset_index(alert, periods)
    zh = _is_zh(language)
    text = _labels(language)
    level = f"{100 * (1 - alpha):g}"
    direction = int(((alert.get("details") or {}).get("detection") or {}).get("direction") or 1)

    band, start = _stored_band(alert, len(periods)), 0
    if band is None and onset is not None and int(np.sum(items[:onset] > 0)) >= MIN_HISTORY:
        start = onset  # an alert stored before bands were: the forecast from its own history
        try:
            fc = forecast(
                hits[:onset],
                len(periods) - onset,
                kind="proportion",
                trials=items[:onset],
                alpha=alpha,
                seed=seed,
            )
            if np.all(np.isfinite(fc.lower)) and np.all(np.isfinite(fc.upper)) and len(fc.mean):
                band = fc
        except ValueError:
            band = None

    fig, ax = _figure(ALERT_HEIGHT_IN)
    handles: list = []
    names: list[str] = []
    top = float(np.nanmax(rate))

    if band is not None:
        bx = x[start:]
        lo, hi, mean = band.lower, band.upper, band.mean
        if len(bx) == 1:  # one period: show the band as wide as the period
            bx = np.array([bx[0] - step / 2, bx[0] + step / 2])
            lo, hi, mean = np.repeat(lo, 2), np.repeat(hi, 2), np.repeat(mean, 2)
        ax.fill_between(bx, lo, hi, color=COLORS["band"], alpha=0.6, linewidth=0, zorder=1)
        ax.plot(bx, mean, color=COLORS["mean"], linestyle="--", linewidth=1.2, zorder=2)
        handles.append(
            (
                Patch(facecolor=COLORS["band"], alpha=0.6, linewidth=0),
                Line2D([], [], color=COLORS["mean"], linestyle="--", linewidth=1.2),
            )
        )
        names.append(text["expected"].format(level=level))
        top = max(top, float(np.nanmax(band.upper)))
    elif alert.get("baseline") is not None:
        baseline = float(alert["baseline"])
        ax.axhline(baseline, color=COLORS["baseline"], linestyle="--", linewidth=1.2, zorder=2)
        handles.append(Line2D([], [], color=COLORS["baseline"], linestyle="--", linewidth=1.2))
        names.append(text["baseline"])
        top = max(top, baseline)

    (observed_line,) = ax.plot(
        x, rate, color=COLORS["observed"], linewidth=1.6, marker="o", markersize=3, zorder=3
    )
    handles.insert(0, observed_line)
    names.insert(0, text["observed"])

    if band is not None and onset is not None:
        off = onset - start
        hit = [
            onset + i
            for i in breach_indexes(
                rate[onset:], band.lower[off:], band.upper[off:], direction=direction
            )
        ]
        if hit:
            ax.plot(
                x[hit],
                rate[hit],
                linestyle="none",
                marker="o",
                markersize=6,
                markerfacecolor=COLORS["breach"],
                markeredgecolor="white",
                markeredgewidth=0.8,
                zorder=4,
            )
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker="o",
                    markersize=6,
                    markerfacecolor=COLORS["breach"],
                    markeredgecolor="white",
                )
            )
            names.append(text["breach"])

    if onset is not None:
        ax.axvline(x[onset], color=COLORS["onset"], linestyle=":", linewidth=1.2, zorder=2)
        handles.append(Line2D([], [], color=COLORS["onset"], linestyle=":", linewidth=1.2))
        names.append(text["onset"])

    top = max(top, 0.01)
    ax.set_ylim(0, min(top * 1.15, 1.04))
    ax.set_xlim(x[0] - step / 2, x[-1] + step / 2)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0 if top >= 0.04 else None))
    ax.grid(axis="y", color=COLORS["grid"], linewidth=0.8)
    ax.set_axisbelow(True)
    ticks, tick_labels = _date_ticks(periods, onset if onset is not None else len(periods) - 1, zh)
    ax.set_xticks(x[ticks], tick_labels)
    _legend_above(ax, handles, names, ncol=len(names), handlelength=2.0)
    return _png(fig)


# --- bar charts -----------------------------------------------------------------------------


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _sentiment_limits(values: list[float], end_labels: bool) -> tuple[float, float, bool]:
    """x limits for net sentiment and whether they are the full scale.

    The full scale is [−1, 1] (the axis line and ticks stop there; with ``end_labels`` a
    margin beyond it keeps the item counts written at the bar ends inside the image) unless
    every value, bounds included, is small: then a tighter range around the data that always
    includes 0.
    """
    lo = min([0.0] + values)
    hi = max([0.0] + values)
    if max(abs(lo), abs(hi)) > 0.6:
        margin = LABEL_MARGIN if end_labels else 0.04
        return -1.0 - margin, 1.0 + margin, True
    pad = 0.25 * max(hi - lo, 0.2)
    return lo - pad, hi + pad, False


def _bar_height(rows: int, per_row: float, extra: float) -> float:
    return min(max(extra + per_row * rows, 1.4), 9.0)


def _errorbars(ax, ys, values, lowers, uppers) -> None:
    """Error bars for the rows that have both bounds (bounds on the wrong side count as 0)."""
    keep = [i for i in range(len(values)) if lowers[i] is not None and uppers[i] is not None]
    if not keep:
        return
    v = np.asarray([values[i] for i in keep])
    err = np.vstack(
        [
            np.maximum(v - np.asarray([lowers[i] for i in keep]), 0),
            np.maximum(np.asarray([uppers[i] for i in keep]) - v, 0),
        ]
    )
    ax.errorbar(
        v,
        np.asarray([ys[i] for i in keep]),
        xerr=err,
        fmt="none",
        ecolor="#444444",
        elinewidth=0.9,
        capsize=2.5,
        zorder=3,
    )


def _finish_sentiment_axis(
    ax, values: list[float], labels: dict[str, str], end_labels: bool
) -> None:
    left, right, full = _sentiment_limits(values, end_labels)
    ax.set_xlim(left, right)
    ax.axvline(0, color="#666666", linewidth=0.9, zorder=2)
    if full:
        ax.set_xticks([-1.0, -0.5, 0.0, 0.5, 1.0])
        ax.spines["bottom"].set_bounds(-1.0, 1.0)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 2.5, 5, 10]))
    ax.grid(axis="x", color=COLORS["grid"], linewidth=0.8)
    ax.set_axisbelow(True)
    ax.set_xlabel(labels["net_sentiment"], fontproperties=_font_props(8.5), color=COLORS["text"])
    ax.tick_params(axis="y", length=0)


def region_sentiment_chart(rows: list[dict], *, language: str = "en") -> bytes | None:
    """A PNG of net sentiment per region, one horizontal bar each, most negative on top.

    Bars are red below 0 and green above, with the ``lower``–``upper`` interval as an error
    bar where both are given, and ``n=<items>`` at the bar end so a small region's extreme
    value reads as the small sample it is. The x axis is net sentiment on [−1, 1] (tighter
    when every value is small, always including 0). The image is 640 px wide and grows
    28 px per region; at most 30 regions are drawn (those with the most items). ``None`` for
    no rows.
    """
    rows = [
        r for r in (rows or []) if isinstance(r, dict) and _num(r.get("net_sentiment")) is not None
    ]
    if not rows:
        return None
    if len(rows) > MAX_BARS:
        rows = sorted(rows, key=lambda r: -(_num(r.get("items")) or 0))[:MAX_BARS]
    rows = sorted(rows, key=lambda r: (_num(r["net_sentiment"]), str(r.get("region"))))
    families = _families()
    text = _labels(language)
    values = [float(np.clip(_num(r["net_sentiment"]), -1, 1)) for r in rows]
    lowers = [_num(r.get("lower")) for r in rows]
    uppers = [_num(r.get("upper")) for r in rows]
    ys = list(range(len(rows)))

    fig, ax = _figure(_bar_height(len(rows), 0.28, 0.75))
    colors = [
        COLORS["negative"] if v < 0 else COLORS["positive"] if v > 0 else COLORS["neutral"]
        for v in values
    ]
    ax.barh(ys, values, height=0.62, color=colors, zorder=2)
    _errorbars(ax, ys, values, lowers, uppers)
    extent = values + [b for b in lowers + uppers if b is not None]
    _finish_sentiment_axis(ax, extent, text, end_labels=True)
    ax.set_yticks(ys, [_drawable(r.get("region"), families) for r in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)  # first (most negative) row on top
    for y, v, lo, hi, r in zip(ys, values, lowers, uppers, rows):
        items = _num(r.get("items"))
        if items is None:
            continue
        # Beyond the bar or its error bar, on the bar's side of 0 (the limits leave room).
        end = min(v, lo if lo is not None else v) if v < 0 else max(v, hi if hi is not None else v)
        ax.annotate(
            f"n={int(items)}",
            (end, y),
            xytext=(-3 if v < 0 else 3, 0),
            textcoords="offset points",
            ha="right" if v < 0 else "left",
            va="center",
            fontproperties=_font_props(7),
            color=COLORS["text"],
            zorder=4,
        )
    return _png(fig)


def benchmark_chart(rows: list[dict], *, language: str = "en") -> bytes | None:
    """A PNG comparing brands' net sentiment per aspect: grouped horizontal bars, one group
    per aspect (in the order the rows first name them), one colour per brand (in the order
    the rows first name them, so our brand first when the caller lists it first), with a
    legend above and ``lower``–``upper`` error bars where given.

    640 px wide; the height grows with aspects × brands (at most 30 aspects). ``None`` for no
    rows. Ready for the competitor benchmark, which does not exist yet.
    """
    rows = [
        r for r in (rows or []) if isinstance(r, dict) and _num(r.get("net_sentiment")) is not None
    ]
    if not rows:
        return None
    families = _families()
    text = _labels(language)
    aspects: list[str] = []
    brands: list[str] = []
    for r in rows:
        a, b = str(r.get("aspect")), str(r.get("brand"))
        if a not in aspects:
            aspects.append(a)
        if b not in brands:
            brands.append(b)
    aspects = aspects[:MAX_BARS]
    cell = {(str(r.get("aspect")), str(r.get("brand"))): r for r in rows}
    group = 0.8 / len(brands)

    fig, ax = _figure(_bar_height(len(aspects), 0.08 + 0.2 * len(brands), 1.0))
    extent: list[float] = []
    for j, brand in enumerate(brands):
        ys, values, lowers, uppers = [], [], [], []
        for i, aspect in enumerate(aspects):
            r = cell.get((aspect, brand))
            if r is None:
                continue
            ys.append(i - 0.4 + group * (j + 0.5))
            values.append(float(np.clip(_num(r["net_sentiment"]), -1, 1)))
            lowers.append(_num(r.get("lower")))
            uppers.append(_num(r.get("upper")))
        ax.barh(
            ys,
            values,
            height=group * 0.9,
            color=BRAND_COLORS[j % len(BRAND_COLORS)],
            zorder=2,
            label=_drawable(brand, families),
        )
        _errorbars(ax, ys, values, lowers, uppers)
        extent += values + [b for b in lowers + uppers if b is not None]
    _finish_sentiment_axis(ax, extent, text, end_labels=False)
    ax.set_yticks(range(len(aspects)), [_drawable(a, families) for a in aspects])
    ax.set_ylim(len(aspects) - 0.5, -0.5)  # first aspect on top, first brand on top in a group
    _legend_above(ax, ncol=min(len(brands), 4), handlelength=1.2)
    return _png(fig)
