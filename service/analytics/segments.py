"""Segment breakdowns and significant differences, computed in the database.

A *dimension* is a feedback field (``region``, ``brand``, ``channel``, ``language``,
``product``, ``source``) or any attribute (``age_group``, ``tier``, ``dealer``…, also written
``attr:<name>``). A breakdown groups the items of a window (and filters) by one or two
dimensions and gives, per segment: volume, how many are scored, the sentiment distribution
(shares with Wilson intervals), mean sentiment score and net sentiment (positive share minus
negative share) with intervals, and per aspect its share of mentions and its net sentiment.

``differences`` compares every segment with the rest of the window on the negative and
positive shares and, per aspect, on the mention rate and the negative share of mentions:
a two-proportion z-test per comparison, Benjamini–Hochberg over everything compared, and
only segments with at least ``min_n`` items on both sides of a comparison are tested (small
segments never flood the list). Findings are ranked by ``|Cohen's h| · log10(1 + n)``: the
effect size, weighted by the segment's volume on a log scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.analytics.stats import (
    benjamini_hochberg,
    cohens_h,
    mean_interval,
    net_interval,
    two_proportion,
    wilson,
)
from service.domain import Taxonomy
from service.store import rollups
from service.store.repo import DIMENSIONS, FeedbackFilter, UnknownDimension
from service.store.rollups import AspectFacts, ItemFacts
from service.store.tables import AttributeRow, FeedbackRow

NONE_LABEL = "(none)"
MAX_DIMENSIONS = 2


def resolve_dimensions(
    session: Session, names: Sequence[str], flt: FeedbackFilter | None = None
) -> list[str]:
    """Canonical names (``attr:<name>`` for attributes); unknown names raise ``UnknownDimension``.
    An attribute is known when an item has it within ``flt``'s regions and brands (a scoped
    caller's filter: it learns nothing of items outside its scope)."""
    where = None
    if flt is not None:
        where = FeedbackFilter(
            regions=flt.regions, brands=flt.brands, nothing=flt.nothing, include_duplicates=True
        )
    if not names:
        raise UnknownDimension("give at least one dimension")
    if len(names) > MAX_DIMENSIONS:
        raise UnknownDimension(f"at most {MAX_DIMENSIONS} dimensions at once, got {len(names)}")
    out = []
    for name in names:
        if name in DIMENSIONS:
            out.append(name)
            continue
        attr = name[5:] if name.startswith("attr:") else name
        stmt = select(AttributeRow.name).where(AttributeRow.name == attr)
        if where is not None:
            stmt = where.apply(stmt.join(FeedbackRow, FeedbackRow.id == AttributeRow.feedback_id))
        found = attr and session.scalar(stmt.limit(1))
        if not found:
            raise UnknownDimension(
                f"unknown dimension {name!r}: not one of {sorted(DIMENSIONS)} and no stored "
                f"item has an attribute {attr!r}"
            )
        out.append(f"attr:{attr}")
    if len(set(out)) != len(out):
        raise UnknownDimension(f"a dimension is repeated: {list(names)}")
    return out


def _fetch(session: Session, dims: Sequence[str], flt: FeedbackFilter, with_aspects: bool):
    """Counts per segment, and per segment and aspect (from the daily rollups where they answer)."""
    segments: dict[tuple, ItemFacts] = rollups.facts(session, flt=flt, dims=dims)
    aspects: dict[tuple, dict[str, AspectFacts]] = {}
    if with_aspects:
        for key, f in rollups.facts(session, flt=flt, dims=dims, aspects=True).items():
            aspects.setdefault(key[:-1], {})[key[-1]] = f
    return segments, aspects


def _totals(segs: dict[tuple, ItemFacts], asp: dict[tuple, dict[str, AspectFacts]]):
    """The window's counts: the sum over its segments (every item is in exactly one)."""
    total, total_asp = ItemFacts(), {}
    for key, c in segs.items():
        total.add(c)
        for a, ac in asp.get(key, {}).items():
            total_asp.setdefault(a, AspectFacts()).add(ac)
    return total, total_asp


def _interval(value, lower, upper) -> dict:
    def r(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 4)

    return {"value": r(value), "lower": r(lower), "upper": r(upper)}


def _share(k: int, n: int, alpha: float) -> dict:
    lo, hi = wilson(k, n, alpha)
    return {"count": k, **_interval(k / n if n else None, lo if n else None, hi if n else None)}


def _summary(
    c: ItemFacts, asp: dict[str, AspectFacts], alpha: float, taxonomy: Taxonomy | None
) -> dict:
    order = taxonomy.ids if taxonomy else []
    names = sorted(asp, key=lambda a: (order.index(a) if a in order else len(order), a))
    return {
        "volume": c.items,
        "scored": c.scored,
        "sentiment": {
            "negative": _share(c.neg, c.scored, alpha),
            "neutral": _share(c.neu, c.scored, alpha),
            "positive": _share(c.pos, c.scored, alpha),
        },
        "mean_sentiment_score": _interval(*mean_interval(c.score_sum, c.score_sq, c.scored, alpha)),
        "net_sentiment": _interval(*net_interval(c.pos, c.neg, c.scored, alpha)),
        "aspects": [
            {
                "aspect": a,
                "mentions": asp[a].mentions,
                "share_of_items": _share(asp[a].mentions, c.scored, alpha),
                "net_sentiment": _interval(
                    *net_interval(asp[a].pos, asp[a].neg, asp[a].mentions, alpha)
                ),
            }
            for a in names
        ],
    }


