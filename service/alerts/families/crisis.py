"""``crisis_spike``: a burst of negative posts on a channel, one incident per burst."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

from scipy import stats as sstats
from sqlalchemy import func, select

from service.alerts.families import Context, register
from service.alerts.findings import Finding
from service.alerts.rules import CrisisSpike
from service.store import alerts as alerts_repo
from service.store.tables import FeedbackRow, ScoreRow


MAX_ITEMS = 1000  # item ids an incident keeps (what later severe complaints are folded by)


def burst_onset(times: list[datetime], end: datetime, rate: float) -> int:
    """Index of the burst's first post among the window's post times (sorted): the start that
    makes the posts from it to ``end`` least likely under the baseline ``rate`` per hour (a scan
    statistic). An ordinary post before the burst adds one post and hours of span, so it is not
    the onset; the burst's own first post is."""
    best, best_p = 0, 2.0
    for k, t in enumerate(times):
        span = max((end - t).total_seconds() / 3600, 1 / 60)
        p = float(sstats.poisson.logsf(len(times) - k - 1, rate * span))
        if p < best_p - 1e-12:
            best, best_p = k, p
    return best


@register(CrisisSpike)
def evaluate(ctx: Context, rule: CrisisSpike) -> list[Finding]:
    """Negative posts on the rule's channels in the ``window_hours`` up to the moment against
    their rate over the ``baseline_hours`` before (Poisson, one-sided at ``alpha``, at least
    ``min_count`` posts). One finding per brand and burst: its onset is the burst's first post
    (``burst_onset``), its title keeps the peak count of the incident (an open alert's peak is
    read back), and it carries the burst's item ids, so the single severe complaints inside it
    fold into it (``service.alerts.engine``). The window ends at the moment itself, not at the
    hour before it: a run every few minutes sees a post minutes after it arrives."""
    session, as_of, scope = ctx.session, ctx.as_of, ctx.scope
    end = as_of
    win_start = end - timedelta(hours=rule.window_hours)
    base_start = win_start - timedelta(hours=rule.baseline_hours)
    out = []
    for brand in ctx.brands(rule, replace(scope, since=base_start, until=end)):
        flt = replace(scope, brands=(brand,), channels=tuple(rule.channels), sentiments=("negative",),
                      include_duplicates=False)
        base = session.scalar(replace(flt, since=base_start, until=win_start).apply(
            select(func.count()).select_from(FeedbackRow))) or 0
        posts = session.execute(replace(flt, since=win_start, until=end).apply(
            select(FeedbackRow.id, FeedbackRow.created_at).order_by(FeedbackRow.created_at, FeedbackRow.id))).all()
        x = len(posts)
        rate = max(base / rule.baseline_hours, 0.1)  # per hour, floored: an empty week is not zero risk
        expected = rate * rule.window_hours
        p = float(sstats.poisson.sf(x - 1, expected)) if x else 1.0
        if x < rule.min_count or p >= rule.alpha:
            continue
        first = burst_onset([t for _, t in posts], end, rate)
        burst = posts[first:]
        onset = burst[0][1]
        key = f"{rule.name}|{brand}|{','.join(rule.channels)}"
        open_alert = next(iter(alerts_repo.unresolved(session, rule=rule.name, brand=brand,
                                                      segment={"channel": ",".join(rule.channels)})), None)
        before = json.loads(open_alert.details or "{}") if open_alert is not None else {}
        peak = max(x, int(before.get("peak", 0)))
        items = sorted(set(before.get("items", [])) | {i for i, _ in burst})[-MAX_ITEMS:]
        if open_alert is not None and open_alert.onset is not None:
            onset = min(onset, open_alert.onset)
        quotes = session.execute(replace(flt, since=onset, until=end, sentiments=()).apply(
            select(FeedbackRow.id, FeedbackRow.text).join(ScoreRow, ScoreRow.feedback_id == FeedbackRow.id)
            .where(ScoreRow.sentiment == "negative").order_by(ScoreRow.sentiment_score)).limit(3)).all()
        channels = "/".join(rule.channels)
        out.append(Finding(
            key=key, rule=rule.name, type=rule.type, severity=rule.severity, brand=brand, region=None, aspect=None,
            title=(f"Negative {channels} posts about {brand}: peak {peak} in {rule.window_hours} h vs "
                   f"{expected:.1f} expected, since {onset.strftime('%Y-%m-%d %H:%M')} UTC"),
            segment={"channel": ",".join(rule.channels)}, metric="negative_posts", baseline=round(expected, 3),
            observed=float(x), magnitude=round(x - expected, 3), confidence=round(1 - p, 6), onset=onset,
            details={"p_value": p, "window_hours": rule.window_hours, "baseline_per_hour": round(rate, 4),
                     "peak": peak, "burst_posts": len(burst), "items": items,
                     "quotes": [{"id": i, "text": t} for i, t in quotes]},
            items=set(items)))
    return out
