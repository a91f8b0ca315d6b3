"""Compose what a subscriber receives: a digest of a period, or one alert as it is raised.

``build_digest`` gathers, as of the period's end, the alerts in the subscriber's scope that
were active during the period (most severe first, then newest), what changed in the period
(raised, updated, acknowledged, resolved), and net sentiment by region over the 28 days to
the period's end (within the scope). ``render_email`` turns it into a multipart message:
``multipart/alternative`` of a plain-text part and a ``multipart/related`` HTML part whose
charts are PNG parts referenced by ``cid:``. ``notice`` turns the same content into a
``Notice`` for the webhook formats. Every word of the digest's own is in the subscriber's
language (English or Chinese); the alert's facts (aspect names from the taxonomy, numbers,
segments, quotes) are laid out in that language too; customers' quotes stay as written.

The HTML follows what renders in common mail clients: a single 640-px table layout, inline
styles only, no scripts or external resources, every image with alt text and fixed size.
"""

from __future__ import annotations

import hashlib
import html
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr

from sqlalchemy.orm import Session

from service.delivery.notice import Notice
from service.delivery.strings import STRINGS, t
from service.delivery.subscriptions import Period, alerts_in_scope, scope_of, unsubscribe_token
from service.domain import Taxonomy
from service.store import alerts as alerts_repo
from service.store.alerts import alert_dict
from service.store.repo import FeedbackFilter
from service.store.tables import SubscriptionRow

log = logging.getLogger(__name__)
REGION_WINDOW = timedelta(days=28)
MAX_DETAILED = 20  # alerts laid out in full; the rest are counted with a link
MAX_SINGLES = 10  # single severe complaints listed one line each
SEVERITY_COLOUR = {"L1": "#b42318", "L2": "#c4320a", "L3": "#667085"}


@dataclass
class Digest:
    subscription: SubscriptionRow
    period: Period
    alerts: list[dict]
    changes: (
        dict[str, list[dict]] | None
    )  # action -> [{"alert_id", "title", "at", "actor"}]; None: one alert
    regions: list[dict] = field(default_factory=list)
    benchmark: list[dict] = field(default_factory=list)  # benchmark_chart rows
    actions: list[dict] = field(
        default_factory=list
    )  # {"action": action_dict, "effect": EffectReport dict}
    responses: dict | None = None  # digest_responses

    @property
    def empty(self) -> bool:
        return not self.alerts and not any((self.changes or {}).values())

    def sections(self) -> tuple[list[dict], list[dict], int]:
        """(alerts laid out in full, single severe complaints listed one line each, how many
        more are left out). A shift or a surge gets the room; one severe item is one line, so
        that a week of them does not bury the shifts."""
        main = [a for a in self.alerts if a["type"] != "severe_complaint"]
        singles = [a for a in self.alerts if a["type"] == "severe_complaint"]
        more = max(len(main) - MAX_DETAILED, 0) + max(len(singles) - MAX_SINGLES, 0)
        return main[:MAX_DETAILED], singles[:MAX_SINGLES], more


def build_digest(
    session: Session,
    sub: SubscriptionRow,
    period: Period,
    *,
    our_brand: str,
    changes_since: datetime | None = None,
    regions: bool = True,
) -> Digest:
    """The digest of ``period`` as of its end (the same content however late it is composed);
    "what changed" runs from ``changes_since`` (the end of the last digest sent, when periods
    were skipped) to the period's end."""
    rows = alerts_repo.active_between(
        session, scope=alerts_in_scope(sub), start=period.start, end=period.end
    )
    alerts = [alert_dict(r) for r in rows]
    ids = [a["id"] for a in alerts]
    changes: dict[str, list[dict]] = {
        "raised": [],
        "updated": [],
        "acknowledged": [],
        "resolved": [],
    }
    if ids:
        titles = {a["id"]: a["title"] for a in alerts}
        events = alerts_repo.events_of(
            session, alert_ids=ids, since=changes_since or period.start, until=period.end
        )
        seen: set[tuple[str, int]] = set()
        for e in events:
            if e.action in changes and (e.action, e.alert_id) not in seen:
                seen.add((e.action, e.alert_id))
                changes[e.action].append(
                    {
                        "alert_id": e.alert_id,
                        "title": titles[e.alert_id],
                        "at": e.at.isoformat(),
                        "actor": e.actor,
                    }
                )
    d = Digest(sub, period, alerts, changes)
    if regions:
        d.regions = digest_regions(session, sub, period, our_brand=our_brand)
        d.benchmark = digest_benchmark(session, sub, period, our_brand=our_brand)
        d.actions = digest_actions(session, sub, period)
        d.responses = digest_responses(session, sub, period)
    return d