def _label(key: tuple) -> tuple:
    return tuple(NONE_LABEL if v is None else v for v in key)


def breakdown(
    session: Session,
    *,
    dimensions: Sequence[str],
    flt: FeedbackFilter | None = None,
    alpha: float = 0.05,
    aspects: bool = True,
    taxonomy: Taxonomy | None = None,
    limit: int | None = None,
) -> dict:
    """Per segment of one or two dimensions (largest first), and the window's total."""
    dims = resolve_dimensions(session, dimensions, flt)
    flt = flt or FeedbackFilter()
    segs, asp = _fetch(session, dims, flt, aspects)
    total, total_asp = _totals(segs, asp)
    keys = sorted(segs, key=lambda k: (-segs[k].items, _label(k)))
    shown = keys[:limit] if limit else keys
    return {
        "dimensions": [d[5:] if d.startswith("attr:") else d for d in dims],
        "alpha": alpha,
        "segments": [
            {
                "segment": dict(
                    zip([d[5:] if d.startswith("attr:") else d for d in dims], _label(k))
                ),
                **_summary(segs[k], asp.get(k, {}), alpha, taxonomy),
            }
            for k in shown
        ],
        "segments_total": len(keys),
        "total": _summary(total, total_asp, alpha, taxonomy),
    }


@dataclass(frozen=True)
class Finding:
    segment: dict[str, str]
    metric: str  # negative_share | positive_share | aspect_mention_rate | aspect_negative_share
    aspect: str | None
    segment_value: float
    rest_value: float
    segment_n: int
    rest_n: int
    z: float
    p_value: float
    q_value: float
    effect_h: float
    rank_score: float
    summary: str

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        for k in ("segment_value", "rest_value", "z", "effect_h", "rank_score"):
            d[k] = round(d[k], 4)
        d["p_value"], d["q_value"] = float(f"{self.p_value:.3g}"), float(f"{self.q_value:.3g}")
        return d


_WORDS = {
    "negative_share": "negative share",
    "positive_share": "positive share",
    "aspect_mention_rate": "mentioned in",
    "aspect_negative_share": "negative share",
}


def differences(
    session: Session,
    *,
    dimensions: Sequence[str],
    flt: FeedbackFilter | None = None,
    min_n: int = 30,
    alpha: float = 0.05,
    aspects: Sequence[str] | None = None,
    taxonomy: Taxonomy | None = None,
    limit: int = 50,
) -> dict:
    """Segments that differ significantly from the rest of the window, strongest first."""
    dims = resolve_dimensions(session, dimensions, flt)
    names = [d[5:] if d.startswith("attr:") else d for d in dims]
    segs, asp = _fetch(session, dims, flt or FeedbackFilter(), True)
    total, total_asp = _totals(segs, asp)
    wanted = set(aspects) if aspects else set(total_asp)
    tests = []  # (key, metric, aspect, k1, n1, k2, n2)
    for key, c in segs.items():
        if any(v is None for v in key):
            continue  # items without the dimension are not a segment
        # (metric, aspect, k and n in the segment, k and n in the window): the rest is the window
        # less the segment
        compared = [
            ("negative_share", None, c.neg, c.scored, total.neg, total.scored),
            ("positive_share", None, c.pos, c.scored, total.pos, total.scored),
        ]
        for a in sorted(wanted & set(total_asp)):
            ac, ta = asp.get(key, {}).get(a, AspectFacts()), total_asp[a]
            compared += [
                ("aspect_mention_rate", a, ac.mentions, c.scored, ta.mentions, total.scored),
                ("aspect_negative_share", a, ac.neg, ac.mentions, ta.neg, ta.mentions),
            ]
        tests += [(key, metric, a, k, n, tk - k, tn - n) for metric, a, k, n, tk, tn in compared]
    tests = [t for t in tests if t[4] >= min_n and t[6] >= min_n]
    stats = [two_proportion(k1, n1, k2, n2) for _, _, _, k1, n1, k2, n2 in tests]
    qs = benjamini_hochberg([p for _, p in stats])
    findings = []
    for (key, metric, a, k1, n1, k2, n2), (z, p), q in zip(tests, stats, qs):
        if q >= alpha:
            continue
        p1, p2 = k1 / n1, k2 / n2
        h = cohens_h(p1, p2)
        label = " / ".join(str(v) for v in key)
        what = (
            f"'{taxonomy.get(a).name('en') if taxonomy and a in taxonomy.ids else a}' " if a else ""
        )
        line = (
            f"{label}: {what}{_WORDS[metric]} {100 * p1:.0f}% vs {100 * p2:.0f}% elsewhere, n={n1}"
            + (" items" if metric == "aspect_mention_rate" else "")
        )
        findings.append(
            Finding(
                dict(zip(names, key)),
                metric,
                a,
                p1,
                p2,
                n1,
                n2,
                z,
                p,
                q,
                h,
                abs(h) * math.log10(1 + n1),
                line,
            )
        )
    findings.sort(key=lambda f: -f.rank_score)
    return {
        "dimensions": names,
        "alpha": alpha,
        "min_n": min_n,
        "tested": len(tests),
        "significant": len(findings),
        "findings": [f.as_dict() for f in findings[:limit]],
    }
