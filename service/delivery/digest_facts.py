"""A digest's facts in the subscriber's language: what moved and where, an action's effect,
the response times, the scope. Every word of the digest's own comes from ``strings``; the
alert's facts (aspect names from the taxonomy, numbers, segments, quotes) are laid out in that
language too; customers' quotes stay as written. Shared by the email (``digest_render``) and
the webhook notices.
"""

from __future__ import annotations

from datetime import datetime

from service.delivery.digest_data import ActionReport, ResponseMetrics
from service.delivery.strings import t, words
from service.delivery.subscriptions import scope_of
from service.domain import Taxonomy
from service.store.tables import SubscriptionRow


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


# the alert types whose observed and expected values are counts or a metric's own values, not
# shares: the string that says so, and the alert's field that names what moved
AS_STATED = {"crisis_spike": ("posts", "brand"), "threshold": ("metric", "metric")}


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
    elif alert["type"] in AS_STATED:
        template, named_by = AS_STATED[alert["type"]]
        return t(
            lang,
            template,
            what=alert.get(named_by) or "",
            observed=alert["observed"] or 0,
            expected=alert["baseline"] or 0,
        )
    elif alert["type"] == "severe_complaint":
        return t(lang, "severe", what=name)
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


def drivers(alert: dict) -> list[str]:
    return [
        f"{d['dimension']} = {d['value']} (+{d['growth_per_week']:g}/wk)"
        for d in alert["details"].get("drivers", [])[:3]
    ]


def quotes(alert: dict) -> list[str]:
    return [" ".join(q["text"].split())[:280] for q in alert["details"].get("quotes", [])[:3]]


# --- email ---------------------------------------------------------------------------------


def responses_line(r: ResponseMetrics, lang: str) -> str:
    share = f"{100 * r.within / r.due:.0f}%" if r.due else "–"
    median = "–" if r.median is None else f"{r.median:.1f}"
    return t(
        lang,
        "responses",
        within=r.within,
        due=r.due,
        share=share,
        median=median,
        alerts=f"{r.alerts_in_time}/{r.alerts_due}",
    )


def action_line(a: ActionReport, lang: str, taxonomy: Taxonomy | None) -> str:
    """ "Spicy recipe rolled back (East × 18-24): since 2026-10-05, taste complaints fell from 64%
    to 13%; elsewhere 16% → 15%; effect −49.2 points [−58.1, −40.3]: worked"."""
    act, e = a.action, a.effect
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
    verdict = words(lang).get(f"verdict_{e['verdict']}", e["verdict"])
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


def scope_line(sub: SubscriptionRow, lang: str) -> str:
    scope = scope_of(sub)
    parts = [
        f"{t(lang, label)}: {', '.join(scope[k]) or t(lang, 'all')}"
        for k, label in (("brands", "brands"), ("regions", "regions_label"), ("aspects", "aspects"))
    ]
    return " · ".join(parts + [t(lang, "min_severity", sev=sub.min_severity)])


def local_time(dt: datetime, tz: str) -> str:
    from zoneinfo import ZoneInfo

    return dt.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
