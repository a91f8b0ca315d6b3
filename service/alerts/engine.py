"""The alert engine: evaluate the rules as of a moment, then raise, update or leave alerts.

Evaluation (``evaluate``) never writes; ``run`` turns findings into alerts:

* a finding's **key** is its rule, brand, aspect and segment. While an alert with that key is
  open or acknowledged, a new finding *updates* it (observed value, magnitude, last detection)
  instead of raising another: an ongoing shift is one alert;
* after an alert is resolved, its key stays quiet for ``cooldown_hours``;
* the same ``as_of`` evaluated twice changes nothing (``radar alerts run`` is idempotent).

Series rules (``preference_shift``, ``negative_surge``) count, per complete period, the items
with a negative mention of the aspect out of the segment's items (a binomial series: more
mentions and more negative ones both move it), run the shift detectors of
``service.analytics.shifts`` on it, keep upward shifts confirmed within the rule's last
``recent`` periods, and control the false discovery rate over every series the rule tested
(Benjamini–Hochberg at ``fdr``). Before the detectors, a cheap screen (``_recent_excess``: the
last periods against what the earlier ones predict, each cell's rate shrunk towards the other
cells' by an empirical-Bayes prior, ``cell_prior``) skips the series with no upward evidence at all, which
is most of them; a finding's p-value is the larger of the screen's and the detector's. A
downward move (an improvement) is never an alarm; it shows as a trend in ``/v1/trends``.

With ``phrases`` on (the default), every tracked phrase is a series too: per period, the
segment's items that mention it or a close paraphrase. A phrase someone tracks ("too spicy")
names a narrow complaint whose base rate is near zero, so a few weeks of it rising in a small
segment stand out where the aspect's whole complaint rate (all taste complaints, and the
tagger's mistakes) would still be noise. A phrase's shift is filed under the aspect its matches
complain about: one alert per brand × aspect × segment, whichever signal found it first.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

import numpy as np
from scipy import stats as sstats
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.alerts.rules import (AlertConfig, CompetitorGap, CrisisSpike, NegativeSurge, PreferenceShift,
                                  SevereComplaint, Threshold)
from service.analytics.stats import benjamini_hochberg
from service.analytics.trends import BUCKETS, bucket_key, floor, parse_bucket_key, periods, series
from service.store.repo import FeedbackFilter, UnknownDimension, dimension_column
from service.store.tables import AlertEventRow, AlertRow, AspectScoreRow, FeedbackRow, ScoreRow, TrackedPhraseRow

log = logging.getLogger(__name__)
FILTER_FIELD = {"region": "regions", "brand": "brands", "channel": "channels", "language": "languages",
                "product": "products", "source": "sources"}
DRIVER_DIMENSIONS = ("channel", "language", "product")
SCREEN_ALPHA = 0.05


PRIOR_STRENGTHS = np.geomspace(2.0, 20_000.0, 41)


def cell_prior(k: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """Empirical-Bayes beta prior ``(a, b)`` for one rate across the cells of a brand, from
    each cell's earlier counts ``k`` of ``n`` items: its mean is the pooled rate and its
    strength ``a + b`` maximises the beta-binomial likelihood of the cells' counts. Cells
    whose rates agree (as a rare phrase's do before anything happens) get a strong prior, so
    that a small cell that happened never to say it does not make two mentions look like a
    shift; cells that truly differ keep their own rates."""
    keep = n > 0
    k, n = k[keep], n[keep]
    p = (float(k.sum()) + 0.5) / (float(n.sum()) + 1.0)
    if len(n) < 2:
        return 0.5, 0.5
    ll = [sstats.betabinom.logpmf(k, n, m * p, m * (1 - p)).sum() for m in PRIOR_STRENGTHS]
    m = float(PRIOR_STRENGTHS[int(np.argmax(ll))])
    return m * p, m * (1 - p)


def _recent_excess(y: np.ndarray, n: np.ndarray, recent: int, prior: tuple[float, float] = (0.5, 0.5)) -> float:
    """One-sided p-value of the last ``recent`` periods' count against what the earlier ones
    predict: the beta-binomial predictive tail, with the earlier counts updating ``prior`` (a
    cell's empirical-Bayes prior from ``cell_prior``; Jeffreys' without cells). The rate's own
    uncertainty is in the test, so a short or sparse history is not overconfident. A series
    must pass this before the detectors run, and its p-value bounds the detector's from below."""
    if len(y) <= recent:
        return 1.0
    kb, nb = float(y[:-recent].sum()), float(n[:-recent].sum())
    kr, nr = int(y[-recent:].sum()), int(n[-recent:].sum())
    if nr == 0 or kr == 0:
        return 1.0
    a, b = prior
    return float(sstats.betabinom.sf(kr - 1, nr, a + kb, b + nb - kb))


@dataclass
class Finding:
    key: str
    rule: str
    type: str
    severity: str
    title: str
    brand: str | None
    region: str | None
    aspect: str | None
    segment: dict
    metric: str | None
    baseline: float | None
    observed: float | None
    magnitude: float | None
    confidence: float | None
    onset: datetime | None
    details: dict = field(default_factory=dict)
    items: set[int] = field(default_factory=set, repr=False)  # the items behind it since the onset
    exposure: int = 0  # the segment's items since the onset
    scope: FeedbackFilter | None = field(default=None, repr=False)  # the segment's filter


EXPLAINED_ALPHA = 0.01


def _explained_by(f: Finding, items: set[int]) -> bool:
    """Whether ``f``'s rise is another incident's ``items`` under another name: without them,
    ``f``'s count since the onset is no longer above its expected rate (binomial, one-sided,
    ``EXPLAINED_ALPHA``)."""
    if not f.items or not f.exposure or f.baseline is None:
        return False
    rest = len(f.items - items)
    return rest == 0 or float(sstats.binom.sf(rest - 1, f.exposure, max(f.baseline, 1e-6))) >= EXPLAINED_ALPHA


def merge_findings(found: list[Finding]) -> list[Finding]:
    """One alert per incident: of the findings on the same brand and segment, one that shares
    its key with a stronger one (a phrase filed under the same aspect), or whose rise the
    stronger one's items explain (``_explained_by``), is folded into it as ``also``. Crushed
    cups that the tagger files under packaging and under product quality are one surge.
    ``found`` comes strongest first."""
    kept: list[Finding] = []
    for f in found:
        home = next((g for g in kept if g.brand == f.brand and g.segment == f.segment
                     and (g.key == f.key or _explained_by(f, g.items))), None)
        if home is None:
            kept.append(f)
            continue
        home.details.setdefault("also", []).append(
            {"title": f.title, "aspect": f.aspect, **f.details.get("signal", {}), "q_value": f.details.get("q_value")})
        if f.aspect and f.aspect not in home.details.setdefault("aspects", []):
            home.details["aspects"].append(f.aspect)
        home.items |= f.items
    return kept


@dataclass
class RunReport:
    as_of: datetime
    raised: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    cooling_down: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {rule, reason}: rules that could not run

    def to_dict(self) -> dict:
        return {"as_of": self.as_of.isoformat(), "raised": self.raised, "updated": self.updated,
                "unchanged": self.unchanged, "cooling_down": self.cooling_down, "skipped": self.skipped}


def _segment_filter(flt: FeedbackFilter, segment: dict[str, str]) -> FeedbackFilter:
    attrs = dict(flt.attributes)
    for dim, value in segment.items():
        if dim in FILTER_FIELD:
            flt = replace(flt, **{FILTER_FIELD[dim]: (value,)})
        else:
            attrs[dim.removeprefix("attr:")] = (value,)
    return replace(flt, attributes=attrs)


def _signal(aspect: str | None, phrase: str | None) -> str:
    return f"phrase:{phrase}" if phrase else str(aspect)


def _describe(segment: dict[str, str]) -> str:
    return " × ".join(segment.values()) if segment else "everyone"


class AlertEngine:
    def __init__(self, config: AlertConfig, *, aspects: list[str], our_brand: str, competitors=None):
        self.config = config
        self.aspects = aspects
        self.our_brand = our_brand
        self.competitors = competitors  # brand names and aliases, left out of an alert's phrases

    # --- evaluation ------------------------------------------------------------------------

    def evaluate(self, session: Session, as_of: datetime, scope: FeedbackFilter | None = None
                 ) -> tuple[list[Finding], list[str]]:
        """Every enabled rule's findings, and the rules that could not run on this store (each
        ``{"rule", "reason"}``). A rule that cannot run (a dimension no item has, an aspect the
        taxonomy lacks) or that fails is reported and skipped; the other rules still run."""
        scope = scope or FeedbackFilter()
        findings, skipped = [], []
        for rule in self.config.rules:
            if not rule.enabled:
                continue
            handler = {PreferenceShift: self._series_rule, NegativeSurge: self._series_rule,
                       CompetitorGap: self._gap_rule, CrisisSpike: self._crisis, SevereComplaint: self._severe,
                       Threshold: self._threshold}[type(rule)]
            unknown = sorted(set(getattr(rule, "aspects", None) or []) - set(self.aspects))
            if getattr(rule, "aspect", None) and rule.aspect not in self.aspects:
                unknown.append(rule.aspect)
            if unknown:
                skipped.append({"rule": rule.name, "reason": f"unknown aspect(s) {unknown}: the taxonomy has "
                                                              f"{sorted(self.aspects)}"})
                continue
            try:
                findings += handler(session, rule, as_of, scope)
            except Exception as exc:  # noqa: BLE001 - one failing rule never stops the others
                session.rollback()  # evaluation writes nothing; a failed statement must not poison the next rule
                if isinstance(exc, UnknownDimension):
                    skipped.append({"rule": rule.name, "reason": f"cannot run on this store: {exc}"})
                    continue
                log.exception("alert rule %s failed", rule.name)
                skipped.append({"rule": rule.name, "reason": f"failed: {type(exc).__name__}: {exc}"})
        return findings, skipped

    def _brands(self, session: Session, rule, flt: FeedbackFilter) -> list[str]:
        if rule.brands:
            return sorted({self.our_brand if b == "ours" else b for b in rule.brands})
        return sorted(session.scalars(flt.apply(select(FeedbackRow.brand).distinct())))

    def _cells(self, session: Session, dims: list[str], flt: FeedbackFilter) -> list[dict[str, str]]:
        from service.analytics.segments import resolve_dimensions

        canon = resolve_dimensions(session, dims)
        stmt = select()
        cols = []
        for d in canon:
            stmt, col = dimension_column(stmt, d)
            cols.append(col)
        stmt = flt.apply(stmt.add_columns(*cols).select_from(FeedbackRow).distinct())
        return [dict(zip(canon, row)) for row in session.execute(stmt) if all(v is not None for v in row)]

    def _aspect_counts(self, session: Session, flt: FeedbackFilter, grid: list[datetime], bucket: str
                       ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Items per period, and per aspect the items with a negative mention of it."""
        key = bucket_key(session, bucket).label("k")
        idx = {p: i for i, p in enumerate(grid)}
        items = np.zeros(len(grid), np.int64)
        for k, n in session.execute(flt.apply(select(key, func.count()).select_from(FeedbackRow)).group_by(key)):
            i = idx.get(parse_bucket_key(k))
            if i is not None:
                items[i] = n
        neg: dict[str, np.ndarray] = {}
        stmt = flt.apply(select(key, AspectScoreRow.aspect, func.count()).select_from(FeedbackRow)
                         .join(AspectScoreRow, AspectScoreRow.feedback_id == FeedbackRow.id)
                         .where(AspectScoreRow.sentiment == "negative"))
        for k, aspect, n in session.execute(stmt.group_by(key, AspectScoreRow.aspect)):
            i = idx.get(parse_bucket_key(k))
            if i is not None:
                neg.setdefault(aspect, np.zeros(len(grid), np.int64))[i] = n
        return items, neg

    def _phrase_counts(self, session: Session, flt: FeedbackFilter, dims: list[str], grid: list[datetime],
                       bucket: str) -> tuple[dict[str, str | None], dict[tuple, dict[str, tuple[np.ndarray, list[int]]]]]:
        """Every tracked phrase's matching items per cell (values of ``dims``; ``()`` without
        dimensions) and period, with their ids, and the aspect each phrase is a complaint about
        (the aspect most often tagged negative on its matches; None when none is)."""
        from service.analytics.segments import resolve_dimensions
        from service.analytics.trends import phrase_matches, phrase_vector

        phrases = session.scalars(select(TrackedPhraseRow).order_by(TrackedPhraseRow.id)).all()
        canon = resolve_dimensions(session, dims) if dims else []
        key = bucket_key(session, bucket).label("k")
        idx = {p: i for i, p in enumerate(grid)}
        aspects: dict[str, str | None] = {}
        cells: dict[tuple, dict[str, tuple[np.ndarray, list[int]]]] = {}
        for ph in phrases:
            ids = sorted(phrase_matches(session, flt=flt, phrase=ph.phrase, embedding=phrase_vector(ph),
                                        threshold=ph.threshold))
            tagged: Counter = Counter()
            for lo in range(0, len(ids), 5000):
                chunk = ids[lo:lo + 5000]
                stmt = select()
                cols = []
                for d in canon:
                    stmt, col = dimension_column(stmt, d)
                    cols.append(col)
                stmt = stmt.add_columns(FeedbackRow.id, key, *cols).select_from(FeedbackRow).where(FeedbackRow.id.in_(chunk))
                for fid, k, *values in session.execute(stmt):
                    i = idx.get(parse_bucket_key(k))
                    if i is None or any(v is None for v in values):
                        continue
                    counts, members = cells.setdefault(tuple(values), {}).setdefault(
                        ph.phrase, (np.zeros(len(grid), np.int64), []))
                    counts[i] += 1
                    members.append(fid)
                tagged.update(session.scalars(select(AspectScoreRow.aspect).where(
                    AspectScoreRow.feedback_id.in_(chunk), AspectScoreRow.sentiment == "negative")))
            aspects[ph.phrase] = tagged.most_common(1)[0][0] if tagged else None
        return aspects, cells

    def _series_rule(self, session: Session, rule, as_of: datetime, scope: FeedbackFilter) -> list[Finding]:
        from service.analytics.shifts import detect

        step = BUCKETS[rule.bucket]
        until = floor(as_of, rule.bucket)  # complete periods only
        since = until - rule.history * step
        grid = periods(since, until, rule.bucket)
        base = replace(scope, since=since, until=until, include_duplicates=False)
        aspects = rule.aspects or self.aspects
        dims = rule.dimensions if isinstance(rule, PreferenceShift) else []
        tested: list[tuple[float, dict]] = []
        for brand in self._brands(session, rule, base):
            bflt = replace(base, brands=(brand,))
            phrase_aspect, phrase_cells = self._phrase_counts(session, bflt, dims, grid, rule.bucket) \
                if rule.phrases else ({}, {})
            candidates = []  # (cell, filter, items, first, [(aspect, phrase, y, members)])
            for cell in self._cells(session, dims, bflt) if dims else [{}]:
                cflt = _segment_filter(bflt, cell)
                items, neg = self._aspect_counts(session, cflt, grid, rule.bucket)
                if items.mean() < rule.min_mentions:
                    continue
                signals = [(aspect, None, neg[aspect], None) for aspect in aspects if aspect in neg]
                signals += [(phrase_aspect[text], text, counts, members) for text, (counts, members)
                            in phrase_cells.get(tuple(cell.values()), {}).items()]
                candidates.append((cell, cflt, items, int(np.argmax(items > 0)), signals))
            priors: dict[str, tuple[float, float]] = {}
            if dims:  # a cell's earlier rate borrows strength from the other cells' (cell_prior)
                earlier: dict[str, tuple[list, list]] = {}
                for _, _, items, _, signals in candidates:
                    for aspect, phrase, y, _ in signals:
                        ks, ns = earlier.setdefault(_signal(aspect, phrase), ([], []))
                        ks.append(y[:-rule.recent].sum())
                        ns.append(items[:-rule.recent].sum())
                for _, _, items, _, signals in candidates:  # cells without the signal count too
                    for name, (ks, ns) in earlier.items():
                        if not any(_signal(aspect, phrase) == name for aspect, phrase, _, _ in signals):
                            ks.append(0)
                            ns.append(items[:-rule.recent].sum())
                priors = {name: cell_prior(np.array(ks), np.array(ns)) for name, (ks, ns) in earlier.items()}
            for cell, cflt, items, first, signals in candidates:
                for aspect, phrase, y, members in signals:
                    if y.sum() == 0:
                        continue
                    screen = _recent_excess(y[first:], items[first:], rule.recent,
                                            priors.get(_signal(aspect, phrase), (0.5, 0.5)))
                    best = None
                    if screen < SCREEN_ALPHA:
                        dets = [replace(d, onset=d.onset + first, detected_at=d.detected_at + first)
                                for d in detect(y[first:], kind="proportion", trials=items[first:])]
                        dets = [d for d in dets if d.direction > 0 and d.detected_at >= len(grid) - rule.recent]
                        best = min(dets, key=lambda d: d.p_value, default=None)
                    tested.append((max(best.p_value, screen) if best else 1.0,
                                   {"brand": brand, "cell": cell, "aspect": aspect, "phrase": phrase, "det": best,
                                    "y": y, "items": items, "flt": cflt, "members": members}))
        if not tested:
            return []
        qs = benjamini_hochberg([p for p, _ in tested])
        strongest_first = sorted((q, p, i) for i, (q, (p, t)) in enumerate(zip(qs, tested))
                                 if t["det"] is not None and q < rule.fdr)
        found = merge_findings([self._series_finding(session, rule, tested[i][1], grid, float(q))
                                for q, _, i in strongest_first])
        return [f for f in found if not self._part_of_open_incident(session, f, f.scope)]

    def _part_of_open_incident(self, session: Session, f: Finding, flt: FeedbackFilter) -> bool:
        """Whether an open alert of the same rule, brand and segment about other aspects explains
        ``f`` (its items since that alert's onset account for ``f``'s rise): a surge that the
        tagger also files under a second aspect, noticed there weeks later, is the same
        incident, not a new alert."""
        stmt = select(AlertRow).where(AlertRow.rule == f.rule, AlertRow.brand == f.brand, AlertRow.key != f.key,
                                      AlertRow.segment == json.dumps(f.segment, ensure_ascii=False),
                                      AlertRow.status != "resolved")
        for row in session.scalars(stmt):
            aspects = json.loads(row.details or "{}").get("aspects") or [row.aspect]
            if f.aspect in aspects or row.onset is None:
                continue  # the same aspect under another signal: _apply's _same_incident
            items = set(session.scalars(replace(flt, since=row.onset).apply(
                select(FeedbackRow.id).join(AspectScoreRow, AspectScoreRow.feedback_id == FeedbackRow.id)
                .where(AspectScoreRow.aspect.in_(aspects), AspectScoreRow.sentiment == "negative"))))
            if _explained_by(f, items):
                log.info("%s is part of open alert %s", f.title, row.id)
                return True
        return False

    def _series_finding(self, session: Session, rule, t: dict, grid: list[datetime], q: float) -> Finding:
        """One finding per brand × aspect × segment: a tracked phrase's shift is filed under the
        aspect its matches complain about, so that "too spicy" rising and taste complaints
        rising in the same cell are one alert."""
        det, cell, aspect, brand, phrase = t["det"], t["cell"], t["aspect"], t["brand"], t["phrase"]
        onset = grid[min(det.onset, len(grid) - 1)]
        seg = {k.removeprefix("attr:"): v for k, v in cell.items()}
        where = _describe(seg) if seg else f"all of {brand}"
        what = f"“{phrase}”" + (f" ({aspect})" if aspect else "") if phrase else f"{aspect} complaints"
        share = "of items mention it" if phrase else "of items"
        title = (f"{what} rising in {where} ({brand}): {100 * det.observed:.0f}% {share} vs "
                 f"{100 * det.baseline:.0f}% expected, since {onset.date().isoformat()}")
        details = {
            "expected": round(det.baseline, 4), "q_value": round(q, 6), "detector": det.kind,
            "signal": {"phrase": phrase} if phrase else {"aspect": aspect},
            "detection": det.to_dict(),
            "series": [{"period": p.isoformat(), "items": int(n), ("matches" if phrase else "negative_mentions"): int(k)}
                       for p, n, k in zip(grid, t["items"], t["y"])],
            **self._explain(session, t["flt"], aspect, onset, grid[-1] + (grid[1] - grid[0]), ids=t["members"]),
            "aspects": [aspect] if aspect else [],
        }
        items = details.pop("_after_ids")
        topic = aspect if aspect else f"phrase:{phrase}"
        return Finding(
            key=f"{rule.name}|{brand}|{topic}|{json.dumps(seg, sort_keys=True, ensure_ascii=False)}",
            rule=rule.name, type=rule.type, severity=rule.severity, title=title, brand=brand,
            region=cell.get("region"), aspect=aspect, segment=seg,
            metric="phrase_rate" if phrase else "negative_mention_rate",
            baseline=round(det.baseline, 4), observed=round(det.observed, 4), magnitude=round(det.magnitude, 4),
            confidence=round(det.confidence, 4), onset=onset, details=details, items=items,
            exposure=int(t["items"][min(det.onset, len(grid) - 1):].sum()), scope=t["flt"])

    def _explain(self, session: Session, flt: FeedbackFilter, aspect: str | None, onset: datetime, until: datetime,
                 ids: list[int] | None = None) -> dict:
        """What drives a shift: the sub-segments whose negative mentions (or, with ``ids``, a
        tracked phrase's matches) grew most after the onset, the words that tell the new
        complaints from the old, and three quotes."""
        from service.analytics.themes import class_tfidf, keyword_tokenizer

        def rows(a: datetime, b: datetime):
            if ids is not None:
                cols = [FeedbackRow.id, FeedbackRow.text, FeedbackRow.text, ScoreRow.sentiment_score,
                        FeedbackRow.channel, FeedbackRow.language, FeedbackRow.product]
                stmt = select(*cols).join(ScoreRow, ScoreRow.feedback_id == FeedbackRow.id).where(FeedbackRow.id.in_(ids))
            else:
                cols = [FeedbackRow.id, FeedbackRow.text, AspectScoreRow.evidence, AspectScoreRow.sentiment_score,
                        FeedbackRow.channel, FeedbackRow.language, FeedbackRow.product]
                stmt = (select(*cols).join(AspectScoreRow, AspectScoreRow.feedback_id == FeedbackRow.id)
                        .where(AspectScoreRow.aspect == aspect, AspectScoreRow.sentiment == "negative"))
            return session.execute(replace(flt, since=a, until=b).apply(stmt)).all()

        before_start = flt.since or onset - (until - onset)
        before, after = rows(before_start, onset), rows(onset, until)
        span_b = max((onset - before_start).total_seconds(), 1.0)
        span_a = max((until - onset).total_seconds(), 1.0)
        drivers = []
        for j, dim in enumerate(DRIVER_DIMENSIONS):
            cb = Counter(r[4 + j] for r in before)
            ca = Counter(r[4 + j] for r in after)
            for value, n in ca.items():
                if value is None:
                    continue
                growth = n / span_a - cb.get(value, 0) / span_b
                drivers.append({"dimension": dim, "value": value, "after": n, "before": cb.get(value, 0),
                                "growth_per_week": round(growth * 7 * 86400, 2)})
        drivers.sort(key=lambda d: -d["growth_per_week"])
        words = keyword_tokenizer(session, self.competitors)
        docs = [[w for r in part for w in words(r[2] or r[1])] for part in (before, after)]
        phrases = class_tfidf(docs, top=6)[1] if after else []
        quotes = [{"id": r[0], "text": r[1], "evidence": r[2]} for r in sorted(after, key=lambda r: r[3])[:3]]
        return {"drivers": [d for d in drivers if d["growth_per_week"] > 0][:5], "phrases": phrases, "quotes": quotes,
                "_after_ids": {r[0] for r in after}}

    def _gap_rule(self, session: Session, rule: CompetitorGap, as_of: datetime, scope: FeedbackFilter
                  ) -> list[Finding]:
        """Per competitor (and the competitors pooled) and aspect: the weekly gap of our net
        sentiment to theirs (``service.analytics.benchmark.gap_series``), a level series weighted
        by its inverse variance, through the shift detectors; shifts either way confirmed
        within the last ``recent`` periods (a gap opening or closing), BH over every series."""
        from service.analytics.benchmark import MARKET, aspect_quotes, gap_series
        from service.analytics.shifts import detect

        step = BUCKETS[rule.bucket]
        until = floor(as_of, rule.bucket)
        since = until - rule.history * step
        grid = periods(since, until, rule.bucket)
        base = replace(scope, since=since, until=until, include_duplicates=False)
        ours = self.our_brand
        rivals = list(rule.competitors) or [b for b in session.scalars(base.apply(
            select(FeedbackRow.brand).distinct())) if b != ours]
        rivals = sorted(rivals) + ([MARKET] if len(rivals) > 1 and not rule.competitors else [])
        tested = []
        for rival in rivals:
            for aspect in rule.aspects or self.aspects:
                s = gap_series(session, flt=base, our_brand=ours, competitor=rival, aspect=aspect, since=since,
                               until=until, bucket=rule.bucket)
                pts = s["points"]
                mentions = np.array([min(p["ours_mentions"], p["their_mentions"]) for p in pts], float)
                if mentions.mean() < rule.min_mentions:
                    continue
                y = np.array([np.nan if p["gap"] is None else p["gap"] for p in pts], float)
                w = np.array([1.0 / max(p["se"] ** 2, 1e-9) if p["se"] else 1.0 for p in pts])
                first = int(np.argmax(np.isfinite(y)))  # the series starts with the first period both sides spoke
                dets = [replace(d, onset=d.onset + first, detected_at=d.detected_at + first)
                        for d in detect(y[first:], kind="level", trials=w[first:])]
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
            title = (f"{aspect} gap to {rival} {way}: {det.observed:+.2f} vs {det.baseline:+.2f} expected "
                     f"(our net sentiment minus theirs), since {onset.date().isoformat()}")
            sentiment = ("negative", "positive") if det.direction < 0 else ("positive", "negative")
            flt = replace(base, since=onset)
            quotes = (aspect_quotes(session, flt, brand=ours, aspect=aspect, sentiment=sentiment[0], n=2)
                      + (aspect_quotes(session, flt, brand=rival, aspect=aspect, sentiment=sentiment[1], n=1)
                         if rival != MARKET else []))
            out.append(Finding(
                key=f"{rule.name}|{ours}|{aspect}|{rival}", rule=rule.name, type=rule.type, severity=rule.severity,
                title=title, brand=ours, region=None, aspect=aspect, segment={"competitor": rival},
                metric="net_sentiment_gap", baseline=round(det.baseline, 4), observed=round(det.observed, 4),
                magnitude=round(det.magnitude, 4), confidence=round(det.confidence, 4), onset=onset,
                details={"q_value": round(float(q), 6), "detector": det.kind, "detection": det.to_dict(),
                         "competitor": rival, "series": pts, "quotes": quotes, "aspects": [aspect]}))
        return out

    def _crisis(self, session: Session, rule: CrisisSpike, as_of: datetime, scope: FeedbackFilter) -> list[Finding]:
        end = floor(as_of, "hour")
        win_start = end - timedelta(hours=rule.window_hours)
        base_start = win_start - timedelta(hours=rule.baseline_hours)
        out = []
        for brand in self._brands(session, rule, replace(scope, since=base_start, until=end)):
            flt = replace(scope, brands=(brand,), channels=tuple(rule.channels), sentiments=("negative",),
                          include_duplicates=False)
            count = lambda a, b: session.scalar(replace(flt, since=a, until=b).apply(  # noqa: E731
                select(func.count()).select_from(FeedbackRow)))
            x, base = count(win_start, end), count(base_start, win_start)
            rate = max(base / rule.baseline_hours, 0.1)  # per hour, floored: an empty week is not zero risk
            expected = rate * rule.window_hours
            p = float(sstats.poisson.sf(x - 1, expected)) if x else 1.0
            if x < rule.min_count or p >= rule.alpha:
                continue
            quotes = session.execute(replace(flt, since=win_start, until=end, sentiments=()).apply(
                select(FeedbackRow.id, FeedbackRow.text).join(ScoreRow, ScoreRow.feedback_id == FeedbackRow.id)
                .where(ScoreRow.sentiment == "negative").order_by(ScoreRow.sentiment_score)).limit(3)).all()
            out.append(Finding(
                key=f"{rule.name}|{brand}|{','.join(rule.channels)}", rule=rule.name, type=rule.type,
                severity=rule.severity, brand=brand, region=None, aspect=None,
                title=(f"Negative {'/'.join(rule.channels)} posts about {brand}: {x} in the last {rule.window_hours} h "
                       f"vs {expected:.1f} expected"),
                segment={"channel": ",".join(rule.channels)}, metric="negative_posts", baseline=round(expected, 3),
                observed=float(x), magnitude=round(x - expected, 3), confidence=round(1 - p, 6), onset=win_start,
                details={"p_value": p, "window_hours": rule.window_hours, "baseline_per_hour": round(rate, 4),
                         "quotes": [{"id": i, "text": t} for i, t in quotes]}))
        return out

    def _severe(self, session: Session, rule: SevereComplaint, as_of: datetime, scope: FeedbackFilter) -> list[Finding]:
        flt = replace(scope, since=as_of - timedelta(hours=rule.lookback_hours), until=as_of)
        if rule.brands:
            flt = replace(flt, brands=tuple(self._brands(session, rule, flt)))
        stmt = flt.apply(select(FeedbackRow.id, FeedbackRow.text, FeedbackRow.brand, FeedbackRow.region,
                                FeedbackRow.created_at, AspectScoreRow.aspect, AspectScoreRow.sentiment_score,
                                AspectScoreRow.evidence)
                         .join(AspectScoreRow, AspectScoreRow.feedback_id == FeedbackRow.id)
                         .where(AspectScoreRow.aspect.in_(rule.aspects),
                                AspectScoreRow.sentiment_score <= rule.max_sentiment_score,
                                AspectScoreRow.confidence >= rule.min_confidence))
        out = []
        for fid, text, brand, region, created, aspect, score, evidence in session.execute(stmt):
            out.append(Finding(
                key=f"{rule.name}|item:{fid}", rule=rule.name, type=rule.type, severity=rule.severity,
                title=f"Severe {aspect} complaint about {brand}: “{(evidence or text)[:80]}”", brand=brand,
                region=region, aspect=aspect, segment={"item": fid}, metric="sentiment_score", baseline=None,
                observed=score, magnitude=None, confidence=None, onset=created,
                details={"quotes": [{"id": fid, "text": text, "evidence": evidence}]}))
        return out

    def _threshold(self, session: Session, rule: Threshold, as_of: datetime, scope: FeedbackFilter) -> list[Finding]:
        until = floor(as_of, rule.bucket)
        since = until - BUCKETS[rule.bucket]
        out = []
        base = replace(scope, regions=tuple(rule.regions) or scope.regions)
        for brand in self._brands(session, rule, replace(base, since=since, until=until)):
            s = series(session, flt=replace(base, brands=(brand,)), since=since, until=until, bucket=rule.bucket,
                       aspect=rule.aspect)
            if s.mentions[-1] < rule.min_mentions:
                continue
            value = float(s.mentions[-1]) if rule.metric == "volume" else getattr(s, rule.metric)[-1]
            if value is None:
                continue
            crossed = (rule.above is not None and value > rule.above) or (rule.below is not None and value < rule.below)
            if not crossed:
                continue
            bound = rule.above if rule.above is not None and value > rule.above else rule.below
            out.append(Finding(
                key=f"{rule.name}|{brand}|{rule.aspect}|{','.join(rule.regions)}", rule=rule.name, type=rule.type,
                severity=rule.severity, brand=brand, region=rule.regions[0] if len(rule.regions) == 1 else None,
                aspect=rule.aspect, segment={"regions": rule.regions} if rule.regions else {},
                title=f"{rule.metric} of {rule.aspect or 'all feedback'} for {brand} at {value:.3g} (bound {bound})",
                metric=rule.metric, baseline=bound, observed=value, magnitude=value - bound, confidence=None,
                onset=since, details={"period": since.isoformat(), "mentions": int(s.mentions[-1])}))
        return out

    # --- persistence -----------------------------------------------------------------------

    def run(self, session: Session, as_of: datetime | None = None, *, actor: str = "radar") -> RunReport:
        as_of = (as_of or datetime.now(timezone.utc)).astimezone(timezone.utc)
        findings, skipped = self.evaluate(session, as_of)
        report = RunReport(as_of=as_of, skipped=skipped)
        for f in findings:
            self._apply(session, f, as_of, actor, report)
        session.commit()
        return report

    def _same_incident(self, session: Session, f: Finding) -> AlertRow | None:
        """An open alert of the same rule, brand and segment about one of the finding's aspects
        (a merged incident whose strongest signal changed from one run to the next)."""
        stmt = select(AlertRow).where(AlertRow.rule == f.rule, AlertRow.brand == f.brand,
                                      AlertRow.segment == json.dumps(f.segment, ensure_ascii=False),
                                      AlertRow.status != "resolved").order_by(AlertRow.id)
        for row in session.scalars(stmt):
            if set(json.loads(row.details or "{}").get("aspects", [])) & set(f.details["aspects"]):
                return row
        return None

    def _apply(self, session: Session, f: Finding, as_of: datetime, actor: str, report: RunReport) -> None:
        last = session.scalars(select(AlertRow).where(AlertRow.key == f.key).order_by(AlertRow.id.desc()).limit(1)).first()
        if (last is None or last.status == "resolved") and f.details.get("aspects"):
            last = self._same_incident(session, f) or last
        values = dict(title=f.title, severity=f.severity, baseline=f.baseline, observed=f.observed,
                      magnitude=f.magnitude, confidence=f.confidence,
                      details=json.dumps(f.details, ensure_ascii=False, default=str))
        if last is not None and last.status != "resolved":
            if as_of <= last.last_detected_at or all(getattr(last, k) == v for k, v in values.items()):
                report.unchanged.append(last.id)
                return
            for k, v in values.items():
                setattr(last, k, v)
            last.last_detected_at, last.updated_at = as_of, as_of
            session.add(AlertEventRow(alert_id=last.id, at=as_of, actor=actor, action="updated",
                                      note=f"observed {f.observed}, magnitude {f.magnitude}"))
            report.updated.append(last.id)
            return
        if last is not None and last.resolved_at and as_of < last.resolved_at + timedelta(hours=self.config.cooldown_hours):
            report.cooling_down.append(f.key)
            return
        row = AlertRow(key=f.key, rule=f.rule, type=f.type, status="open", brand=f.brand, region=f.region,
                       aspect=f.aspect, segment=json.dumps(f.segment, ensure_ascii=False), metric=f.metric,
                       onset=f.onset, first_detected_at=as_of, last_detected_at=as_of,
                       deadline_at=as_of + timedelta(hours=self.config.deadline_hours(f.severity)),
                       created_at=as_of, updated_at=as_of, **values)
        session.add(row)
        session.flush()
        session.add(AlertEventRow(alert_id=row.id, at=as_of, actor=actor, action="raised", note=f.title))
        report.raised.append(row.id)


# --- lifecycle and reads -------------------------------------------------------------------

TRANSITIONS = {"open": {"acknowledged", "resolved"}, "acknowledged": {"resolved"}, "resolved": {"open"}}


class TransitionError(ValueError):
    pass


def transition(session: Session, alert: AlertRow, status: str, *, actor: str, note: str | None = None,
               now: datetime | None = None) -> AlertRow:
    """open → acknowledged → resolved (or open → resolved; resolved → open reopens)."""
    now = now or datetime.now(timezone.utc)
    if status == alert.status:
        return alert
    if status not in TRANSITIONS.get(alert.status, set()):
        raise TransitionError(f"alert {alert.id} is {alert.status}; it cannot become {status}")
    if status == "acknowledged":
        alert.acknowledged_by, alert.acknowledged_at = actor, now
    elif status == "resolved":
        alert.resolved_by, alert.resolved_at = actor, now
    else:
        alert.resolved_by = alert.resolved_at = None
    alert.status, alert.updated_at = status, now
    session.add(AlertEventRow(alert_id=alert.id, at=now, actor=actor, action=status, note=note))
    from service.store.access import audit

    audit(session, actor=actor, action=f"alert.{status}", target=f"alert:{alert.id}", now=now)
    session.commit()
    return alert


def scope_alerts(stmt, *, regions: tuple[str, ...] | None, brands: tuple[str, ...] | None, nothing: bool = False):
    """Alerts a caller may see: of their brands, and (for a regional scope) of their regions."""
    if nothing:
        return stmt.where(AlertRow.id < 0)
    if regions:
        stmt = stmt.where(AlertRow.region.in_(regions))
    if brands:
        stmt = stmt.where(AlertRow.brand.in_(brands))
    return stmt


def alert_dict(row: AlertRow, events: list[AlertEventRow] | None = None) -> dict:
    out = {"id": row.id, "rule": row.rule, "type": row.type, "severity": row.severity, "status": row.status,
           "title": row.title, "brand": row.brand, "region": row.region, "aspect": row.aspect,
           "segment": json.loads(row.segment), "metric": row.metric, "baseline": row.baseline,
           "observed": row.observed, "magnitude": row.magnitude, "confidence": row.confidence,
           "onset": row.onset.isoformat() if row.onset else None,
           "first_detected_at": row.first_detected_at.isoformat(), "last_detected_at": row.last_detected_at.isoformat(),
           "deadline_at": row.deadline_at.isoformat(),
           "acknowledged_by": row.acknowledged_by,
           "acknowledged_at": row.acknowledged_at.isoformat() if row.acknowledged_at else None,
           "resolved_by": row.resolved_by, "resolved_at": row.resolved_at.isoformat() if row.resolved_at else None,
           "details": json.loads(row.details)}
    if events is not None:
        out["events"] = [{"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "note": e.note} for e in events]
    return out


def response_metrics(session: Session, stmt_filter=lambda s: s) -> dict:
    """Share of alerts acknowledged within their deadline, by severity and by region."""
    rows = session.execute(stmt_filter(select(AlertRow.severity, AlertRow.region, AlertRow.first_detected_at,
                                              AlertRow.acknowledged_at, AlertRow.resolved_at, AlertRow.deadline_at,
                                              AlertRow.status))).all()
    now = datetime.now(timezone.utc)

    def summarise(group: list) -> dict:
        n = len(group)
        answered = [r for r in group if (r[3] or r[4]) is not None]
        on_time = [r for r in answered if (r[3] or r[4]) <= r[5]]
        hours = sorted(((r[3] or r[4]) - r[2]).total_seconds() / 3600 for r in answered)
        overdue = [r for r in group if (r[3] or r[4]) is None and r[6] != "resolved" and now > r[5]]
        return {"alerts": n, "acknowledged": len(answered),
                "acknowledged_within_deadline": len(on_time),
                "share_within_deadline": round(len(on_time) / n, 4) if n else None,
                "median_hours_to_acknowledge": round(float(np.median(hours)), 2) if hours else None,
                "open_overdue": len(overdue)}

    by_sev: dict[str, list] = {}
    by_region: dict[str, list] = {}
    for r in rows:
        by_sev.setdefault(r[0], []).append(r)
        by_region.setdefault(r[1] or "(all regions)", []).append(r)
    return {"overall": summarise(list(rows)),
            "by_severity": {k: summarise(v) for k, v in sorted(by_sev.items())},
            "by_region": {k: summarise(v) for k, v in sorted(by_region.items())}}
