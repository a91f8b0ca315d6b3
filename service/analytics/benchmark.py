"""Competitor benchmark: brand × aspect metrics, gaps to our brand, strengths and weaknesses,
improvement priorities, and the gap over time.

Metrics per brand × aspect (optionally per segment of one dimension, e.g. region), over the
canonical items of a window (near-duplicates left out):

- ``share_of_voice``: the brand's mentions of the aspect over every brand's mentions of it;
- ``mention_rate``: the brand's items that mention the aspect (Wilson interval);
- ``positive_rate`` / ``negative_rate``: of those mentions (Wilson intervals);
- ``net_sentiment``: positive rate − negative rate, with its normal interval
  (variance ``(p₊ + p₋ − (p₊ − p₋)²) / n`` per mention);
- ``mean_rating``: of the rated items that mention it, on a 5-point scale (ratings are
  rescaled by their own ``rating_scale``), when there are any.

Gap: our net sentiment minus a competitor's on the same aspect and segment (positive: we are
ahead), a two-sided z-test of the difference (the two variances above), and
Benjamini–Hochberg over every gap the call tested (``q``). Besides each competitor, our brand
is compared with every competitor pooled (``(competitors)``, the market): a problem of ours
shows there first, since the pooled side has the most mentions. A gap is *significant* at
``q < alpha``; comparisons where either side has fewer than ``min_mentions`` mentions are
reported but not tested. A strength is a significant gap in our favour, a weakness one in a
competitor's (their happy customers are our benchmark); each comes with quotes from both
sides: the competitor's most positive mentions and our most negative ones (or the reverse).

Priorities. How much an aspect matters is estimated from our own items: an ordinary least
squares regression (statsmodels, HC3 standard errors) of each item's overall score on the
aspects' sentiment scores (0 when the aspect is not mentioned). The overall score is the item's
rating rescaled to [−1, 1] when at least ``MIN_RATED`` of our items in scope carry a rating,
else the model's sentiment score. ``importance`` is the aspect's coefficient (floored at 0):
how far the overall score moves per unit of the aspect's sentiment. The ``deficit`` is how
far we trail the best competitor on the aspect's net sentiment (0 when we lead). Priority =
importance × deficit; the list gives both factors, the coefficient's interval, the gap's
q-value, and our mention rate, so a reader sees why an aspect ranks where it does. The
regression reads at most ``MAX_REGRESSION_ITEMS`` of our most recent items.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from service.analytics.forecast import forecast
from service.analytics.stats import benjamini_hochberg, net_interval, two_sided_p, wilson, z_for
from service.analytics.trends import BUCKETS, bucket_key, parse_bucket_key, periods
from service.domain import Taxonomy
from service.store import rollups
from service.store.repo import FeedbackFilter, dimension_column
from service.store.rollups import AspectFacts
from service.store.tables import AspectScoreRow, FeedbackRow, ScoreRow

MIN_MENTIONS = 20
MIN_RATED = 200
MAX_REGRESSION_ITEMS = 20_000  # 50,000 cost 0.6 s of reads at 1,000,000 stored items
ALL = "(all)"
MARKET = "(competitors)"  # every competitor pooled: the market our customers compare us with


class BenchmarkError(ValueError):
    pass


@dataclass
class Counts:
    """Items per (segment, brand) and aspect cells per (segment, brand, aspect)."""

    items: dict[tuple[str, str], int] = field(default_factory=dict)
    cells: dict[tuple[str, str, str], AspectFacts] = field(default_factory=dict)


def counts(session: Session, *, flt: FeedbackFilter, segment: str | None = None) -> Counts:
    """Items per (segment, brand) and mentions per (segment, brand, aspect), from the daily
    rollups where they answer; items without the segment's dimension are left out."""
    flt = replace(flt, include_duplicates=False)
    dims = [segment, "brand"] if segment is not None else ["brand"]
    out = Counts()
    for key, f in rollups.facts(session, flt=flt, dims=dims).items():
        if segment is None:
            out.items[(ALL, key[0])] = f.items
        elif key[0] is not None:
            out.items[(str(key[0]), key[1])] = f.items
    for key, f in rollups.facts(session, flt=flt, dims=dims, aspects=True).items():
        if segment is not None and key[0] is None:
            continue
        seg = ALL if segment is None else str(key[0])
        out.cells[(seg, key[-2], key[-1])] = f
    return out


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), nd)