def digest_responses(session: Session, sub: SubscriptionRow, period: Period) -> dict | None:
    """The subscriber's response metrics over the 7 days to the period's end (None: no negative
    item and no alert in that week)."""
    from service.store import actions as actions_repo
    from service.store.repo import FeedbackFilter

    scope = alerts_in_scope(sub)
    since = period.end - timedelta(days=7)
    flt = FeedbackFilter(
        since=since, until=period.end, brands=scope.brands or (), regions=scope.regions or ()
    )
    groups = actions_repo.response_metrics(
        session, flt=flt, by="all", severe_aspects=(), within_hours=24.0, now=period.end
    )
    alerts = actions_repo.alert_action_metrics(
        session,
        since=since,
        until=period.end,
        days=7.0,
        now=period.end,
        regions=scope.regions,
        brands=scope.brands,
    )
    if not groups and not alerts["by_severity"]:
        return None
    g = (
        groups[0]
        if groups
        else {"negative_items": 0, "due": 0, "within": 0, "median_hours_to_answer": None}
    )
    return {
        "negative": g["negative_items"],
        "due": g["due"],
        "within": g["within"],
        "median": g["median_hours_to_answer"],
        "alerts_due": sum(x["due"] for x in alerts["by_severity"]),
        "alerts_in_time": sum(x["with_action_in_time"] for x in alerts["by_severity"]),
    }


def responses_line(r: dict, lang: str) -> str:
    share = f"{100 * r['within'] / r['due']:.0f}%" if r["due"] else "–"
    median = "–" if r["median"] is None else f"{r['median']:.1f}"
    return t(
        lang,
        "responses",
        within=r["within"],
        due=r["due"],
        share=share,
        median=median,
        alerts=f"{r['alerts_in_time']}/{r['alerts_due']}",
    )


ACTION_WEEKS = 12  # an action is reported for this many weeks after it started (or ended)
MAX_ACTIONS = 3


def digest_actions(session: Session, sub: SubscriptionRow, period: Period) -> list[dict]:
    """The subscriber's actions (same scope as their alerts) that have run at least a week by the
    period's end and started or ended within ``ACTION_WEEKS``, with their effect as of then."""
    from service.analytics import effects
    from service.store import actions as actions_repo

    scope = alerts_in_scope(sub)
    rows = actions_repo.list_actions(
        session,
        scope=actions_repo.ActionScope(regions=scope.regions, brands=scope.brands),
        statuses=["planned", "active", "completed"],
    )
    out = []
    for row in rows:
        latest = row.ended_at or row.started_at
        if row.started_at > period.end - timedelta(weeks=1) or latest < period.end - timedelta(
            weeks=ACTION_WEEKS
        ):
            continue
        data = actions_repo.action_dict(
            row, actions_repo.alerts_of(session, action_ids=[row.id])[row.id]
        )
        out.append(
            {
                "action": data,
                "effect": effects.action_effect_dict(session, action=data, now=period.end),
            }
        )
        if len(out) == MAX_ACTIONS:
            break
    return out


def action_line(a: dict, lang: str, taxonomy: Taxonomy | None) -> str:
    """ "Spicy recipe rolled back (East × 18-24): since 2026-10-05, taste complaints fell from 64%
    to 13%; elsewhere 16% → 15%; effect −49.2 points [−58.1, −40.3]: worked"."""
    act, e = a["action"], a["effect"]
    from service.analytics.effects import fmt_delta, fmt_interval, fmt_level, segment_text

    where_ = segment_text(act["segment"])
    if e.get("effect") is None:
        return t(
            lang, "action_pending", title=act["title"], where=where_, message=e.get("message", "")
        )
    aspect = act["aspect"] or ""
    if taxonomy is not None and aspect in taxonomy.ids:
        aspect = taxonomy.get(aspect).name(lang)

    m = e["metric"]
    what = t(
        lang,
        {"net_sentiment": "net_metric", "volume": "vol_metric", "rating": "rating_metric"}.get(
            m, "all_metric"
        ),
        aspect=aspect,
    ).strip()
    tr, ct = e["treated"], e["control"]
    moved = "fell" if (tr["after"] or 0) < (tr["before"] or 0) else "rose"
    verdict = STRINGS.get(lang, STRINGS["en"]).get(f"verdict_{e['verdict']}", e["verdict"])
    effect = fmt_delta(m, e["effect"])
    if lang == "zh":
        effect = effect.replace(" points", " 个百分点").replace(" items/week", " 条/周")
    return t(
        lang,
        "action_line",
        title=act["title"],
        where=where_,
        start=act["started_at"][:10],
        what=what,
        moved=t(lang, moved),
        t0=fmt_level(m, tr["before"]),
        t1=fmt_level(m, tr["after"]),
        c0=fmt_level(m, ct["before"]),
        c1=fmt_level(m, ct["after"]),
        effect=effect,
        interval=fmt_interval(m, e["lower"], e["upper"]),
        verdict=verdict,
    )


