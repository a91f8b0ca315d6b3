"""Series rules (``preference_shift``, ``negative_surge``): an aspect's complaints, or a tracked
phrase's mentions, rising in a segment cell or for a whole brand.

Per complete period, the items with a negative mention of the aspect out of the segment's items
(a binomial series: more mentions and more negative ones both move it) are tested for a
sustained rise (``sustained_rise``): a step up whose onset is one of the rule's last ``recent``
periods, the periods since the onset against what the history before it predicts, each cell's
rate shrunk towards the other cells' by an empirical-Bayes prior (``cell_prior``) and
extra-binomial noise priced in. The false discovery rate is controlled over every series the
rule tested (Benjamini–Hochberg at ``fdr``). A downward move (an improvement) is never an
alarm; it shows as a trend in ``/v1/trends``.

Why not the general detectors of ``service.analytics.shifts`` (which ``/v1/trends`` shows): on
the alert benchmark's real-sentence feeds they found 2 of 18 sustained ×2.5 cell rises with
exact tags. Their p-values are built for any change in any direction at any time, and a shift
had to be "confirmed" within the last periods, so one that grew clearer after its first weeks
was dropped as its evidence grew. The one-sided step test is the most powerful test for what
this rule looks for, and stays significant for as long as the rise lasts.

With ``phrases`` on (the default), every tracked phrase is a series too: per period, the
segment's items that mention it or a close paraphrase. A phrase someone tracks ("too spicy")
names a narrow complaint whose base rate is near zero, so a few weeks of it rising in a small
segment stand out where the aspect's whole complaint rate would still be noise. A phrase's shift
is filed under the aspect its matches complain about: one alert per brand × aspect × segment,
whichever signal found it first.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import replace
from datetime import datetime

import numpy as np
from scipy import stats as sstats
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.alerts.families import Context, register
from service.alerts.findings import (
    Finding,
    describe,
    explained_by,
    merge_findings,
    segment_filter,
    signal_name,
)
from service.alerts.rules import NegativeSurge, PreferenceShift
from service.analytics.keywords import class_tfidf, keyword_tokenizer
from service.analytics.segments import resolve_dimensions
from service.analytics.shifts import Detection, expected_band
from service.analytics.stats import benjamini_hochberg
from service.analytics.trends import (
    BUCKETS,
    bucket_key,
    floor,
    parse_bucket_key,
    periods,
    phrase_matches,
    phrase_vector,
)
from service.store import alerts as alerts_repo
from service.store.repo import FeedbackFilter, dimension_columns
from service.store.tables import AspectScoreRow, FeedbackRow, ScoreRow, TrackedPhraseRow

log = logging.getLogger(__name__)
DRIVER_DIMENSIONS = ("channel", "language", "product")


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


MIN_BEFORE = 4  # periods with items before the earliest onset tried
OUTLIER = 3.5  # Pearson residuals beyond which a period does not count towards the dispersion


def sustained_rise(
    y: np.ndarray,
    n: np.ndarray,
    window: int,
    prior: tuple[float, float] = (0.5, 0.5),
    min_before: int = MIN_BEFORE,
) -> Detection | None:
    """A step up in a binomial series (``y`` of ``n`` per period) whose onset is one of the last
    ``window`` periods, tested the way a sustained preference shift looks: for each onset ``τ``,
    the count from ``τ`` to the last period against the beta-binomial predictive of the periods
    before it (``prior``, the cell's empirical-Bayes prior from ``cell_prior``, updated by them),
    so the rate's own uncertainty is in the test and a short history is not overconfident.
    Extra-binomial noise is priced in: the periods before the window give a Pearson dispersion
    ``φ`` (periods beyond ``OUTLIER`` SDs left out, floored at 1) and every count is divided by
    it (quasi-binomial). The p-value is the smallest over the onsets times their number
    (Bonferroni).

    Unlike a detector that must "confirm" a change within the last periods, a rise that began
    several periods ago stays visible while the periods since its onset stay high: the onset
    ``τ = N - window`` then compares the whole window with the history before it.
    Returns None when there is too little history or nothing rose."""
    y, n = np.asarray(y, float), np.asarray(n, float)
    m = len(y)
    first = m - window
    if window < 1 or first < 1 or int((n[:first] > 0).sum()) < min_before or y[first:].sum() == 0:
        return None
    kb0, nb0 = y[:first].sum(), n[:first].sum()
    ok = n[:first] > 0
    phi = 1.0
    if ok.sum() >= 4 and 0 < kb0 < nb0:
        r0 = kb0 / nb0
        resid = (y[:first] - n[:first] * r0)[ok] / np.sqrt(n[:first][ok] * r0 * (1 - r0))
        # periods beyond OUTLIER standard deviations are left out: a rise that began before
        # the window must not pass for noise and hide itself
        kept = resid[np.abs(resid) <= OUTLIER]
        if len(kept) >= 4:
            phi = max(1.0, float((kept**2).sum()) / (len(kept) - 1))
    a, b = prior
    p_min = 1.0
    for tau in range(first, m):
        kb, nb = y[:tau].sum() / phi, n[:tau].sum() / phi
        ka, na = y[tau:].sum() / phi, n[tau:].sum() / phi
        if na > 0 and ka > 0 and ka / na > (a + kb) / (a + b + nb):
            p_min = min(
                p_min,
                float(
                    sstats.betabinom.sf(int(np.ceil(ka)) - 1, int(round(na)), a + kb, b + nb - kb)
                ),
            )
    if p_min * window >= 1:
        return None
    # the onset is the step's maximum-likelihood position (both rates free), not the onset with
    # the smallest p-value, which leans towards longer stretches of data
    tau = max(range(first, m), key=lambda t: _step_loglik(y, n, t))
    before = (a + y[:tau].sum()) / (a + b + n[:tau].sum())
    after = y[tau:].sum() / max(n[tau:].sum(), 1.0)
    p = p_min * window
    return Detection("sustained_rise", 1, tau, m - 1, after - before, before, after, p, 1.0 - p)


def _step_loglik(y: np.ndarray, n: np.ndarray, tau: int) -> float:
    """Binomial log-likelihood of a step at ``tau`` with each side's rate at its estimate."""

    def side(k: float, t: float) -> float:
        if t <= 0 or k <= 0 or k >= t:
            return 0.0
        r = k / t
        return k * np.log(r) + (t - k) * np.log(1 - r)

    return side(y[:tau].sum(), n[:tau].sum()) + side(y[tau:].sum(), n[tau:].sum())


def _cells(session: Session, dims: list[str], flt: FeedbackFilter) -> list[dict[str, str]]:
    canon = resolve_dimensions(session, dims)
    stmt, cols = dimension_columns(select(), canon)
    stmt = flt.apply(stmt.add_columns(*cols).select_from(FeedbackRow).distinct())
    return [
        dict(zip(canon, row)) for row in session.execute(stmt) if all(v is not None for v in row)
    ]


def _aspect_counts(
    session: Session, flt: FeedbackFilter, grid: list[datetime], bucket: str
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Items per period, and per aspect the items with a negative mention of it."""
    key = bucket_key(session, bucket).label("k")
    idx = {p: i for i, p in enumerate(grid)}
    items = np.zeros(len(grid), np.int64)
    for k, n in session.execute(
        flt.apply(select(key, func.count()).select_from(FeedbackRow)).group_by(key)
    ):
        i = idx.get(parse_bucket_key(k))
        if i is not None:
            items[i] = n
    neg: dict[str, np.ndarray] = {}
    stmt = flt.apply(
        select(key, AspectScoreRow.aspect, func.count())
        .select_from(FeedbackRow)
        .join(AspectScoreRow, AspectScoreRow.feedback_id == FeedbackRow.id)
        .where(AspectScoreRow.sentiment == "negative")
    )
    for k, aspect, n in session.execute(stmt.group_by(key, AspectScoreRow.aspect)):
        i = idx.get(parse_bucket_key(k))
        if i is not None:
            neg.setdefault(aspect, np.zeros(len(grid), np.int64))[i] = n
    return items, neg


def _phrase_counts(
    session: Session, flt: FeedbackFilter, dims: list[str], grid: list[datetime], bucket: str
) -> tuple[dict[str, str | None], dict[tuple, dict[str, tuple[np.ndarray, list[int]]]]]:
    """Every tracked phrase's matching items per cell (values of ``dims``; ``()`` without
    dimensions) and period, with their ids, and the aspect each phrase is a complaint about
    (the aspect most often tagged negative on its matches; None when none is)."""

    phrases = session.scalars(select(TrackedPhraseRow).order_by(TrackedPhraseRow.id)).all()
    canon = resolve_dimensions(session, dims) if dims else []
    key = bucket_key(session, bucket).label("k")
    idx = {p: i for i, p in enumerate(grid)}
    aspects: dict[str, str | None] = {}
    cells: dict[tuple, dict[str, tuple[np.ndarray, list[int]]]] = {}
    for ph in phrases:
        ids = sorted(
            phrase_matches(
                session,
                flt=flt,
                phrase=ph.phrase,
                embedding=phrase_vector(ph),
                threshold=ph.threshold,
            )
        )
        tagged: Counter = Counter()
        for lo in range(0, len(ids), 5000):
            chunk = ids[lo : lo + 5000]
            stmt, cols = dimension_columns(select(), canon)
            stmt = (
                stmt.add_columns(FeedbackRow.id, key, *cols)
                .select_from(FeedbackRow)
                .where(FeedbackRow.id.in_(chunk))
            )
            for fid, k, *values in session.execute(stmt):
                i = idx.get(parse_bucket_key(k))
                if i is None or any(v is None for v in values):
                    continue
                counts, members = cells.setdefault(tuple(values), {}).setdefault(
                    ph.phrase, (np.zeros(len(grid), np.int64), [])
                )
                counts[i] += 1
                members.append(fid)
            tagged.update(
                session.scalars(
                    select(AspectScoreRow.aspect).where(
                        AspectScoreRow.feedback_id.in_(chunk),
                        AspectScoreRow.sentiment == "negative",
                    )
                )
            )
        aspects[ph.phrase] = tagged.most_common(1)[0][0] if tagged else None
    return aspects, cells


@register(PreferenceShift, NegativeSurge)
def evaluate(ctx: Context, rule) -> list[Finding]:
    session, as_of, scope = ctx.session, ctx.as_of, ctx.scope
    step = BUCKETS[rule.bucket]
    until = floor(as_of, rule.bucket)  # complete periods only
    since = until - rule.history * step
    grid = periods(since, until, rule.bucket)
    base = replace(scope, since=since, until=until, include_duplicates=False)
    aspects = rule.aspects or ctx.aspects
    dims = rule.dimensions if isinstance(rule, PreferenceShift) else []
    tested: list[tuple[float, dict]] = []
    for brand in ctx.brands(rule, base):
        bflt = replace(base, brands=(brand,))
        phrase_aspect, phrase_cells = (
            _phrase_counts(session, bflt, dims, grid, rule.bucket) if rule.phrases else ({}, {})
        )
        candidates = []  # (cell, filter, items, first, [(aspect, phrase, y, members)])
        for cell in _cells(session, dims, bflt) if dims else [{}]:
            cflt = segment_filter(bflt, cell)
            items, neg = _aspect_counts(session, cflt, grid, rule.bucket)
            if items.mean() < rule.min_mentions:
                continue
            signals = [(aspect, None, neg[aspect], None) for aspect in aspects if aspect in neg]
            signals += [
                (phrase_aspect[text], text, counts, members)
                for text, (counts, members) in phrase_cells.get(tuple(cell.values()), {}).items()
            ]
            candidates.append((cell, cflt, items, int(np.argmax(items > 0)), signals))
        priors: dict[str, tuple[float, float]] = {}
        if dims:  # a cell's earlier rate borrows strength from the other cells' (cell_prior)
            earlier: dict[str, tuple[list, list]] = {}
            for _, _, items, _, signals in candidates:
                for aspect, phrase, y, _ in signals:
                    ks, ns = earlier.setdefault(signal_name(aspect, phrase), ([], []))
                    ks.append(y[: -rule.recent].sum())
                    ns.append(items[: -rule.recent].sum())
            for _, _, items, _, signals in candidates:  # cells without the signal count too
                for name, (ks, ns) in earlier.items():
                    if not any(
                        signal_name(aspect, phrase) == name for aspect, phrase, _, _ in signals
                    ):
                        ks.append(0)
                        ns.append(items[: -rule.recent].sum())
            priors = {
                name: cell_prior(np.array(ks), np.array(ns)) for name, (ks, ns) in earlier.items()
            }
        for cell, cflt, items, first, signals in candidates:
            for aspect, phrase, y, members in signals:
                if y.sum() == 0:
                    continue
                det = sustained_rise(
                    y[first:],
                    items[first:],
                    rule.recent,
                    priors.get(signal_name(aspect, phrase), (0.5, 0.5)),
                )
                if det is not None:
                    det = replace(det, onset=det.onset + first, detected_at=det.detected_at + first)
                tested.append(
                    (
                        det.p_value if det else 1.0,
                        {
                            "brand": brand,
                            "cell": cell,
                            "aspect": aspect,
                            "phrase": phrase,
                            "det": det,
                            "y": y,
                            "items": items,
                            "flt": cflt,
                            "members": members,
                        },
                    )
                )
    if not tested:
        return []
    qs = benjamini_hochberg([p for p, _ in tested])
    strongest_first = sorted(
        (q, p, i)
        for i, (q, (p, t)) in enumerate(zip(qs, tested))
        if t["det"] is not None and q < rule.fdr
    )
    found = merge_findings(
        [_series_finding(ctx, rule, tested[i][1], grid, float(q)) for q, _, i in strongest_first]
    )
    # what a series needed to be a finding here (BH's bar for a single discovery)
    bar = rule.fdr / len(tested)
    return [
        f
        for f in found
        if not _part_of_open_incident(session, f, f.scope)
        and not _explained_by_cells(session, f, f.scope, bar, ctx.found)
    ]


def _part_of_open_incident(session: Session, f: Finding, flt: FeedbackFilter) -> bool:
    """Whether an open alert of the same rule, brand and segment about other aspects explains
    ``f`` (its items since that alert's onset account for ``f``'s rise): a surge that the
    tagger also files under a second aspect, noticed there weeks later, is the same
    incident, not a new alert."""
    for row in alerts_repo.unresolved(session, rule=f.rule, brand=f.brand, segment=f.segment):
        if row.key == f.key:
            continue
        aspects = json.loads(row.details or "{}").get("aspects") or [row.aspect]
        if f.aspect in aspects or row.onset is None:
            continue  # the same aspect under another signal: lifecycle's same_incident
        items = set(
            session.scalars(
                replace(flt, since=row.onset).apply(
                    select(FeedbackRow.id)
                    .join(AspectScoreRow, AspectScoreRow.feedback_id == FeedbackRow.id)
                    .where(
                        AspectScoreRow.aspect.in_(aspects), AspectScoreRow.sentiment == "negative"
                    )
                )
            )
        )
        if explained_by(f, items):
            log.info("%s is part of open alert %s", f.title, row.id)
            return True
    return False


def _explained_by_cells(
    session: Session, f: Finding, flt: FeedbackFilter, alpha: float, found: list[Finding]
) -> bool:
    """Whether a brand-wide rise is cell shifts' rise seen from above: the brand's open
    ``preference_shift`` alerts and this run's ``preference_shift`` findings (``found``) on the
    same aspect. Without the items of those cells since their onsets (or ``f``'s, where that is
    earlier: the onsets are estimated apart), ``f`` would not have been a finding: its remaining
    count is not significant at ``alpha``, the rule's own bar for one discovery among every
    series it tested. A taste shift in East × 18-24 lifts the brand's
    taste complaints too; that is the same incident, with someone already or from this run."""
    if f.segment or not f.aspect:
        return False
    cells = [
        (
            json.loads(row.segment or "{}"),
            row.onset,
            json.loads(row.details or "{}").get("aspects") or [row.aspect],
        )
        for row in alerts_repo.unresolved(
            session, rule="", brand=f.brand, types=("preference_shift",)
        )
    ] + [
        (g.segment, g.onset, g.details.get("aspects") or [g.aspect])
        for g in found
        if g.type == "preference_shift" and g.brand == f.brand
    ]
    items: set[int] = set()
    for cell, onset, aspects in cells:
        if f.aspect not in aspects or onset is None:
            continue
        # every item of the cell since its onset, or since the brand-wide one where that was
        # found earlier (the two onsets are estimated apart): the brand-wide finding may be a
        # tracked phrase's matches, which the cell's aspect tags do not list one for one
        since = min(onset, f.onset) if f.onset is not None else onset
        items |= set(
            session.scalars(
                replace(segment_filter(flt, cell), since=since).apply(
                    select(FeedbackRow.id).select_from(FeedbackRow)
                )
            )
        )
    if items and explained_by(f, items, alpha):
        log.info("%s is the rise of shifted cells seen brand-wide", f.title)
        return True
    return False


def _series_finding(ctx: Context, rule, t: dict, grid: list[datetime], q: float) -> Finding:
    """One finding per brand × aspect × segment: a tracked phrase's shift is filed under the
    aspect its matches complain about, so that "too spicy" rising and taste complaints
    rising in the same cell are one alert."""
    det, cell, aspect, brand, phrase = t["det"], t["cell"], t["aspect"], t["brand"], t["phrase"]
    onset = grid[min(det.onset, len(grid) - 1)]
    seg = {k.removeprefix("attr:"): v for k, v in cell.items()}
    where = describe(seg) if seg else f"all of {brand}"
    what = f"“{phrase}”" + (f" ({aspect})" if aspect else "") if phrase else f"{aspect} complaints"
    share = "of items mention it" if phrase else "of items"
    title = (
        f"{what} rising in {where} ({brand}): {100 * det.observed:.0f}% {share} vs "
        f"{100 * det.baseline:.0f}% expected, since {onset.date().isoformat()}"
    )
    details = {
        "expected": round(det.baseline, 4),
        "q_value": round(q, 6),
        "detector": det.kind,
        "signal": {"phrase": phrase} if phrase else {"aspect": aspect},
        "detection": det.to_dict(),
        "series": [
            {
                "period": p.isoformat(),
                "items": int(n),
                ("matches" if phrase else "negative_mentions"): int(k),
            }
            for p, n, k in zip(grid, t["items"], t["y"])
        ],
        "band": expected_band(grid, det.baseline, trials=[int(n) for n in t["items"]]),
        **_explain(ctx, t["flt"], aspect, onset, grid[-1] + (grid[1] - grid[0]), ids=t["members"]),
        "aspects": [aspect] if aspect else [],
    }
    items = details.pop("_after_ids")
    topic = aspect if aspect else f"phrase:{phrase}"
    return Finding.of(
        rule,
        key=f"{rule.name}|{brand}|{topic}|{json.dumps(seg, sort_keys=True, ensure_ascii=False)}",
        title=title,
        brand=brand,
        region=cell.get("region"),
        aspect=aspect,
        segment=seg,
        metric="phrase_rate" if phrase else "negative_mention_rate",
        baseline=round(det.baseline, 4),
        observed=round(det.observed, 4),
        magnitude=round(det.magnitude, 4),
        confidence=round(det.confidence, 4),
        onset=onset,
        details=details,
        items=items,
        exposure=int(t["items"][min(det.onset, len(grid) - 1) :].sum()),
        scope=t["flt"],
    )


def _explain(
    ctx: Context,
    flt: FeedbackFilter,
    aspect: str | None,
    onset: datetime,
    until: datetime,
    ids: list[int] | None = None,
) -> dict:
    """What drives a shift: the sub-segments whose negative mentions (or, with ``ids``, a
    tracked phrase's matches) grew most after the onset, the words that tell the new
    complaints from the old, and three quotes."""

    session = ctx.session

    if ids is not None:  # a tracked phrase's matches: their text is the evidence
        scores, evidence = ScoreRow, FeedbackRow.text
        where = [FeedbackRow.id.in_(ids)]
    else:  # the aspect's negative mentions
        scores, evidence = AspectScoreRow, AspectScoreRow.evidence
        where = [AspectScoreRow.aspect == aspect, AspectScoreRow.sentiment == "negative"]
    drivers_of = [getattr(FeedbackRow, dim) for dim in DRIVER_DIMENSIONS]
    stmt = (  # rows of (id, text, evidence, score, *DRIVER_DIMENSIONS)
        select(FeedbackRow.id, FeedbackRow.text, evidence, scores.sentiment_score, *drivers_of)
        .join(scores, scores.feedback_id == FeedbackRow.id)
        .where(*where)
    )

    def rows(a: datetime, b: datetime):
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
            drivers.append(
                {
                    "dimension": dim,
                    "value": value,
                    "after": n,
                    "before": cb.get(value, 0),
                    "growth_per_week": round(growth * 7 * 86400, 2),
                }
            )
    drivers.sort(key=lambda d: -d["growth_per_week"])
    words = keyword_tokenizer(session, ctx.competitors)
    docs = [[w for r in part for w in words(r[2] or r[1])] for part in (before, after)]
    phrases = class_tfidf(docs, top=6)[1] if after else []
    quotes = [
        {"id": r[0], "text": r[1], "evidence": r[2]} for r in sorted(after, key=lambda r: r[3])[:3]
    ]
    return {
        "drivers": [d for d in drivers if d["growth_per_week"] > 0][:5],
        "phrases": phrases,
        "quotes": quotes,
        "_after_ids": {r[0] for r in after},
    }