def _rate(k: int, n: int, alpha: float) -> dict:
    lo, hi = wilson(k, n, alpha)
    return {
        "value": _r(k / n) if n else None,
        "lower": _r(lo) if n else None,
        "upper": _r(hi) if n else None,
    }


def _net_var(c: AspectFacts) -> float:
    if not c.mentions:
        return float("nan")
    pp, pn = c.pos / c.mentions, c.neg / c.mentions
    return max(pp + pn - (pp - pn) ** 2, 1e-9) / c.mentions


def gap_test(ours: AspectFacts, theirs: AspectFacts) -> tuple[float, float, float]:
    """(gap, z, two-sided p) of our net sentiment minus theirs."""
    a = (ours.pos - ours.neg) / ours.mentions
    b = (theirs.pos - theirs.neg) / theirs.mentions
    se = math.sqrt(_net_var(ours) + _net_var(theirs))
    z = (a - b) / se if se > 0 else 0.0
    return a - b, z, two_sided_p(z)


def benchmark(
    session: Session,
    *,
    flt: FeedbackFilter,
    our_brand: str,
    brands: Sequence[str] = (),
    aspects: Sequence[str] = (),
    segment: str | None = None,
    alpha: float = 0.05,
    min_mentions: int = MIN_MENTIONS,
    taxonomy: Taxonomy | None = None,
) -> dict:
    """Metrics per segment × aspect × brand, and every gap to our brand with its test."""
    if brands:
        flt = replace(flt, brands=tuple(dict.fromkeys([our_brand, *brands])))
    c = counts(session, flt=flt, segment=segment)
    order = taxonomy.ids if taxonomy else []
    all_aspects = sorted(
        {a for _, _, a in c.cells} & set(aspects or {a for _, _, a in c.cells}),
        key=lambda a: (order.index(a) if a in order else len(order), a),
    )
    segments = sorted({s for s, _ in c.items})
    brand_ids = sorted({b for _, b in c.items}, key=lambda b: (b != our_brand, b))
    rows, gaps = [], []
    for seg in segments:
        for aspect in all_aspects:
            total = sum(c.cells.get((seg, b, aspect), AspectFacts()).mentions for b in brand_ids)
            for b in brand_ids:
                cell = c.cells.get((seg, b, aspect), AspectFacts())
                items = c.items.get((seg, b), 0)
                if not items:
                    continue
                net, lo, hi = net_interval(cell.pos, cell.neg, cell.mentions, alpha)
                rows.append(
                    {
                        "segment": seg,
                        "aspect": aspect,
                        "brand": b,
                        "ours": b == our_brand,
                        "items": items,
                        "mentions": cell.mentions,
                        "share_of_voice": _r(cell.mentions / total) if total else None,
                        "mention_rate": _rate(cell.mentions, items, alpha),
                        "positive_rate": _rate(cell.pos, cell.mentions, alpha),
                        "negative_rate": _rate(cell.neg, cell.mentions, alpha),
                        "net_sentiment": {"value": _r(net), "lower": _r(lo), "upper": _r(hi)},
                        "mean_rating": _r(cell.rating_sum / cell.rated, 3) if cell.rated else None,
                        "rated": cell.rated,
                    }
                )
            ours = c.cells.get((seg, our_brand, aspect))
            rivals = [b for b in brand_ids if b != our_brand]
            pooled = AspectFacts()
            for b in rivals:
                cell = c.cells.get((seg, b, aspect), AspectFacts())
                pooled.mentions += cell.mentions
                pooled.pos += cell.pos
                pooled.neg += cell.neg
            for b in rivals + ([MARKET] if len(rivals) > 1 else []):
                theirs = pooled if b == MARKET else c.cells.get((seg, b, aspect))
                g = {
                    "segment": seg,
                    "aspect": aspect,
                    "competitor": b,
                    "ours_mentions": ours.mentions if ours else 0,
                    "their_mentions": theirs.mentions if theirs else 0,
                }
                if (
                    ours
                    and theirs
                    and ours.mentions >= min_mentions
                    and theirs.mentions >= min_mentions
                ):
                    gap, z, p = gap_test(ours, theirs)
                    half = z_for(alpha) * math.sqrt(_net_var(ours) + _net_var(theirs))
                    g.update(
                        gap=_r(gap),
                        lower=_r(gap - half),
                        upper=_r(gap + half),
                        z=_r(z, 3),
                        p_value=p,
                    )
                else:
                    g.update(gap=None, lower=None, upper=None, z=None, p_value=None)
                gaps.append(g)
    tested = [g for g in gaps if g["p_value"] is not None]
    for g, q in zip(tested, benjamini_hochberg([g["p_value"] for g in tested])):
        g["q_value"] = float(f"{q:.3g}")
        g["p_value"] = float(f"{g['p_value']:.3g}")
        g["significant"] = q < alpha
        g["favours"] = ("ours" if g["gap"] > 0 else "competitor") if g["significant"] else None
    for g in gaps:
        g.setdefault("q_value", None)
        g.setdefault("significant", False)
        g.setdefault("favours", None)
    return {
        "our_brand": our_brand,
        "segment": segment,
        "alpha": alpha,
        "min_mentions": min_mentions,
        "brands": brand_ids,
        "aspects": all_aspects,
        "segments": segments,
        "metrics": rows,
        "gaps": gaps,
        "tests": len(tested),
    }