BENCHMARK_ASPECTS = 4


def digest_benchmark(
    session: Session, sub: SubscriptionRow, period: Period, *, our_brand: str
) -> list[dict]:
    """Our brand and each competitor on the aspects where we differ most from the competitors
    pooled, within the subscriber's regions and aspects, over the 28 days to the period's end."""
    from service.analytics.benchmark import MARKET, benchmark

    scope = scope_of(sub)
    if scope["brands"] and our_brand not in scope["brands"]:
        return []
    flt = FeedbackFilter(
        regions=tuple(scope["regions"]), since=period.end - REGION_WINDOW, until=period.end
    )
    rep = benchmark(
        session,
        flt=flt,
        our_brand=our_brand,
        brands=tuple(b for b in scope["brands"] if b != our_brand),
        aspects=tuple(scope["aspects"]),
    )
    market = [g for g in rep["gaps"] if g["competitor"] == MARKET and g["gap"] is not None]
    if not market:
        market = [g for g in rep["gaps"] if g["gap"] is not None]
    top = []
    for g in sorted(market, key=lambda g: -abs(g["z"] or 0)):  # the clearest differences
        if g["aspect"] not in top:
            top.append(g["aspect"])
    top = top[:BENCHMARK_ASPECTS]
    return [
        {
            "aspect": m["aspect"],
            "brand": m["brand"],
            "net_sentiment": m["net_sentiment"]["value"],
            "lower": m["net_sentiment"]["lower"],
            "upper": m["net_sentiment"]["upper"],
        }
        for m in rep["metrics"]
        if m["aspect"] in top and m["net_sentiment"]["value"] is not None
    ]


def digest_regions(
    session: Session, sub: SubscriptionRow, period: Period, *, our_brand: str
) -> list[dict]:
    """Net sentiment by region within the subscriber's scope (our brand when it names none)."""
    scope = scope_of(sub)
    return region_sentiment(
        session,
        brands=tuple(scope["brands"]) or (our_brand,),
        regions=tuple(scope["regions"]),
        since=period.end - REGION_WINDOW,
        until=period.end,
    )


def region_sentiment(
    session: Session,
    *,
    brands: tuple[str, ...],
    regions: tuple[str, ...],
    since: datetime,
    until: datetime,
) -> list[dict]:
    from service.analytics.segments import breakdown

    flt = FeedbackFilter(
        brands=brands, regions=regions, since=since, until=until, include_duplicates=False
    )
    out = breakdown(session, dimensions=["region"], flt=flt, aspects=False)
    return [
        {
            "region": s["segment"]["region"],
            "items": s["volume"],
            "net_sentiment": s["net_sentiment"]["value"],
            "lower": s["net_sentiment"]["lower"],
            "upper": s["net_sentiment"]["upper"],
        }
        for s in out["segments"]
        if s["net_sentiment"]["value"] is not None and s["segment"]["region"]
    ]


