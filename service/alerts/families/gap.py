"""``competitor_gap``: a gap to a competitor on an aspect opening or closing significantly."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from sqlalchemy import select

from service.alerts.families import Context, register
from service.alerts.findings import Finding
from service.alerts.rules import CompetitorGap
from service.analytics.benchmark import MARKET, aspect_quotes, gap_series
from service.analytics.shifts import detect, expected_band
from service.analytics.stats import benjamini_hochberg
from service.analytics.trends import BUCKETS, floor, periods
from service.store.tables import FeedbackRow


@register(CompetitorGap)
def evaluate(ctx: Context, rule: CompetitorGap) -> list[Finding]:
    """Per competitor (and the competitors pooled) and aspect: the weekly gap of our net
    sentiment to theirs (``service.analytics.benchmark.gap_series``), a level series weighted
    by its inverse variance, through the shift detectors; shifts either way confirmed
    within the last ``recent`` periods (a gap opening or closing), BH over every series."""
    session, as_of, scope = ctx.session, ctx.as_of, ctx.scope

    step = BUCKETS[rule.bucket]
    until = floor(as_of, rule.bucket)
    since = until - rule.history * step
    grid = periods(since, until, rule.bucket)
    base = replace(scope, since=since, until=until, include_duplicates=False)
    ours = ctx.our_brand
    rivals = list(rule.competitors) or [
        b for b in session.scalars(base.apply(select(FeedbackRow.brand).distinct())) if b != ours
    ]
    rivals = sorted(rivals) + ([MARKET] if len(rivals) > 1 and not rule.competitors else [])
    tested = []
    for rival in rivals:
        for aspect in rule.aspects or ctx.aspects:
            s = gap_series(
                session,
                flt=base,
                our_brand=ours,
                competitor=rival,
                aspect=aspect,
                since=since,
                until=until,
                bucket=rule.bucket,
            )
            pts = s["points"]
            mentions = np.array([min(p["ours_mentions"], p["their_mentions"]) for p in pts], float)
            if mentions.mean() < rule.min_mentions:
                continue
            y = np.array([np.nan if p["gap"] is None else p["gap"] for p in pts], float)
            w = np.array([1.0 / max(p["se"] ** 2, 1e-9) if p["se"] else 1.0 for p in pts])
            first = int(
                np.argmax(np.isfinite(y))
            )  # the series starts with the first period both sides spoke
            dets = [
                replace(d, onset=d.onset + first, detected_at=d.detected_at + first)
                for d in detect(y[first:], kind="level", trials=w[first:])
            ]
            dets = [d for d in dets if d.detected_at >= len(grid) - rule.recent]
            best = min(dets, key=lambda d: d.p_value, default=None)
            tested.append((best.p_value if best else 1.0, rival, aspect, best, pts))
    if not tested:
        return []
    out = []
    for q, (_, rival, aspect, det, pts) in zip(benjamini_hochberg([t[0] for t in tested]), tested):
        if det is None or q >= rule.fdr:
            continue
        onset = grid[min(det.onset, len(grid) - 1)]
        way = "widened in our favour" if det.direction > 0 else "moved in their favour"
        title = (
            f"{aspect} gap to {rival} {way}: {det.observed:+.2f} vs {det.baseline:+.2f} expected "
            f"(our net sentiment minus theirs), since {onset.date().isoformat()}"
        )
        sentiment = ("negative", "positive") if det.direction < 0 else ("positive", "negative")
        flt = replace(base, since=onset)
        quotes = aspect_quotes(
            session, flt, brand=ours, aspect=aspect, sentiment=sentiment[0], n=2
        ) + (
            aspect_quotes(session, flt, brand=rival, aspect=aspect, sentiment=sentiment[1], n=1)
            if rival != MARKET
            else []
        )
        out.append(
            Finding.of(
                rule,
                key=f"{rule.name}|{ours}|{aspect}|{rival}",
                title=title,
                brand=ours,
                region=None,
                aspect=aspect,
                segment={"competitor": rival},
                metric="net_sentiment_gap",
                baseline=round(det.baseline, 4),
                observed=round(det.observed, 4),
                magnitude=round(det.magnitude, 4),
                confidence=round(det.confidence, 4),
                onset=onset,
                details={
                    "q_value": round(float(q), 6),
                    "detector": det.kind,
                    "detection": det.to_dict(),
                    "competitor": rival,
                    "series": pts,
                    "quotes": quotes,
                    "aspects": [aspect],
                    "band": expected_band(
                        [p["period"] for p in pts], det.baseline, se=[p["se"] for p in pts]
                    ),
                },
            )
        )
    return out