def aspect_quotes(
    session: Session,
    flt: FeedbackFilter,
    *,
    brand: str,
    aspect: str,
    sentiment: str,
    segment: str | None = None,
    value: str = ALL,
    n: int = 2,
) -> list[dict]:
    """The ``n`` most positive (or negative) mentions of ``aspect`` for ``brand``, newest first
    among equals, within ``segment == value`` when given."""
    f = replace(flt, brands=(brand,), include_duplicates=False)
    stmt = (
        select(
            FeedbackRow.id,
            FeedbackRow.text,
            AspectScoreRow.evidence,
            AspectScoreRow.sentiment_score,
        )
        .join(AspectScoreRow, AspectScoreRow.feedback_id == FeedbackRow.id)
        .where(AspectScoreRow.aspect == aspect, AspectScoreRow.sentiment == sentiment)
    )
    if segment is not None and value != ALL:
        stmt, col = dimension_column(stmt, segment)
        stmt = stmt.where(col == value)
    order = (
        AspectScoreRow.sentiment_score.desc()
        if sentiment == "positive"
        else AspectScoreRow.sentiment_score
    )
    return [
        {"id": i, "brand": brand, "text": t, "evidence": e}
        for i, t, e, _ in session.execute(
            f.apply(stmt).order_by(order, FeedbackRow.id.desc()).limit(n)
        )
    ]


def strengths_and_weaknesses(
    session: Session, report: dict, *, flt: FeedbackFilter, quotes: int = 2
) -> dict:
    """Significant gaps, largest first, with quotes from both sides."""
    our, seg = report["our_brand"], report["segment"]
    out = {"strengths": [], "weaknesses": []}
    for g in sorted((g for g in report["gaps"] if g["significant"]), key=lambda g: -abs(g["gap"])):
        ours_good = g["gap"] > 0
        entry = {
            **g,
            "quotes": {
                "ours": aspect_quotes(
                    session,
                    flt,
                    brand=our,
                    aspect=g["aspect"],
                    sentiment="positive" if ours_good else "negative",
                    segment=seg,
                    value=g["segment"],
                    n=quotes,
                ),
                "competitor": aspect_quotes(
                    session,
                    flt,
                    brand=g["competitor"],
                    aspect=g["aspect"],
                    sentiment="negative" if ours_good else "positive",
                    segment=seg,
                    value=g["segment"],
                    n=quotes,
                ),
            },
        }
        out["strengths" if ours_good else "weaknesses"].append(entry)
    return out