# --- the alert's facts in the subscriber's language ----------------------------------------


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def what_moved(alert: dict, lang: str, taxonomy: Taxonomy | None) -> str:
    """One line: what moved, by how much, against what expectation."""
    aspect = alert.get("aspect")
    name = (
        taxonomy.get(aspect).name(lang)
        if taxonomy and aspect and aspect in taxonomy.ids
        else (aspect or "")
    )
    signal = alert["details"].get("signal", {})
    if signal.get("phrase"):  # a tracked phrase's rise is filed under the aspect it complains about
        what = t(lang, "phrase", phrase=signal["phrase"])
        if name:
            what = f"{t(lang, 'complaints', aspect=name)} · {what}"
    elif alert["type"] == "crisis_spike":
        return t(
            lang,
            "posts",
            what=alert.get("brand") or "",
            observed=alert["observed"] or 0,
            expected=alert["baseline"] or 0,
        )
    elif alert["type"] == "severe_complaint":
        return t(lang, "severe", what=name)
    elif alert["type"] == "threshold":
        return t(
            lang,
            "metric",
            what=alert.get("metric") or "",
            observed=alert["observed"] or 0,
            expected=alert["baseline"] or 0,
        )
    else:
        what = t(lang, "complaints", aspect=name)
    return t(
        lang,
        "moved",
        what=what,
        observed=_pct(alert.get("observed")),
        expected=_pct(alert.get("baseline")),
    )


def where(alert: dict, lang: str) -> str:
    seg = {
        k: v
        for k, v in (alert.get("segment") or {}).items()
        if k not in ("item", "channel", "regions")
    }
    brand = alert.get("brand") or ""
    return (
        f"{' × '.join(str(v) for v in seg.values())} ({brand})"
        if seg
        else t(lang, "everyone", brand=brand)
    )


def alert_link(settings_public_url: str, alert_id: int) -> str:
    return f"{settings_public_url.rstrip('/')}/v1/alerts/{alert_id}"


def _drivers(alert: dict) -> list[str]:
    return [
        f"{d['dimension']} = {d['value']} (+{d['growth_per_week']:g}/wk)"
        for d in alert["details"].get("drivers", [])[:3]
    ]


def _quotes(alert: dict) -> list[str]:
    return [" ".join(q["text"].split())[:280] for q in alert["details"].get("quotes", [])[:3]]


# --- email ---------------------------------------------------------------------------------


def message_id(dedupe_key: str, sender: str) -> str:
    """Deterministic per message, so a resend after a crash carries the same ``Message-ID``."""
    domain = (parseaddr(sender)[1].rpartition("@")[2] or "radar.local").strip(">")
    return f"<radar.{hashlib.sha256(dedupe_key.encode()).hexdigest()[:24]}@{domain}>"


@dataclass
class Rendered:
    subject: str
    text: str
    html: str
    images: list[tuple[str, bytes, str]]  # (content id, PNG, alt text)


def _scope_line(sub: SubscriptionRow, lang: str) -> str:
    scope = scope_of(sub)
    parts = [
        f"{t(lang, label)}: {', '.join(scope[k]) or t(lang, 'all')}"
        for k, label in (("brands", "brands"), ("regions", "regions_label"), ("aspects", "aspects"))
    ]
    return " · ".join(parts + [t(lang, "min_severity", sev=sub.min_severity)])


def _local(dt: datetime, tz: str) -> str:
    from zoneinfo import ZoneInfo

    return dt.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


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
    freq = t(lang, sub.frequency)
    period = t(
        lang,
        "period",
        start=_local(d.period.start, sub.timezone),
        end=_local(d.period.end, sub.timezone),
        tz=sub.timezone,
    )
    day = _local(d.period.end, sub.timezone)[:10]
    n = len(d.alerts)
    subject = (
        t(lang, "subject", freq=freq, period=day, n=n, s="" if n == 1 else "s")
        if n
        else t(lang, "subject_quiet", freq=freq, period=day)
    )
    images: list[tuple[str, bytes, str]] = []
    chart_of: dict[int, str] = {}
    closing: list[tuple[str, str]] = []  # (content id, caption) of the charts after the alerts
    if charts:
        from service.delivery.charts import alert_chart, benchmark_chart, region_sentiment_chart

        for a in d.sections()[0][:max_charts]:
            png = _safe_chart(alert_chart, a, language=lang)
            if png:
                cid = f"alert-{a['id']}-{hashlib.sha1(png).hexdigest()[:8]}@radar"
                images.append(
                    (
                        cid,
                        png,
                        t(
                            lang,
                            "chart_alt",
                            what=what_moved(a, lang, taxonomy),
                            where=where(a, lang),
                        ),
                    )
                )
                chart_of[a["id"]] = cid
        end = _local(d.period.end, sub.timezone)[:10]
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
                closing.append((cid, caption))
    text = _digest_text(d, lang, period, public_url, unsubscribe_url, taxonomy)
    body = _digest_html(
        d, lang, period, public_url, unsubscribe_url, taxonomy, chart_of, closing, images
    )
    return Rendered(subject, text, body, images)


