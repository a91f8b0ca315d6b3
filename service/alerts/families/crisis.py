"""``crisis_spike``: a burst of negative posts on a channel, one incident per burst."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np
from scipy import stats as sstats
from sqlalchemy import select

from service.alerts.families import Context, register
from service.alerts.findings import Finding
from service.alerts.rules import CrisisSpike
from service.store import alerts as alerts_repo
from service.store.repo import utc
from service.store.tables import FeedbackRow, ScoreRow

MAX_ITEMS = 1000  # item ids an incident keeps (what later severe complaints are folded by)
FLOOR_PER_HOUR = 0.1  # an empty baseline is not zero risk


@dataclass(frozen=True)
class BurstTest:
    p_value: float
    expected: float  # posts expected in the window at this time of day
    rate_per_hour: float  # the baseline's flat rate (what the onset scan uses)
    dispersion: float  # variance over mean of a window's count between days (>= 1)


def burst_test(count: int, baseline_hours: np.ndarray, window_hours: int) -> BurstTest:
    """Whether ``count`` posts in the last ``window_hours`` are more than this time of day brings.

    ``baseline_hours``: posts per hour over the baseline period just before the window, oldest
    first (the rule's ``baseline_hours``, a whole number of days). Real post volumes follow the
    clock and come in clumps: against a flat weekly rate with Poisson noise, every busy
    afternoon is a "crisis" (measured on NAB's real Twitter volumes, ``benchmarks/crisis_nab.py``).
    So the expectation is the mean count of the same clock hours on each earlier day of the
    baseline (at least the flat rate's floor), and the noise is negative binomial with the
    dispersion the baseline itself shows: for each hour of the day, the variance over the mean
    of the ``window_hours`` counts starting then on each day; their median, floored at 1
    (Poisson). The p-value is the upper tail at ``count``."""
    hours = np.asarray(baseline_hours, float)
    total = len(hours)
    flat = max(hours.sum() / max(total, 1), FLOOR_PER_HOUR)
    # the window's clock hours on each earlier day: the window starts at hour ``total``
    same = [
        hours[total - 24 * d : total - 24 * d + window_hours].sum()
        for d in range(max(1, -(-window_hours // 24)), total // 24 + 1)
    ]
    expected = max(
        float(np.mean(same)) if same else flat * window_hours, FLOOR_PER_HOUR * window_hours
    )
    phi = 1.0
    if total >= 48 + window_hours:
        sums = np.convolve(hours, np.ones(window_hours), mode="valid")  # sums[i] = hours[i:i+w]
        ratios = []
        for h in range(24):
            v = sums[h::24]
            if len(v) >= 3 and v.mean() > 0:
                ratios.append(v.var(ddof=1) / v.mean())
        if ratios:
            phi = max(1.0, float(np.median(ratios)))
    if count <= 0:
        p = 1.0
    elif phi <= 1.0 + 1e-9:
        p = float(sstats.poisson.sf(count - 1, expected))
    else:  # negative binomial with mean ``expected`` and variance ``phi · expected``
        p = float(sstats.nbinom.sf(count - 1, expected / (phi - 1), 1 / phi))
    return BurstTest(p, expected, flat, phi)


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
    what the same hours of the day brought over the ``baseline_hours`` before (``burst_test``:
    negative binomial with the baseline's own dispersion, one-sided at ``alpha``, at least
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
        flt = replace(
            scope,
            brands=(brand,),
            channels=tuple(rule.channels),
            sentiments=("negative",),
            include_duplicates=False,
        )
        hours = np.zeros(rule.baseline_hours)
        for (t,) in session.execute(
            replace(flt, since=base_start, until=win_start).apply(
                select(FeedbackRow.created_at).select_from(FeedbackRow)
            )
        ):
            i = int((utc(t) - utc(base_start)).total_seconds() // 3600)
            if 0 <= i < rule.baseline_hours:
                hours[i] += 1
        posts = session.execute(
            replace(flt, since=win_start, until=end).apply(
                select(FeedbackRow.id, FeedbackRow.created_at).order_by(
                    FeedbackRow.created_at, FeedbackRow.id
                )
            )
        ).all()
        x = len(posts)
        test = burst_test(x, hours, rule.window_hours)
        p, expected, rate = test.p_value, test.expected, test.rate_per_hour
        if x < rule.min_count or p >= rule.alpha:
            continue
        first = burst_onset([t for _, t in posts], end, rate)
        burst = posts[first:]
        onset = burst[0][1]
        key = f"{rule.name}|{brand}|{','.join(rule.channels)}"
        open_alert = next(
            iter(
                alerts_repo.unresolved(
                    session,
                    rule=rule.name,
                    brand=brand,
                    segment={"channel": ",".join(rule.channels)},
                )
            ),
            None,
        )
        before = json.loads(open_alert.details or "{}") if open_alert is not None else {}
        peak = max(x, int(before.get("peak", 0)))
        items = sorted(set(before.get("items", [])) | {i for i, _ in burst})[-MAX_ITEMS:]
        if open_alert is not None and open_alert.onset is not None:
            onset = min(onset, open_alert.onset)
        quotes = session.execute(
            replace(flt, since=onset, until=end, sentiments=())
            .apply(
                select(FeedbackRow.id, FeedbackRow.text)
                .join(ScoreRow, ScoreRow.feedback_id == FeedbackRow.id)
                .where(ScoreRow.sentiment == "negative")
                .order_by(ScoreRow.sentiment_score)
            )
            .limit(3)
        ).all()
        channels = "/".join(rule.channels)
        out.append(
            Finding.of(
                rule,
                key=key,
                brand=brand,
                region=None,
                aspect=None,
                title=(
                    f"Negative {channels} posts about {brand}: peak {peak} in {rule.window_hours} h vs "
                    f"{expected:.1f} expected, since {onset.strftime('%Y-%m-%d %H:%M')} UTC"
                ),
                segment={"channel": ",".join(rule.channels)},
                metric="negative_posts",
                baseline=round(expected, 3),
                observed=float(x),
                magnitude=round(x - expected, 3),
                confidence=round(1 - p, 6),
                onset=onset,
                details={
                    "p_value": p,
                    "window_hours": rule.window_hours,
                    "baseline_per_hour": round(rate, 4),
                    "dispersion": round(test.dispersion, 3),
                    "peak": peak,
                    "burst_posts": len(burst),
                    "items": items,
                    "quotes": [{"id": i, "text": t} for i, t in quotes],
                },
                items=set(items),
            )
        )
    return out