def importance(
    session: Session,
    *,
    flt: FeedbackFilter,
    our_brand: str,
    aspects: Sequence[str],
    alpha: float = 0.05,
) -> dict:
    """Per aspect: how far our items' overall score moves per unit of its sentiment (OLS)."""
    import statsmodels.api as sm  # slow to import (seconds): only when this analysis runs

    f = replace(flt, brands=(our_brand,), include_duplicates=False)
    items = session.execute(
        f.apply(
            select(
                FeedbackRow.id,
                FeedbackRow.rating,
                FeedbackRow.rating_scale,
                ScoreRow.sentiment_score,
            ).join(ScoreRow, ScoreRow.feedback_id == FeedbackRow.id)
        )
        .order_by(FeedbackRow.created_at.desc(), FeedbackRow.id.desc())
        .limit(MAX_REGRESSION_ITEMS)
    ).all()
    if len(items) < 30 or not aspects:
        return {"target": None, "items": len(items), "aspects": {}}
    index = {r[0]: i for i, r in enumerate(items)}
    col = {a: j for j, a in enumerate(aspects)}
    X = np.zeros((len(items), len(aspects)))
    ids = list(index)
    for lo in range(0, len(ids), 5000):
        chunk = ids[lo : lo + 5000]
        for fid, aspect, score in session.execute(
            select(
                AspectScoreRow.feedback_id, AspectScoreRow.aspect, AspectScoreRow.sentiment_score
            ).where(AspectScoreRow.feedback_id.in_(chunk), AspectScoreRow.aspect.in_(list(aspects)))
        ):
            X[index[fid], col[aspect]] = score
    rated = [(r[1], r[2]) for r in items if r[1] is not None and r[2]]
    if len(rated) >= MIN_RATED:
        keep = np.array([r[1] is not None and bool(r[2]) for r in items])
        y = np.array([2 * (r[1] / r[2]) - 1 for r in items if r[1] is not None and r[2]], float)
        X, target = X[keep], "rating"
    else:
        y, target = np.array([r[3] for r in items], float), "sentiment_score"
    used = X.any(axis=0)
    res = sm.OLS(y, sm.add_constant(X[:, used], has_constant="add")).fit(cov_type="HC3")
    ci = res.conf_int(alpha)
    out, k = {}, 1
    for j, (a, u) in enumerate(zip(aspects, used)):
        if not u:
            continue
        out[a] = {
            "coefficient": _r(res.params[k]),
            "lower": _r(ci[k][0]),
            "upper": _r(ci[k][1]),
            "importance": _r(max(res.params[k], 0.0)),
            "mentions": int((X[:, j] != 0).sum()),
        }
        k += 1
    return {"target": target, "items": int(len(y)), "r_squared": _r(res.rsquared), "aspects": out}


def priorities(session: Session, report: dict, *, flt: FeedbackFilter) -> dict:
    """Our aspects ranked by importance × deficit to the best competitor, per segment of a
    ``benchmark`` report (importance: ``importance`` over our items under ``flt``)."""
    our_brand, segment = report["our_brand"], report["segment"]
    imp = importance(
        session, flt=flt, our_brand=our_brand, aspects=report["aspects"], alpha=report["alpha"]
    )
    by_seg: dict[str, list[dict]] = {}
    ours = {(m["segment"], m["aspect"]): m for m in report["metrics"] if m["ours"]}
    for seg in report["segments"]:
        ranked = []
        for aspect in report["aspects"]:
            gaps = [
                g
                for g in report["gaps"]
                if g["segment"] == seg and g["aspect"] == aspect and g["gap"] is not None
            ]
            worst = min(gaps, key=lambda g: g["gap"], default=None)
            deficit = max(-worst["gap"], 0.0) if worst else 0.0
            weight = (imp["aspects"].get(aspect) or {}).get("importance") or 0.0
            m = ours.get((seg, aspect))
            ranked.append(
                {
                    "aspect": aspect,
                    "priority": _r(weight * deficit, 5),
                    "importance": weight,
                    "importance_interval": [
                        (imp["aspects"].get(aspect) or {}).get("lower"),
                        (imp["aspects"].get(aspect) or {}).get("upper"),
                    ],
                    "deficit": _r(deficit),
                    "versus": worst["competitor"] if worst and deficit > 0 else None,
                    "gap_q_value": worst["q_value"] if worst else None,
                    "gap_significant": bool(worst and worst["significant"] and worst["gap"] < 0),
                    "our_net_sentiment": m["net_sentiment"]["value"] if m else None,
                    "our_mention_rate": m["mention_rate"]["value"] if m else None,
                }
            )
        ranked.sort(key=lambda r: (-(r["priority"] or 0), -(r["deficit"] or 0), r["aspect"]))
        for i, r in enumerate(ranked, 1):
            r["rank"] = i
        by_seg[seg] = ranked
    return {"our_brand": our_brand, "segment": segment, "importance": imp, "priorities": by_seg}