def _safe_chart(draw, data, **kw) -> bytes | None:
    """A chart, or none when drawing fails: a broken chart never holds a digest back."""
    try:
        return draw(data, **kw)
    except Exception:  # noqa: BLE001
        log.exception(
            "chart %s failed; the digest goes without it", getattr(draw, "__name__", draw)
        )
        return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _alert_text(a: dict, lang: str, public_url: str, taxonomy: Taxonomy | None) -> list[str]:
    out = [
        f"[{a['severity']}] {what_moved(a, lang, taxonomy)}",
        f"  {t(lang, 'where')}: {where(a, lang)}",
    ]
    if a.get("onset"):
        out.append(f"  {t(lang, 'since')}: {a['onset'][:10]}")
    out.append(f"  {t(lang, 'status')}: {t(lang, 'status_' + a['status'])}")
    if _drivers(a):
        out.append(f"  {t(lang, 'drivers')}: {'; '.join(_drivers(a))}")
    for q in _quotes(a):
        out.append(f"  “{q}”")
    out.append(f"  {t(lang, 'open')}: {alert_link(public_url, a['id'])}")
    return out


def _single(a: dict, lang: str, public_url: str | None, taxonomy: Taxonomy | None) -> str:
    quote = next(iter(_quotes(a)), "")
    line = f"{what_moved(a, lang, taxonomy)} ({a.get('brand') or ''}, {a.get('region') or '–'}): “{quote[:160]}”"
    return f"[{a['severity']}] {line} {alert_link(public_url, a['id'])}" if public_url else line


def _digest_text(
    d: Digest,
    lang: str,
    period: str,
    public_url: str,
    unsubscribe_url: str | None,
    taxonomy: Taxonomy | None,
) -> str:
    sub = d.subscription
    lines = [t(lang, "heading", freq=t(lang, sub.frequency)), period, _scope_line(sub, lang), ""]
    if not d.alerts:
        lines.append(t(lang, "quiet"))
    else:
        main, singles, more = d.sections()
        lines += [t(lang, "alerts"), ""]
        for a in main:
            lines += _alert_text(a, lang, public_url, taxonomy) + [""]
        if singles:
            lines += [t(lang, "singles", n=sum(a["type"] == "severe_complaint" for a in d.alerts))]
            lines += [f"- {_single(a, lang, public_url, taxonomy)}" for a in singles] + [""]
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
    if unsubscribe_url:
        lines.append(f"{t(lang, 'unsubscribe')}: {unsubscribe_url}")
    return "\n".join(lines) + "\n"


def _change_lines(d: Digest, lang: str) -> list[str]:
    return [
        f"- {t(lang, action)}: {c['title']}"
        for action, items in (d.changes or {}).items()
        for c in items
    ]


def _heading(d: Digest, lang: str) -> str:
    return (
        t(lang, "heading_alert")
        if d.changes is None
        else t(lang, "heading", freq=t(lang, d.subscription.frequency))
    )


_P = 'style="margin:0 0 8px 0;font-family:Arial,Helvetica,sans-serif;font-size:14px;line-height:20px;color:#101828"'
_SMALL = 'style="margin:0 0 6px 0;font-family:Arial,Helvetica,sans-serif;font-size:12px;line-height:18px;color:#475467"'


