"""Lay a digest (or one alert) out for the subscriber: the email's plain text and HTML, and the
``Notice`` the webhook formats are composed from.

``render_digest`` and ``render_alert`` return the subject, the plain text, the HTML and the
charts (PNG, referenced from the HTML by ``cid:``). Both layouts draw on the same views of the
alerts (``AlertView``, ``SingleView``), worded by ``digest_facts``. The HTML comes from
``templates/digest.html`` through Jinja2 with autoescaping: every text, the customers' quotes
and titles included, is escaped by the template. It follows what renders in common mail
clients: a single 640-px table layout, inline styles only, no scripts or external resources,
every image with alt text and fixed size.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from jinja2.ext import Extension

from service.delivery.digest_data import Digest
from service.delivery.digest_facts import (
    action_line,
    alert_link,
    drivers,
    local_time,
    quotes,
    responses_line,
    scope_line,
    what_moved,
    where,
)
from service.delivery.notice import Notice
from service.delivery.strings import t
from service.delivery.subscriptions import Period
from service.domain import Taxonomy
from service.store.tables import SubscriptionRow

log = logging.getLogger(__name__)
SEVERITY_COLOUR = {"L1": "#b42318", "L2": "#c4320a", "L3": "#667085"}


@dataclass
class Rendered:
    subject: str
    text: str
    html: str
    images: list[tuple[str, bytes, str]]  # (content id, PNG, alt text)


@dataclass(frozen=True)
class _Page:
    """What a message's plain text and HTML are both rendered from: the digest (one alert's, for
    an alert sent at once), its language, the line under the heading (a digest's period, an
    alert's subject), the links and the taxonomy that names the aspects."""

    digest: Digest
    lang: str
    period: str
    public_url: str
    unsubscribe_url: str | None
    taxonomy: Taxonomy | None


@dataclass(frozen=True)
class AlertView:
    """An alert laid out in full, in the subscriber's language."""

    severity: str
    colour: str  # of the severity badge
    what: str  # what_moved
    where: str
    since: str | None  # the onset's date
    status: str
    drivers: list[str]
    quotes: list[str]
    link: str
    chart: tuple[str, str] | None = None  # (content id, alt text) of its chart


@dataclass(frozen=True)
class SingleView:
    """A single severe complaint, one line."""

    severity: str
    line: str  # what, brand, region and the quote's start
    link: str


def alert_view(
    a: dict,
    lang: str,
    public_url: str,
    taxonomy: Taxonomy | None,
    chart: tuple[str, str] | None = None,
) -> AlertView:
    return AlertView(
        severity=a["severity"],
        colour=SEVERITY_COLOUR.get(a["severity"], "#667085"),
        what=what_moved(a, lang, taxonomy),
        where=where(a, lang),
        since=a["onset"][:10] if a.get("onset") else None,
        status=t(lang, "status_" + a["status"]),
        drivers=drivers(a),
        quotes=quotes(a),
        link=alert_link(public_url, a["id"]),
        chart=chart,
    )


def single_view(a: dict, lang: str, public_url: str, taxonomy: Taxonomy | None) -> SingleView:
    quote = next(iter(quotes(a)), "")
    return SingleView(
        severity=a["severity"],
        line=f"{what_moved(a, lang, taxonomy)} ({a.get('brand') or ''}, {a.get('region') or '–'}): “{quote[:160]}”",
        link=alert_link(public_url, a["id"]),
    )


# --- the digest and the single alert ---------------------------------------------------------


def render_digest(
    d: Digest,
    *,
    public_url: str,
    unsubscribe_url: str | None,
    taxonomy: Taxonomy | None,
    max_charts: int = 5,
    charts: bool = True,
) -> Rendered:
    sub, lang = d.subscription, d.subscription.language
    period = t(
        lang,
        "period",
        start=local_time(d.period.start, sub.timezone),
        end=local_time(d.period.end, sub.timezone),
        tz=sub.timezone,
    )
    images: list[tuple[str, bytes, str]] = []
    chart_of: dict[int, tuple[str, str]] = {}  # alert id -> (content id, alt text)
    closing: list[tuple[str, str, str]] = []  # (content id, caption, alt) after the alerts
    if charts:
        from service.delivery.charts import alert_chart, benchmark_chart, region_sentiment_chart

        for a in d.sections()[0][:max_charts]:
            png = _safe_chart(alert_chart, a, language=lang)
            if png:
                cid = f"alert-{a['id']}-{hashlib.sha1(png).hexdigest()[:8]}@radar"
                alt = t(lang, "chart_alt", what=what_moved(a, lang, taxonomy), where=where(a, lang))
                images.append((cid, png, alt))
                chart_of[a["id"]] = (cid, alt)
        end = local_time(d.period.end, sub.timezone)[:10]
        for cid, draw, data, caption, alt in (
            (
                "regions@radar",
                region_sentiment_chart,
                d.regions,
                t(lang, "regions", end=end),
                t(lang, "regions_alt"),
            ),
            (
                "benchmark@radar",
                benchmark_chart,
                d.benchmark,
                t(lang, "benchmark", end=end),
                t(lang, "benchmark_alt"),
            ),
        ):
            png = _safe_chart(draw, data, language=lang) if data else None
            if png:
                images.append((cid, png, alt))
                closing.append((cid, caption, alt))
    page = _Page(d, lang, period, public_url, unsubscribe_url, taxonomy)
    return Rendered(
        _subject(d, lang), _digest_text(page), _digest_html(page, chart_of, closing), images
    )


def render_alert(
    alert: dict,
    sub: SubscriptionRow,
    *,
    public_url: str,
    unsubscribe_url: str | None,
    taxonomy: Taxonomy | None,
    charts: bool = True,
) -> Rendered:
    lang = sub.language
    what = what_moved(alert, lang, taxonomy)
    subject = t(
        lang, "subject_alert", severity=alert["severity"], what=f"{what} · {where(alert, lang)}"
    )
    lines = _alert_text(alert_view(alert, lang, public_url, taxonomy), lang)
    lines += ["", t(lang, "footer")]
    if unsubscribe_url:
        lines.append(f"{t(lang, 'unsubscribe')}: {unsubscribe_url}")
    images = []
    if charts:
        from service.delivery.charts import alert_chart

        png = _safe_chart(alert_chart, alert, language=lang)
        if png:
            images.append(
                (
                    f"alert-{alert['id']}@radar",
                    png,
                    t(lang, "chart_alt", what=what, where=where(alert, lang)),
                )
            )
    period = Period(
        key="alert",
        start=datetime.fromisoformat(alert["first_detected_at"]),
        end=datetime.fromisoformat(alert["first_detected_at"]),
    )
    d = Digest(sub, period, [alert], None)
    chart_of = {alert["id"]: (images[0][0], images[0][2])} if images else {}
    page = _Page(d, lang, subject, public_url, unsubscribe_url, taxonomy)
    body = _digest_html(page, chart_of, [])
    return Rendered(subject, "\n".join(lines) + "\n", body, images)


def _safe_chart(draw, data, **kw) -> bytes | None:
    """A chart, or none when drawing fails: a broken chart never holds a digest back."""
    try:
        return draw(data, **kw)
    except Exception:  # noqa: BLE001
        log.exception(
            "chart %s failed; the digest goes without it", getattr(draw, "__name__", draw)
        )
        return None


def _subject(d: Digest, lang: str) -> str:
    sub = d.subscription
    freq = t(lang, sub.frequency)
    day = local_time(d.period.end, sub.timezone)[:10]
    n = len(d.alerts)
    return (
        t(lang, "subject", freq=freq, period=day, n=n, s="" if n == 1 else "s")
        if n
        else t(lang, "subject_quiet", freq=freq, period=day)
    )


def _heading(d: Digest, lang: str) -> str:
    return (
        t(lang, "heading_alert")
        if d.changes is None
        else t(lang, "heading", freq=t(lang, d.subscription.frequency))
    )


def _change_lines(d: Digest, lang: str) -> list[str]:
    return [
        f"- {t(lang, action)}: {c['title']}"
        for action, items in (d.changes or {}).items()
        for c in items
    ]


def _singles_count(d: Digest) -> int:
    return sum(a["type"] == "severe_complaint" for a in d.alerts)


# --- plain text ------------------------------------------------------------------------------


def _alert_text(v: AlertView, lang: str) -> list[str]:
    out = [f"[{v.severity}] {v.what}", f"  {t(lang, 'where')}: {v.where}"]
    if v.since:
        out.append(f"  {t(lang, 'since')}: {v.since}")
    out.append(f"  {t(lang, 'status')}: {v.status}")
    if v.drivers:
        out.append(f"  {t(lang, 'drivers')}: {'; '.join(v.drivers)}")
    for q in v.quotes:
        out.append(f"  “{q}”")
    out.append(f"  {t(lang, 'open')}: {v.link}")
    return out


def _digest_text(page: _Page) -> str:
    d, lang, public_url, taxonomy = page.digest, page.lang, page.public_url, page.taxonomy
    sub = d.subscription
    lines = [
        t(lang, "heading", freq=t(lang, sub.frequency)),
        page.period,
        scope_line(sub, lang),
        "",
    ]
    if not d.alerts:
        lines.append(t(lang, "quiet"))
    else:
        main, singles, more = d.sections()
        lines += [t(lang, "alerts"), ""]
        for a in main:
            lines += _alert_text(alert_view(a, lang, public_url, taxonomy), lang) + [""]
        if singles:
            lines += [t(lang, "singles", n=_singles_count(d))]
            for a in singles:
                s = single_view(a, lang, public_url, taxonomy)
                lines.append(f"- [{s.severity}] {s.line} {s.link}" if public_url else f"- {s.line}")
            lines += [""]
        if more:
            lines += [t(lang, "more", n=more), ""]
        lines += [t(lang, "changed")]
        lines += _change_lines(d, lang) or [t(lang, "nothing_changed")]
    if d.actions:
        lines += ["", t(lang, "actions")] + [
            f"- {action_line(a, lang, taxonomy)}" for a in d.actions
        ]
    if d.responses:
        lines += ["", responses_line(d.responses, lang)]
    lines += ["", t(lang, "footer")]
    if page.unsubscribe_url:
        lines.append(f"{t(lang, 'unsubscribe')}: {page.unsubscribe_url}")
    return "\n".join(lines) + "\n"


# --- HTML ------------------------------------------------------------------------------------


class _OneLine(Extension):
    """Line breaks in a template, and the indentation around them, are not part of the output:
    the templates are written indented, the email's HTML goes out as one line (no whitespace
    between table cells for a mail client to render). A space the output needs stays within a
    line of the template."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return re.sub(r"[ \t]*\r?\n\s*", "", source)


_TEMPLATES = Environment(
    loader=PackageLoader("service.delivery", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    extensions=[_OneLine],
)


def _digest_html(
    page: _Page, chart_of: dict[int, tuple[str, str]], closing: list[tuple[str, str, str]]
) -> str:
    d, lang, public_url, taxonomy = page.digest, page.lang, page.public_url, page.taxonomy
    main, singles, more = d.sections()
    return _TEMPLATES.get_template("digest.html").render(
        lang=lang,
        t=partial(t, lang),
        heading=_heading(d, lang),
        period=page.period,
        scope=scope_line(d.subscription, lang),
        quiet=not d.alerts,
        main=[alert_view(a, lang, public_url, taxonomy, chart_of.get(a["id"])) for a in main],
        singles=[single_view(a, lang, public_url, taxonomy) for a in singles],
        singles_count=_singles_count(d),
        more=more,
        alerts_url=f"{public_url.rstrip('/')}/v1/alerts",
        # None: a single alert sent at once, not a digest
        changes=None if d.changes is None else _change_lines(d, lang),
        responses=responses_line(d.responses, lang) if d.responses else None,
        actions=[action_line(a, lang, taxonomy) for a in d.actions],
        closing=closing,
        unsubscribe_url=page.unsubscribe_url,
    )


# --- webhooks --------------------------------------------------------------------------------


def digest_notice(d: Digest, *, public_url: str, taxonomy: Taxonomy | None) -> Notice:
    lang = d.subscription.language
    n = len(d.alerts)
    lines = [
        f"[{a['severity']}] {what_moved(a, lang, taxonomy)} · {where(a, lang)}"
        for a in d.alerts[:10]
    ]
    if n > 10:
        lines.append(t(lang, "more", n=n - 10))
    if not n:
        lines.append(t(lang, "quiet"))
    top = min((a["severity"] for a in d.alerts), default=None)
    return Notice(
        kind="digest",
        title=_subject(d, lang),
        lines=lines,
        language=lang,
        severity=top,
        link=f"{public_url.rstrip('/')}/v1/alerts",
        data={
            "period": {
                "key": d.period.key,
                "start": d.period.start.isoformat(),
                "end": d.period.end.isoformat(),
            },
            "alerts": d.alerts,
            "changes": d.changes,
            "regions": d.regions,
        },
    )


def alert_notice(
    alert: dict, sub: SubscriptionRow, *, public_url: str, taxonomy: Taxonomy | None
) -> Notice:
    lang = sub.language
    lines = [f"{t(lang, 'where')}: {where(alert, lang)}"]
    if alert.get("onset"):
        lines.append(f"{t(lang, 'since')}: {alert['onset'][:10]}")
    lines += [f"{t(lang, 'drivers')}: {x}" for x in drivers(alert)]
    lines += [f"“{q}”" for q in quotes(alert)]
    return Notice(
        kind="alert",
        title=what_moved(alert, lang, taxonomy),
        lines=lines,
        language=lang,
        severity=alert["severity"],
        link=alert_link(public_url, alert["id"]),
        data={"alert": alert},
    )
