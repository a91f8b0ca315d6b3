"""What a digest says: gathered through the store and the analytics, as of the period's end.

``build_digest`` gathers the alerts in the subscriber's scope that were active during the
period (most severe first, then newest), what changed in the period (raised, updated,
acknowledged, resolved), and, for the closing sections, net sentiment by region and against
the competitors over the 28 days to the period's end, the subscriber's actions with their
effect, and how fast negative feedback and alerts were answered. Nothing here is worded or
laid out: ``digest_render`` does that in the subscriber's language.

Alerts, changes, regions and benchmark rows stay the dicts the API and the webhooks carry
(``alert_dict`` and the chart rows); what only the digest reads is a dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from service.delivery.subscriptions import Period, alerts_in_scope, scope_of
from service.store import alerts as alerts_repo
from service.store.alerts import alert_dict
from service.store.repo import FeedbackFilter
from service.store.tables import SubscriptionRow

REGION_WINDOW = timedelta(days=28)
MAX_DETAILED = 20  # alerts laid out in full; the rest are counted with a link
MAX_SINGLES = 10  # single severe complaints listed one line each
ACTION_WEEKS = 12  # an action is reported for this many weeks after it started (or ended)
MAX_ACTIONS = 3
BENCHMARK_ASPECTS = 4


@dataclass(frozen=True)
class ResponseMetrics:
    """How fast the subscriber's scope answered, over the 7 days to the period's end."""

    negative: int  # negative items
    due: int  # of them, those whose 24 hours to answer had passed
    within: int  # of those, answered within 24 hours
    median: float | None  # median hours to answer
    alerts_due: int  # alerts whose 7 days for an action had passed
    alerts_in_time: int  # of them, with an action within 7 days


@dataclass(frozen=True)
class ActionReport:
    """One of the subscriber's actions and its effect as of the period's end."""

    action: dict  # actions.action_dict
    effect: dict  # effects.action_effect_dict (an EffectReport, or why there is none)


@dataclass
class Digest:
    subscription: SubscriptionRow
    period: Period
    alerts: list[dict]  # alert_dict
    # action -> [{"alert_id", "title", "at", "actor"}]; None: one alert sent at once
    changes: dict[str, list[dict]] | None
    regions: list[dict] = field(default_factory=list)  # region_sentiment rows
    benchmark: list[dict] = field(default_factory=list)  # benchmark_chart rows
    actions: list[ActionReport] = field(default_factory=list)
    responses: ResponseMetrics | None = None

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


def digest_responses(
    session: Session, sub: SubscriptionRow, period: Period
) -> ResponseMetrics | None:
    """The subscriber's response metrics over the 7 days to the period's end (None: no negative
    item and no alert in that week)."""
    from service.store import actions as actions_repo

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
    return ResponseMetrics(
        negative=g["negative_items"],
        due=g["due"],
        within=g["within"],
        median=g["median_hours_to_answer"],
        alerts_due=sum(x["due"] for x in alerts["by_severity"]),
        alerts_in_time=sum(x["with_action_in_time"] for x in alerts["by_severity"]),
    )


def digest_actions(session: Session, sub: SubscriptionRow, period: Period) -> list[ActionReport]:
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
            ActionReport(
                action=data,
                effect=effects.action_effect_dict(session, action=data, now=period.end),
            )
        )
        if len(out) == MAX_ACTIONS:
            break
    return out


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