def _digest_html(
    d: Digest,
    lang: str,
    period: str,
    public_url: str,
    unsubscribe_url: str | None,
    taxonomy: Taxonomy | None,
    chart_of: dict[int, str],
    closing: list[tuple[str, str]],
    images: list[tuple[str, bytes, str]],
) -> str:
    e = html.escape
    sub = d.subscription
    alt = {cid: a for cid, _, a in images}
    rows = [
        f'<tr><td style="padding:20px 24px 8px 24px;background:#101828;color:#ffffff;font-family:Arial,Helvetica,'
        f'sans-serif"><h1 style="margin:0;font-size:20px;line-height:28px;color:#ffffff">'
        f'{e(_heading(d, lang))}</h1><p style="margin:4px 0 0 0;font-size:13px;'
        f'color:#d0d5dd">{e(period)}</p><p style="margin:4px 0 12px 0;font-size:12px;color:#98a2b3">'
        f"{e(_scope_line(sub, lang))}</p></td></tr>"
    ]
    if not d.alerts:
        rows.append(
            f'<tr><td style="padding:16px 24px"><p {_P}>{e(t(lang, "quiet"))}</p></td></tr>'
        )
    else:
        rows.append(
            f'<tr><td style="padding:16px 24px 0 24px"><h2 style="margin:0 0 8px 0;font-family:Arial,'
            f'Helvetica,sans-serif;font-size:16px;color:#101828">{e(t(lang, "alerts"))}</h2></td></tr>'
        )
        main, singles, more = d.sections()
        for a in main:
            colour = SEVERITY_COLOUR.get(a["severity"], "#667085")
            cells = [
                f'<p {_P}><span style="display:inline-block;padding:1px 6px;border-radius:3px;background:{colour};'
                f'color:#ffffff;font-size:12px;font-weight:bold">{e(a["severity"])}</span> '
                f"<strong>{e(what_moved(a, lang, taxonomy))}</strong></p>",
                f"<p {_SMALL}>{e(t(lang, 'where'))}: {e(where(a, lang))}"
                + (f" · {e(t(lang, 'since'))}: {e(a['onset'][:10])}" if a.get("onset") else "")
                + f" · {e(t(lang, 'status'))}: {e(t(lang, 'status_' + a['status']))}</p>",
            ]
            if a["id"] in chart_of:
                cid = chart_of[a["id"]]
                cells.append(
                    f'<img src="cid:{e(cid)}" width="592" alt="{e(alt[cid])}" '
                    f'style="display:block;width:592px;max-width:100%;height:auto;border:0;margin:4px 0 8px 0">'
                )
            if _drivers(a):
                cells.append(
                    f"<p {_SMALL}>{e(t(lang, 'drivers'))}: {e('; '.join(_drivers(a)))}</p>"
                )
            for q in _quotes(a):
                cells.append(
                    f'<p style="margin:0 0 6px 0;padding:6px 10px;border-left:3px solid #d0d5dd;'
                    f'font-family:Arial,Helvetica,sans-serif;font-size:13px;line-height:19px;color:#344054">'
                    f"“{e(q)}”</p>"
                )
            cells.append(
                f'<p {_SMALL}><a href="{e(alert_link(public_url, a["id"]))}" style="color:#1570ef">'
                f"{e(t(lang, 'open'))} →</a></p>"
            )
            rows.append(
                f'<tr><td style="padding:8px 24px 12px 24px;border-bottom:1px solid #eaecf0">{"".join(cells)}'
                f"</td></tr>"
            )
        if singles:
            n = sum(a["type"] == "severe_complaint" for a in d.alerts)
            items = "".join(
                f'<p {_SMALL}><a href="{e(alert_link(public_url, a["id"]))}" style="color:#1570ef">'
                f"{e(a['severity'])}</a> {e(_single(a, lang, None, taxonomy))}</p>"
                for a in singles
            )
            rows.append(
                f'<tr><td style="padding:12px 24px 4px 24px"><h2 style="margin:0 0 8px 0;font-family:Arial,'
                f'Helvetica,sans-serif;font-size:15px;color:#101828">{e(t(lang, "singles", n=n))}</h2>'
                f"{items}</td></tr>"
            )
        if more:
            rows.append(
                f'<tr><td style="padding:4px 24px"><p {_SMALL}><a href="{e(public_url.rstrip("/"))}/v1/alerts" '
                f'style="color:#1570ef">{e(t(lang, "more", n=more))}</a></p></td></tr>'
            )
        changes = _change_lines(d, lang)
        items = (
            "".join(f"<p {_SMALL}>{e(c)}</p>" for c in changes)
            or f"<p {_SMALL}>{e(t(lang, 'nothing_changed'))}</p>"
        )
        if d.changes is not None:  # None: a single alert sent at once, not a digest
            rows.append(
                f'<tr><td style="padding:16px 24px 8px 24px"><h2 style="margin:0 0 8px 0;font-family:Arial,'
                f'Helvetica,sans-serif;font-size:16px;color:#101828">{e(t(lang, "changed"))}</h2>{items}'
                f"</td></tr>"
            )
    if d.responses:
        rows.append(
            f'<tr><td style="padding:8px 24px 4px 24px"><p {_SMALL}>{e(responses_line(d.responses, lang))}</p>'
            f"</td></tr>"
        )
    if d.actions:
        items = "".join(f"<p {_SMALL}>{e(action_line(a, lang, taxonomy))}</p>" for a in d.actions)
        rows.append(
            f'<tr><td style="padding:16px 24px 8px 24px"><h2 style="margin:0 0 8px 0;font-family:Arial,'
            f'Helvetica,sans-serif;font-size:16px;color:#101828">{e(t(lang, "actions"))}</h2>{items}'
            f"</td></tr>"
        )
    for cid, caption in closing:
        rows.append(
            f'<tr><td style="padding:8px 24px 12px 24px"><p {_SMALL}>{e(caption)}</p>'
            f'<img src="cid:{e(cid)}" width="592" alt="{e(alt[cid])}" '
            f'style="display:block;width:592px;max-width:100%;height:auto;border:0"></td></tr>'
        )
    foot = e(t(lang, "footer"))
    if unsubscribe_url:
        foot += (
            f' <a href="{e(unsubscribe_url)}" style="color:#475467">{e(t(lang, "unsubscribe"))}</a>'
        )
    rows.append(f'<tr><td style="padding:16px 24px 24px 24px"><p {_SMALL}>{foot}</p></td></tr>')
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{e(_heading(d, lang))}'
        f'</title></head><body style="margin:0;padding:0;background:#f2f4f7">'
        f'<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background:#f2f4f7">'
        f'<tr><td align="center" style="padding:16px 8px">'
        f'<table role="presentation" width="640" cellpadding="0" cellspacing="0" border="0" '
        f'style="width:640px;max-width:100%;background:#ffffff;border:1px solid #eaecf0">{"".join(rows)}</table>'
        f"</td></tr></table></body></html>"
    )