def gap_series(
    session: Session,
    *,
    flt: FeedbackFilter,
    our_brand: str,
    competitor: str,
    aspect: str,
    since: datetime,
    until: datetime,
    bucket: str = "week",
) -> dict:
    """Per period: each side's net sentiment on the aspect and the gap with its standard error."""

    grid = periods(since, until, bucket)
    idx = {p: i for i, p in enumerate(grid)}
    f = replace(
        flt,
        since=since,
        until=until,
        include_duplicates=False,
        brands=flt.brands if competitor == MARKET else (our_brand, competitor),
    )
    key = bucket_key(session, bucket).label("k")
    s = AspectScoreRow.sentiment
    stmt = f.apply(
        select(
            key,
            FeedbackRow.brand,
            func.count(),
            func.sum(case((s == "positive", 1), else_=0)),
            func.sum(case((s == "negative", 1), else_=0)),
        )
        .select_from(FeedbackRow)
        .join(AspectScoreRow, AspectScoreRow.feedback_id == FeedbackRow.id)
        .where(AspectScoreRow.aspect == aspect)
    ).group_by(key, FeedbackRow.brand)
    cells = {b: [AspectFacts() for _ in grid] for b in (our_brand, competitor)}
    for k, brand, n, pos, neg in session.execute(stmt):
        i = idx.get(parse_bucket_key(k))
        side = (
            our_brand
            if brand == our_brand
            else competitor
            if competitor in (brand, MARKET)
            else None
        )
        if i is not None and side is not None:
            c = cells[side][i]
            c.mentions, c.pos, c.neg = (
                c.mentions + int(n),
                c.pos + int(pos or 0),
                c.neg + int(neg or 0),
            )
    points = []
    for p, a, b in zip(grid, cells[our_brand], cells[competitor]):
        if a.mentions and b.mentions:
            gap, _, _ = gap_test(a, b)
            se = math.sqrt(_net_var(a) + _net_var(b))
        else:
            gap, se = None, None
        points.append(
            {
                "period": p.isoformat(),
                "ours_mentions": a.mentions,
                "their_mentions": b.mentions,
                "ours_net": _r((a.pos - a.neg) / a.mentions) if a.mentions else None,
                "their_net": _r((b.pos - b.neg) / b.mentions) if b.mentions else None,
                "gap": _r(gap),
                "se": _r(se),
            }
        )
    return {
        "our_brand": our_brand,
        "competitor": competitor,
        "aspect": aspect,
        "bucket": bucket,
        "points": points,
    }


def gap_report(
    session: Session,
    *,
    flt: FeedbackFilter,
    our_brand: str,
    competitor: str,
    aspect: str,
    bucket: str = "week",
    horizon: int = 4,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict:
    """The gap series of ``flt``'s window and its forecast (``service.analytics.forecast``: a
    level series weighted by each period's effective number of mentions)."""

    out = gap_series(
        session,
        flt=flt,
        our_brand=our_brand,
        competitor=competitor,
        aspect=aspect,
        since=flt.since,
        until=flt.until,
        bucket=bucket,
    )
    seen = [p for p in out["points"] if p["gap"] is not None]
    out["forecast"] = []
    if horizon and len(seen) >= 3:
        y = np.array([p["gap"] for p in seen], float)
        n = np.array(
            [1.0 / max(p["se"] ** 2, 1e-9) for p in seen]
        )  # the inverse variance as "trials"
        fc = forecast(y, horizon, kind="level", trials=n, alpha=alpha, seed=seed)
        step = BUCKETS[bucket]
        last = datetime.fromisoformat(out["points"][-1]["period"])
        out.update(model=fc.model, criterion=fc.criterion, alpha=alpha, seed=seed)
        out["forecast"] = [
            {
                "period": (last + (i + 1) * step).isoformat(),
                "mean": _r(m),
                "lower": _r(lo),
                "upper": _r(hi),
            }
            for i, (m, lo, hi) in enumerate(zip(fc.mean, fc.lower, fc.upper))
        ]
    return out