def email_bytes(
    r: Rendered,
    *,
    to: str,
    sender: str,
    msg_id: str,
    date: datetime,
    language: str,
    unsubscribe_url: str | None,
) -> bytes:
    """The RFC 5322 message: alternative(text, related(html, png…)), CRLF line ends."""
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = _one_line(
        r.subject
    )  # a line break in a phrase or segment must not break the header
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = msg_id
    msg["Auto-Submitted"] = "auto-generated"
    if unsubscribe_url:
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(r.text, subtype="plain", charset="utf-8")
    msg.add_alternative(r.html, subtype="html", charset="utf-8")
    html_part = msg.get_payload()[1]
    for cid, png, _alt in r.images:
        html_part.add_related(
            png,
            maintype="image",
            subtype="png",
            cid=f"<{cid}>",
            filename=cid.split("@")[0] + ".png",
            disposition="inline",
        )
    msg["Content-Language"] = language  # after the body: setting content clears Content-* headers
    return msg.as_bytes()


# --- one alert at once (immediate subscriptions) -------------------------------------------


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
    lines = _alert_text(alert, lang, public_url, taxonomy) + ["", t(lang, "footer")]
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
    body = _digest_html(
        d,
        lang,
        subject,
        public_url,
        unsubscribe_url,
        taxonomy,
        {alert["id"]: images[0][0]} if images else {},
        [],
        images,
    )
    return Rendered(subject, "\n".join(lines) + "\n", body, images)


# --- webhooks ------------------------------------------------------------------------------


def digest_notice(d: Digest, *, public_url: str, taxonomy: Taxonomy | None) -> Notice:
    sub, lang = d.subscription, d.subscription.language
    day = _local(d.period.end, sub.timezone)[:10]
    freq = t(lang, sub.frequency)
    n = len(d.alerts)
    title = (
        t(lang, "subject", freq=freq, period=day, n=n, s="" if n == 1 else "s")
        if n
        else t(lang, "subject_quiet", freq=freq, period=day)
    )
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
        title=title,
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
    lines += [f"{t(lang, 'drivers')}: {x}" for x in _drivers(alert)]
    lines += [f"“{q}”" for q in _quotes(alert)]
    return Notice(
        kind="alert",
        title=what_moved(alert, lang, taxonomy),
        lines=lines,
        language=lang,
        severity=alert["severity"],
        link=alert_link(public_url, alert["id"]),
        data={"alert": alert},
    )


def unsubscribe_url(public_url: str, sub: SubscriptionRow, key: bytes) -> str:
    return f"{public_url.rstrip('/')}/v1/unsubscribe?token={unsubscribe_token(sub, key)}"
