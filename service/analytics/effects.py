"""Did it work? The effect of a recorded action, against segments it did not touch.

An action changed something in one segment (a recipe in East × 18-24, a courier in one region)
from a date on. Its effect on a metric is a **difference in differences**: how much the treated
segment's weekly metric moved from before the action to after it, minus how much a control
group's moved over the same weeks. Whatever hit every segment alike (a season, a campaign, a
change of the tagger) cancels; what is left is the action's, as long as the treated segment
would have moved like its controls without it (*parallel trends*, checked on the weeks before).

**The unit of replication is the week.** Per complete UTC week (Monday start) the treated
segment's metric and the control group's (the controls pooled: their counts added) give one
difference ``d_t``. The effect is the coefficient of an after-indicator in an OLS regression of
``d_t`` on a constant and that indicator (statsmodels), which is the two-way fixed-effects DiD of
a treated unit and a pooled control, and its interval is the regression's t interval. The noise
it carries is what the weekly differences actually show: sampling noise at the segments' volume
and any week-to-week wobble of a segment of its own. Why not cluster-robust errors by segment:
an action treats one segment, and a cluster-robust variance from one treated cluster is biased
towards zero (it under-covers badly); the weeks are the replicates this design has. The
simulation benchmark (``benchmarks/action_effects.py``) measures the interval's coverage.

**Controls** are the cells over the same dimensions (same brand and product) that the action
did not touch and no other action touched in the window, with items in most weeks. They are
ranked by how parallel their weeks before the action ran to the treated segment's (the t-value
of the slope of the difference); the most parallel ``max_controls`` are pooled, leaving out only
a cell that clearly diverged (p < 0.01). Ranking on the slope, not on how closely the levels
track week by week, and screening only the clear cases, keep the choice from picking controls
whose noise happened to match the treated segment's (which would make the interval too narrow
and let the pre-trend check pass by construction). A team can name the controls instead.

**The pre-trend check**: the slope of ``d_t`` over the weeks before the action; a significant
slope (p < 0.05) means the segments were already drifting apart, and the verdict says the
estimate cannot be trusted.

**Verdicts** read the 95% interval in the metric's good direction (a negative share should fall,
sentiment and ratings rise; volume has no good direction): ``worked`` (the whole interval on the
good side), ``got_worse`` (on the bad side), else ``no_effect_yet`` with how many more weeks at
this volume would detect the action's minimum effect worth detecting at 80% power, or
``no_effect`` when that many weeks have already passed.

**Planning** (``plan``): for a pilot that has not started, the weeks it must run to detect a
minimum effect with probability 0.8 at the segment's observed volume and noise (the variance of
its weekly differences from the controls over the last ``pre_weeks``), and which controls fit.
The probability averages the power over what those few weeks leave open about the noise and
includes the pre-trend check's 5% (``assured_power``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
from scipy import stats as sstats
from sqlalchemy.orm import Session

from service.store import actions as actions_repo
from service.store import rollups
from service.store.repo import FeedbackFilter

Metric = Literal["negative_share", "net_sentiment", "volume", "rating"]
METRICS: tuple[str, ...] = ("negative_share", "net_sentiment", "volume", "rating")
GOOD_DIRECTION = {"negative_share": -1, "net_sentiment": 1, "rating": 1, "volume": 0}
DEFAULT_MIN_EFFECT = {"negative_share": 0.05, "net_sentiment": 0.10, "rating": 0.25, "volume": 10.0}
WEEK = timedelta(weeks=1)
ALPHA = 0.05
POWER = 0.80
MIN_PRE_WEEKS = 3
EXCLUDE_ALPHA = 0.01  # a control whose own pre-trend differs at this level is not used
MAX_WEEKS = 52


class EffectError(ValueError):
    """The effect cannot be estimated; the message says why (e.g. too few weeks before)."""


def week_floor(ts: datetime) -> datetime:
    ts = ts.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return ts - timedelta(days=ts.weekday())


def week_ceil(ts: datetime) -> datetime:
    """The first Monday 00:00 UTC at or after ``ts``."""
    f = week_floor(ts)
    return f if f == ts.astimezone(UTC) else f + WEEK


FIELDS = ("region", "channel", "product", "language", "source")
DIMENSION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def segment_dimensions(segment: dict[str, str]) -> tuple[str, ...]:
    """A segment's keys as dimension names: feedback fields as they are, the rest ``attr:<name>``."""
    return tuple(k if k in FIELDS else f"attr:{k.removeprefix('attr:')}" for k in segment)


def check_metric(metric: str, aspect: str | None) -> None:
    if metric not in METRICS:
        raise EffectError(f"unknown metric {metric!r}; use one of {list(METRICS)}")
    if metric == "rating" and not aspect:
        raise EffectError("metric 'rating' needs an aspect (ratings are read per aspect mentioned)")


def check_where(
    *,
    aspects: Sequence[str],
    segment: dict[str, str],
    aspect: str | None,
    metric: str,
    controls: Sequence[dict] | None,
) -> list[dict]:
    """What is wrong with an action's or a pilot's "where" and metric, as ``{field, message}``
    (empty: nothing). The API answers 422 with them, the CLI prints them."""
    errors = []
    if not segment:
        errors.append(
            {"field": "segment", "message": "name at least one dimension, e.g. region=East"}
        )
    for k in segment:
        if not DIMENSION_NAME.fullmatch(k):
            errors.append(
                {
                    "field": f"segment.{k}",
                    "message": "a dimension is a field (region, channel, product, "
                    "language, source) or an attribute name: letters, digits and _",
                }
            )
        elif k in ("brand",):
            errors.append(
                {
                    "field": f"segment.{k}",
                    "message": "the brand is the action's own field, not a segment",
                }
            )
    if aspect is not None and aspect not in aspects:
        errors.append(
            {
                "field": "aspect",
                "message": f"{aspect!r} is not in the taxonomy ({', '.join(aspects)})",
            }
        )
    try:
        check_metric(metric, aspect)
    except EffectError as exc:
        errors.append({"field": "metric", "message": str(exc)})
    for i, c in enumerate(controls or []):
        if set(c) != set(segment):
            errors.append(
                {
                    "field": f"controls.{i}",
                    "message": f"a control segment names the segment's dimensions "
                    f"({', '.join(sorted(segment))})",
                }
            )
        elif dict(c) == dict(segment):
            errors.append(
                {
                    "field": f"controls.{i}",
                    "message": "the treated segment cannot be its own control",
                }
            )
    return errors


# --- the weekly panel --------------------------------------------------------------------------


@dataclass
class CellSeries:
    """One cell's metric per week: ``num / den`` (volume: items per week, ``den`` 1 where the
    cell had any item that week, so weeks before a cell existed do not count as zeros)."""

    cell: tuple
    num: np.ndarray
    den: np.ndarray

    def rate(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.den > 0, self.num / np.where(self.den > 0, self.den, 1), np.nan)


@dataclass
class Panel:
    weeks: list[datetime]  # Monday starts
    dims: tuple[str, ...]
    metric: str
    cells: dict[tuple, CellSeries]
    volume: dict[tuple, np.ndarray]  # items per week per cell (for display and eligibility)


def _numerator(metric: str, f, aspect: str | None) -> tuple[float, float]:
    if metric == "negative_share":
        return (f.neg, None) if aspect else (f.neg, f.scored)
    if metric == "net_sentiment":
        return (f.pos - f.neg, f.mentions) if aspect else (f.pos - f.neg, f.scored)
    if metric == "rating":
        return f.rating_sum, f.rated
    raise AssertionError(metric)


def build_panel(
    session: Session,
    *,
    flt: FeedbackFilter,
    dims: Sequence[str],
    metric: str,
    aspect: str | None,
    since: datetime,
    until: datetime,
) -> Panel:
    """Per week in ``[since, until)`` (Monday starts) and per cell of ``dims`` (values of the
    items under ``flt``), the metric's numerator and denominator: from ``rollups.facts``, so from
    the daily rollups where they can answer."""
    check_metric(metric, aspect)
    since, until = week_floor(since), week_floor(until)
    weeks = []
    w = since
    while w < until:
        weeks.append(w)
        w += WEEK
    index = {w: i for i, w in enumerate(weeks)}
    m = len(weeks)
    window = replace(flt, since=since, until=until)
    items = rollups.facts(session, flt=window, dims=list(dims), by_day=True)
    volume: dict[tuple, np.ndarray] = {}
    num: dict[tuple, np.ndarray] = {}
    den: dict[tuple, np.ndarray] = {}

    def slot(d: dict, cell: tuple) -> np.ndarray:
        if cell not in d:
            d[cell] = np.zeros(m)
        return d[cell]

    def week_of(day) -> int | None:
        day = datetime.strptime(str(day)[:10], "%Y-%m-%d").replace(tzinfo=UTC)
        return index.get(week_floor(day))

    for key, f in items.items():
        i = week_of(key[0])
        if i is None or any(v is None for v in key[1:]):
            continue
        cell = tuple(key[1:])
        slot(volume, cell)[i] += f.items
        if metric == "volume":
            slot(num, cell)[i] += f.items
        elif not aspect:
            a, b = _numerator(metric, f, None)
            slot(num, cell)[i] += a
            slot(den, cell)[i] += b
        elif metric == "negative_share":
            slot(num, cell)
            slot(den, cell)[i] += f.items  # share of the segment's items with a negative mention
    if aspect:
        for key, f in rollups.facts(
            session, flt=window, dims=list(dims), aspects=True, by_day=True
        ).items():
            if key[-1] != aspect:
                continue
            i = week_of(key[0])
            if i is None or any(v is None for v in key[1:-1]):
                continue
            cell = tuple(key[1:-1])
            a, b = _numerator(metric, f, aspect)
            slot(num, cell)[i] += a
            if metric != "negative_share":
                slot(den, cell)[i] += b
    cells = {}
    for cell, v in volume.items():
        n = num.get(cell, np.zeros(m))
        d = (v > 0).astype(float) if metric == "volume" else den.get(cell, np.zeros(m))
        cells[cell] = CellSeries(cell, n, d)
    return Panel(weeks, tuple(dims), metric, cells, volume)


# --- the estimator -------------------------------------------------------------------------------


@dataclass
class PreTrend:
    slope: float | None  # per week, in the metric's units
    p_value: float | None
    ok: bool

    def to_dict(self) -> dict:
        return {"slope_per_week": _r(self.slope), "p_value": _r(self.p_value), "ok": self.ok}


def pre_trend(d_pre: np.ndarray, t_pre: np.ndarray, alpha: float = ALPHA) -> PreTrend:
    import statsmodels.api as sm  # slow to import (seconds): only when this analysis runs

    if len(d_pre) < 3:
        return PreTrend(None, None, True)
    fit = sm.OLS(d_pre, sm.add_constant(t_pre.astype(float))).fit()
    slope, p = float(fit.params[1]), float(fit.pvalues[1])
    if not math.isfinite(p):  # a perfectly flat difference
        return PreTrend(slope, 1.0, True)
    return PreTrend(slope, p, p >= alpha)


@dataclass
class Estimate:
    effect: float
    lower: float
    upper: float
    se: float
    df: int
    p_value: float
    sigma: float  # residual standard deviation of the weekly differences
    pre_weeks: int
    post_weeks: int


def did(
    treated: CellSeries, control: CellSeries, post: np.ndarray, *, alpha: float = ALPHA
) -> tuple[Estimate, PreTrend]:
    """The DiD of ``treated`` vs ``control`` over the weeks where both have data; ``post``: a
    boolean per week (True after the action, False before; weeks in neither are NaN-masked by
    the caller through ``den`` 0)."""
    import statsmodels.api as sm  # slow to import (seconds): only when this analysis runs

    yt, yc = treated.rate(), control.rate()
    ok = np.isfinite(yt) & np.isfinite(yc)
    d, after = (yt - yc)[ok], post[ok].astype(float)
    t = np.arange(len(post))[ok]
    n_pre, n_post = int((after == 0).sum()), int((after == 1).sum())
    if n_pre < MIN_PRE_WEEKS:
        raise EffectError(
            f"{n_pre} week(s) with data before the action in the treated segment and its controls; "
            f"at least {MIN_PRE_WEEKS} are needed"
        )
    if n_post < 1:
        raise EffectError("no complete week with data since the action started yet")
    trend = pre_trend(d[after == 0], t[after == 0], alpha)
    if n_pre + n_post < 3:
        raise EffectError("too few weeks to estimate the noise")
    fit = sm.OLS(d, sm.add_constant(after, has_constant="add")).fit()
    lo, hi = fit.conf_int(alpha)[1]
    est = Estimate(
        float(fit.params[1]),
        float(lo),
        float(hi),
        float(fit.bse[1]),
        int(fit.df_resid),
        float(fit.pvalues[1]) if math.isfinite(fit.pvalues[1]) else 1.0,
        float(math.sqrt(max(fit.scale, 0.0))),
        n_pre,
        n_post,
    )
    if not math.isfinite(est.se) or est.se == 0:  # identical weeks: no noise to price
        est.lower = est.upper = est.effect
        est.p_value = 0.0 if est.effect else 1.0
    return est, trend


def power(effect: float, sigma: float, n_pre: int, n_post: int, alpha: float = ALPHA) -> float:
    """Probability that the DiD's interval excludes 0 on the effect's side, for a true
    ``effect`` and weekly-difference noise ``sigma``."""
    if n_pre < 2 or n_post < 1:
        return 0.0
    if sigma <= 0:
        return 1.0 if effect else 0.0
    se = sigma * math.sqrt(1 / n_pre + 1 / n_post)
    df = n_pre + n_post - 2
    if df < 1:
        return 0.0
    crit = float(sstats.t.ppf(1 - alpha / 2, df))
    return float(sstats.nct.sf(crit, df, abs(effect) / se))


def weeks_for(
    effect: float,
    sigma: float,
    n_pre: int,
    *,
    target: float = POWER,
    alpha: float = ALPHA,
    max_weeks: int = MAX_WEEKS,
) -> int | None:
    """The fewest weeks after the start that detect ``effect`` with probability ``target``
    (None: not within ``max_weeks``)."""
    for m in range(1, max_weeks + 1):
        if power(effect, sigma, n_pre, m, alpha) >= target:
            return m
    return None


def detectable(
    sigma: float, n_pre: int, n_post: int, *, target: float = POWER, alpha: float = ALPHA
) -> float:
    """The smallest effect detected with probability ``target`` at these weeks."""
    if n_pre < 2 or n_post < 1 or sigma <= 0:
        return 0.0
    lo, hi = 0.0, 1.0
    while power(hi * sigma, sigma, n_pre, n_post, alpha) < target and hi < 1e6:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        if power(mid * sigma, sigma, n_pre, n_post, alpha) < target:
            lo = mid
        else:
            hi = mid
    return hi * sigma


# --- controls ------------------------------------------------------------------------------------


@dataclass
class ControlFit:
    cell: tuple
    slope_t: float | None  # t-value of the slope of treated − this cell before the action
    weeks: int  # weeks with data before the action
    items_per_week: float
    chosen: bool = False
    reason: str = ""

    def to_dict(self, dims: Sequence[str]) -> dict:
        return {
            "segment": dict(zip(_names(dims), self.cell)),
            "slope_t": _r(self.slope_t),
            "weeks_before": self.weeks,
            "items_per_week": round(self.items_per_week, 1),
            "chosen": self.chosen,
            "reason": self.reason,
        }


def rank_controls(
    panel: Panel,
    treated: tuple,
    pre: np.ndarray,
    *,
    exclude: Sequence[tuple] = (),
    max_controls: int = 6,
) -> list[ControlFit]:
    """Every candidate cell with how parallel it ran to ``treated`` over the ``pre`` weeks, the
    chosen ones first."""
    import statsmodels.api as sm  # slow to import (seconds): only when this analysis runs

    tr = panel.cells[treated]
    yt = tr.rate()
    need = max(MIN_PRE_WEEKS, int(math.ceil(0.75 * int(pre.sum()))))
    fits: list[ControlFit] = []
    for cell, c in panel.cells.items():
        if cell == treated:
            continue
        yc = c.rate()
        ok = pre & np.isfinite(yc) & np.isfinite(yt)
        per_week = float(panel.volume[cell][pre].mean()) if pre.any() else 0.0
        fit = ControlFit(cell, None, int(ok.sum()), per_week)
        if cell in exclude:
            fit.reason = "touched by another action"
        elif ok.sum() < need:
            fit.reason = f"data in {int(ok.sum())} of {int(pre.sum())} weeks before"
        else:
            t = np.arange(len(pre))[ok].astype(float)
            d = (yt - yc)[ok]
            res = sm.OLS(d, sm.add_constant(t)).fit()
            tv = float(res.tvalues[1]) if np.isfinite(res.tvalues[1]) else 0.0
            fit.slope_t = tv
            # only a clearly diverging cell is left out (p < EXCLUDE_ALPHA): a stricter screen
            # would pick the cells whose noise happens to match, and the pooled pre-trend check
            # (at ``alpha``) would then pass by construction
            if abs(tv) >= float(sstats.t.ppf(1 - EXCLUDE_ALPHA / 2, max(int(ok.sum()) - 2, 1))):
                fit.reason = "trend before the action not parallel"
        fits.append(fit)
    usable = sorted(
        (f for f in fits if not f.reason), key=lambda f: (abs(f.slope_t or 0.0), -f.items_per_week)
    )
    for f in usable[:max_controls]:
        f.chosen, f.reason = True, "parallel before the action"
    for f in usable[max_controls:]:
        f.reason = "parallel, not among the closest"
    if not usable:  # none ran parallel: the closest are used, and the pre-trend check will say so
        closest = sorted((f for f in fits if f.slope_t is not None), key=lambda f: abs(f.slope_t))
        for f in closest[:max_controls]:
            f.chosen, f.reason = True, "the closest, though not parallel before the action"
    return sorted(
        fits,
        key=lambda f: (
            not f.chosen,
            bool(f.reason.startswith(("data", "touched"))),
            abs(f.slope_t) if f.slope_t is not None else 99.0,
        ),
    )


# --- verdicts ------------------------------------------------------------------------------------


def verdict(
    est: Estimate, trend: PreTrend, metric: str, min_effect: float
) -> tuple[str, str, int | None]:
    """``(verdict, plain sentence, more weeks needed)``."""
    good = GOOD_DIRECTION[metric]
    units = fmt_delta(metric, min_effect)
    if not trend.ok:
        return (
            "inconclusive",
            "the treated segment and its controls were already drifting apart before the action "
            f"(pre-trend p = {trend.p_value:.3f}), so the difference cannot be put down to the action",
            None,
        )
    above, below = est.lower > 0, est.upper < 0
    measured = (
        f"{fmt_delta(metric, est.effect)} {fmt_interval(metric, est.lower, est.upper)} "
        "against the controls"
    )
    if (below and good < 0) or (above and good > 0):
        return "worked", f"worked: {measured}", None
    if (above and good < 0) or (below and good > 0):
        return "got_worse", f"got worse: {measured}", None
    if good == 0 and (above or below):
        word = "rose" if above else "fell"
        return word, f"{word}: {measured}", None
    need = weeks_for(min_effect, est.sigma, est.pre_weeks)
    if need is None:
        floor_ = detectable(est.sigma, est.pre_weeks, MAX_WEEKS)
        return (
            "no_effect_yet",
            f"no measurable effect yet; at this volume, against {est.pre_weeks} weeks before, "
            f"a change of {units} cannot be told from the weekly noise however long it runs (after a year: "
            f"{fmt_delta(metric, floor_)} and more)",
            None,
        )
    more = need - est.post_weeks
    if more <= 0:
        return (
            "no_effect",
            f"no measurable effect: a change of {units} would have been detected by now "
            f"(detectable now: {fmt_delta(metric, detectable(est.sigma, est.pre_weeks, est.post_weeks))})",
            0,
        )
    return (
        "no_effect_yet",
        f"no measurable effect yet: {more} more week{'s' if more != 1 else ''} at this volume "
        f"would detect a change of {units}",
        more,
    )


def fmt_delta(metric: str, v: float) -> str:
    if metric == "negative_share":
        return f"{100 * v:+.1f} points"
    if metric == "volume":
        return f"{v:+.1f} items/week"
    return f"{v:+.2f}"


def fmt_interval(metric: str, lo: float, hi: float) -> str:
    """``[−40.1, −19.1]`` in the units ``fmt_delta`` names once."""
    k, d = (100.0, 1) if metric == "negative_share" else (1.0, 1 if metric == "volume" else 2)
    return f"[{k * lo:+.{d}f}, {k * hi:+.{d}f}]"


def segment_text(segment: dict) -> str:
    """A segment's values, region first: ``East × 18-24``."""
    keys = sorted(segment, key=lambda k: (k != "region", k))
    return " × ".join(str(segment[k]) for k in keys)


def fmt_level(metric: str, v: float | None) -> str:
    if v is None:
        return "–"
    if metric == "negative_share":
        return f"{100 * v:.0f}%"
    if metric == "volume":
        return f"{v:.0f}/week"
    return f"{v:+.2f}" if metric == "net_sentiment" else f"{v:.2f}"


def _names(dims: Sequence[str]) -> list[str]:
    return [d.removeprefix("attr:") for d in dims]


def _r(v: float | None, digits: int = 4) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), digits)


# --- one action's effect and one pilot's plan ------------------------------------------------------


@dataclass
class EffectReport:
    metric: str
    aspect: str | None
    segment: dict
    start: datetime
    end: datetime | None
    verdict: str
    message: str
    estimate: Estimate | None
    pre_trend: PreTrend | None
    treated_before: float | None
    treated_after: float | None
    control_before: float | None
    control_after: float | None
    controls: list[dict]
    series: list[dict]
    min_effect: float
    more_weeks: int | None = None
    chosen_by: str = "auto"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        e = self.estimate
        return {
            "metric": self.metric,
            "aspect": self.aspect,
            "segment": self.segment,
            "start": self.start.isoformat(),
            "end": self.end.isoformat() if self.end else None,
            "verdict": self.verdict,
            "message": self.message,
            "effect": _r(e.effect) if e else None,
            "lower": _r(e.lower) if e else None,
            "upper": _r(e.upper) if e else None,
            "se": _r(e.se) if e else None,
            "p_value": _r(e.p_value, 6) if e else None,
            "df": e.df if e else None,
            "weeks_before": e.pre_weeks if e else None,
            "weeks_after": e.post_weeks if e else None,
            "pre_trend": self.pre_trend.to_dict() if self.pre_trend else None,
            "treated": {"before": _r(self.treated_before), "after": _r(self.treated_after)},
            "control": {"before": _r(self.control_before), "after": _r(self.control_after)},
            "min_effect": self.min_effect,
            "more_weeks": self.more_weeks,
            "controls_chosen_by": self.chosen_by,
            "controls": self.controls,
            "series": self.series,
            "notes": self.notes,
            "summary": summary_line(self),
        }


def summary_line(r: EffectReport) -> str:
    """ "since 1 Oct, taste complaints fell from 45% to 18%; elsewhere 16% → 15%; effect −26 points [−33, −19]"."""
    if r.estimate is None:
        return r.message
    what = f"{r.aspect} " if r.aspect else ""
    label = {
        "negative_share": f"{what}complaints",
        "net_sentiment": f"{what}net sentiment",
        "rating": f"{what}rating",
        "volume": "volume",
    }[r.metric]
    t0, t1, c0, c1 = (
        fmt_level(r.metric, v)
        for v in (r.treated_before, r.treated_after, r.control_before, r.control_after)
    )
    e = r.estimate
    moved = "fell" if (r.treated_after or 0) < (r.treated_before or 0) else "rose"
    return (
        f"since {r.start.date().isoformat()}, {label} {moved} from {t0} to {t1}; elsewhere {c0} → {c1}; "
        f"effect {fmt_delta(r.metric, e.effect)} {fmt_interval(r.metric, e.lower, e.upper)}"
        f" — {r.verdict.replace('_', ' ')}"
    )


def _weighted(c: CellSeries, mask: np.ndarray) -> float | None:
    den = c.den[mask].sum()
    return float(c.num[mask].sum() / den) if den > 0 else None


def _window(
    start: datetime, end: datetime | None, now: datetime, pre_weeks: int, pre_from: datetime | None
):
    """``(pre_start, pre_end, first_post, last)``: whole weeks before the week the action
    started in, and whole weeks from the first Monday at or after the start to the last complete
    week (or the week it ended in, left out). A week the action started inside is neither."""
    pre_end = week_floor(start)
    first_post = week_ceil(start)
    last = week_floor(now)
    if end is not None:
        last = min(last, week_floor(end))
    pre_start = pre_end - pre_weeks * WEEK
    if pre_from is not None:
        pre_start = max(pre_start, week_ceil(pre_from))
    return pre_start, pre_end, first_post, last


def estimate_effect(
    session: Session,
    *,
    flt: FeedbackFilter,
    segment: dict[str, str],
    metric: str,
    aspect: str | None,
    start: datetime,
    end: datetime | None,
    now: datetime,
    pre_weeks: int = 8,
    pre_from: datetime | None = None,
    controls: list[dict] | None = None,
    exclude: Sequence[dict] = (),
    max_controls: int = 6,
    min_effect: float | None = None,
    alpha: float = ALPHA,
) -> EffectReport:
    """The effect of an action on ``segment`` (dimension → value; ``flt`` holds brand and
    product) from ``start`` (to ``end``) as of ``now``. ``pre_from``: the weeks before start no
    earlier than this (an alert's onset: the action is measured against the state it answered).
    ``controls``: segments to use instead of the automatic choice. ``exclude``: segments other
    actions touched."""
    if not segment:
        raise EffectError(
            "an action needs a segment (e.g. region) to compare with segments it did not touch"
        )
    check_metric(metric, aspect)
    dims, keys = segment_dimensions(segment), tuple(segment)
    treated = tuple(segment[k] for k in keys)
    pre_start, pre_end, first_post, last = _window(start, end, now, pre_weeks, pre_from)
    min_effect = float(min_effect if min_effect is not None else DEFAULT_MIN_EFFECT[metric])
    if pre_end - pre_start < MIN_PRE_WEEKS * WEEK:
        raise EffectError(
            f"only {(pre_end - pre_start).days // 7} complete week(s) before the action in the window; "
            f"at least {MIN_PRE_WEEKS} are needed"
        )
    panel = build_panel(
        session,
        flt=flt,
        dims=dims,
        metric=metric,
        aspect=aspect,
        since=pre_start,
        until=max(last, first_post),
    )
    if treated not in panel.cells:
        raise EffectError(f"no items in the segment {segment} in the weeks around the action")
    pre = np.array([pre_start <= w < pre_end for w in panel.weeks])
    post = np.array([first_post <= w < last for w in panel.weeks])
    return analyse(
        panel,
        treated,
        pre,
        post,
        keys=keys,
        aspect=aspect,
        start=start,
        end=end,
        controls=[tuple(c.get(k) for k in keys) for c in (controls or [])],
        exclude=exclude,
        max_controls=max_controls,
        min_effect=min_effect,
        alpha=alpha,
    )


def analyse(
    panel: Panel,
    treated: tuple,
    pre: np.ndarray,
    post: np.ndarray,
    *,
    keys: Sequence[str],
    aspect: str | None,
    start: datetime,
    end: datetime | None,
    controls: Sequence[tuple] = (),
    exclude: Sequence[dict] = (),
    max_controls: int = 6,
    min_effect: float | None = None,
    alpha: float = ALPHA,
) -> EffectReport:
    """The effect on ``panel``'s cell ``treated`` between the ``pre`` and ``post`` weeks (boolean
    masks over ``panel.weeks``): controls chosen (or ``controls`` as named), the DiD, the
    pre-trend check and the verdict. ``exclude``: segments other actions touched (a partial
    segment, e.g. a region, excludes every cell inside it). The store's path
    (``estimate_effect``) and the simulation benchmark both come here."""
    metric = panel.metric
    touched = [
        c
        for c in panel.cells
        if c != treated
        and any(all(dict(zip(keys, c)).get(k) == v for k, v in ex.items()) for ex in exclude if ex)
    ]
    min_effect = float(min_effect if min_effect is not None else DEFAULT_MIN_EFFECT[metric])
    segment = dict(zip(keys, treated))
    fits = rank_controls(panel, treated, pre, exclude=touched, max_controls=max_controls)
    chosen_by = "auto"
    if controls:
        missing = [c for c in controls if c not in panel.cells]
        if missing:
            raise EffectError(
                f"no items in control segment(s) {[dict(zip(keys, c)) for c in missing]}"
            )
        if treated in controls:
            raise EffectError("the treated segment cannot be its own control")
        for f in fits:
            f.chosen = f.cell in controls
            f.reason = "named by the team" if f.chosen else f.reason
        chosen_by = "team"
    chosen = [f.cell for f in fits if f.chosen]
    if not chosen:
        raise EffectError(
            f"no control segment fits: none of the other {', '.join(_names(panel.dims))} cells has items "
            f"in most weeks before the action"
        )
    tr = panel.cells[treated]
    ctl = control_group(panel, chosen)
    mask = pre | post
    trm = CellSeries(tr.cell, tr.num, np.where(mask, tr.den, 0))
    ctm = CellSeries(ctl.cell, ctl.num, np.where(mask, ctl.den, 0))
    series = [
        {
            "week": w.date().isoformat(),
            "period": "before" if p else "after" if q else "between",
            "treated": _r(a),
            "control": _r(b),
            "treated_items": int(panel.volume[treated][i]),
            "control_items": int(sum(panel.volume[c][i] for c in chosen)),
        }
        for i, (w, p, q, a, b) in enumerate(zip(panel.weeks, pre, post, tr.rate(), ctl.rate()))
    ]
    while series and not series[-1]["treated_items"] and not series[-1]["control_items"]:
        series.pop()  # weeks after the newest item
    report = EffectReport(
        metric,
        aspect,
        segment,
        start,
        end,
        "",
        "",
        None,
        None,
        _weighted(tr, pre),
        _weighted(tr, post),
        _weighted(ctl, pre),
        _weighted(ctl, post),
        [f.to_dict(panel.dims) for f in fits],
        series,
        min_effect,
        chosen_by=chosen_by,
    )
    try:
        est, trend = did(trm, ctm, post, alpha=alpha)
    except EffectError as exc:
        report.verdict, report.message = "not_yet", str(exc)
        return report
    report.estimate, report.pre_trend = est, trend
    report.verdict, report.message, report.more_weeks = verdict(est, trend, metric, min_effect)
    return report


def control_group(panel: Panel, chosen: Sequence[tuple]) -> CellSeries:
    """The chosen controls pooled: counts added (volume: the mean cell's items per week)."""
    cells = [panel.cells[c] for c in chosen]
    num = np.sum([c.num for c in cells], axis=0)
    den = np.sum([c.den for c in cells], axis=0)
    if panel.metric == "volume":
        return CellSeries(("control",), num / len(cells), (den > 0).astype(float))
    return CellSeries(("control",), num, den)


@dataclass
class PlanReport:
    metric: str
    aspect: str | None
    segment: dict
    min_effect: float
    weeks: int | None
    power_at_weeks: float | None
    noise_sd: float
    weeks_of_history: int
    items_per_week: float
    controls: list[dict]
    detectable_by_week: list[dict]
    message: str

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        out.update(
            power_at_weeks=_r(self.power_at_weeks),
            noise_sd=_r(self.noise_sd),
            items_per_week=round(self.items_per_week, 1),
        )
        return out


def assured_power(
    effect: float, s: float, n_hist: int, n_pre: int, n_post: int, alpha: float = ALPHA
) -> float:
    """The probability that a pilot is found to have worked, as far as the history can tell:
    the power at the weekly noise averaged over what ``n_hist`` weeks leave open about it
    (σ² = s²·(n−1)/χ²(n−1), at 24 quantiles), times the chance that the pre-trend check passes
    (1 − alpha) when the trends are parallel. Planning on the point estimate ``s`` alone runs
    pilots too short whenever the history happened to be quiet."""
    if n_hist < 2:
        return 0.0
    if s <= 0:
        return (1.0 if effect else 0.0) * (1 - alpha)
    df = n_pre + n_post - 2
    if n_pre < 2 or n_post < 1 or df < 1:
        return 0.0
    qs = (np.arange(24) + 0.5) / 24
    sigmas = s * np.sqrt((n_hist - 1) / sstats.chi2.ppf(qs, n_hist - 1))
    se = sigmas * math.sqrt(1 / n_pre + 1 / n_post)
    crit = float(sstats.t.ppf(1 - alpha / 2, df))
    return float(np.mean(sstats.nct.sf(crit, df, abs(effect) / se))) * (1 - alpha)


def plan_from_history(
    d_hist: np.ndarray,
    min_effect: float,
    *,
    pre_weeks: int,
    alpha: float = ALPHA,
    target: float = POWER,
    max_weeks: int = MAX_WEEKS,
) -> tuple[int | None, float | None, float]:
    """``(weeks, the probability of detecting min_effect in them, noise sd)`` from the weekly
    differences of the history (``assured_power``)."""
    d = d_hist[np.isfinite(d_hist)]
    if len(d) < MIN_PRE_WEEKS:
        raise EffectError(
            f"{len(d)} week(s) of history with data in the segment and its controls; "
            f"at least {MIN_PRE_WEEKS} are needed"
        )
    sigma = float(np.std(d, ddof=1))
    n_pre = min(len(d), pre_weeks)
    for m in range(1, max_weeks + 1):
        p = assured_power(min_effect, sigma, len(d), n_pre, m, alpha)
        if p >= target:
            return m, p, sigma
    return None, None, sigma


def plan(
    session: Session,
    *,
    flt: FeedbackFilter,
    segment: dict[str, str],
    metric: str,
    aspect: str | None,
    min_effect: float | None,
    now: datetime,
    pre_weeks: int = 8,
    controls: list[dict] | None = None,
    max_controls: int = 6,
    alpha: float = ALPHA,
) -> PlanReport:
    """How long a pilot in ``segment`` starting after ``now`` must run to detect ``min_effect``
    (in the metric's units; a share's as a fraction) with 80% power, at the volume and noise of
    the last ``pre_weeks`` complete weeks, and which controls fit."""
    if not segment:
        raise EffectError(
            "a pilot needs a segment (e.g. region) to compare with segments it does not touch"
        )
    check_metric(metric, aspect)
    min_effect = abs(float(min_effect if min_effect is not None else DEFAULT_MIN_EFFECT[metric]))
    if min_effect <= 0:
        raise EffectError("min_effect must be above 0")
    dims, keys = segment_dimensions(segment), tuple(segment)
    treated = tuple(segment[k] for k in keys)
    end = week_floor(now)
    start = end - pre_weeks * WEEK
    panel = build_panel(
        session, flt=flt, dims=dims, metric=metric, aspect=aspect, since=start, until=end
    )
    if treated not in panel.cells:
        raise EffectError(f"no items in the segment {segment} in the last {pre_weeks} weeks")
    pre = np.ones(len(panel.weeks), dtype=bool)
    fits = rank_controls(panel, treated, pre, max_controls=max_controls)
    if controls:
        named = [tuple(c.get(k) for k in keys) for c in controls]
        for f in fits:
            f.chosen = f.cell in named
            f.reason = "named by the team" if f.chosen else f.reason
    chosen = [f.cell for f in fits if f.chosen]
    if not chosen:
        raise EffectError("no control segment fits the segment's last weeks")
    ctl = control_group(panel, chosen)
    d = panel.cells[treated].rate() - ctl.rate()
    weeks, pw, sigma = plan_from_history(d, min_effect, pre_weeks=pre_weeks, alpha=alpha)
    n_pre = int(np.isfinite(d).sum())
    table = [
        {"weeks": m, "detectable": _r(detectable(sigma, n_pre, m, alpha=alpha))}
        for m in (1, 2, 4, 6, 8, 12)
    ]
    per_week = float(panel.volume[treated].mean())
    if weeks is None:
        msg = (
            f"a change of {fmt_delta(metric, min_effect)} cannot be detected within {MAX_WEEKS} weeks at "
            f"{per_week:.0f} items a week; pilot a larger segment or aim for a larger change"
        )
    else:
        msg = (
            f"run the pilot for {weeks} week{'s' if weeks != 1 else ''}: at {per_week:.0f} items a week that "
            f"detects a change of {fmt_delta(metric, min_effect)} with {100 * pw:.0f}% power against "
            f"{len(chosen)} control segment{'s' if len(chosen) != 1 else ''}"
        )
    return PlanReport(
        metric,
        aspect,
        dict(segment),
        min_effect,
        weeks,
        pw,
        sigma,
        n_pre,
        per_week,
        [f.to_dict(dims) for f in fits],
        table,
        msg,
    )


def action_effect_dict(
    session: Session, *, action: dict, now: datetime, metric: str | None = None
) -> dict:
    """``action_effect(...).to_dict()``, or, when it cannot be estimated, the verdict
    ``unavailable`` with the reason (what the API, the CLI and the digest show)."""
    try:
        return action_effect(session, action=action, now=now, metric=metric).to_dict()
    except EffectError as exc:
        return {
            "metric": metric or action["metric"],
            "aspect": action.get("aspect"),
            "segment": action["segment"],
            "start": action["started_at"],
            "end": action.get("ended_at"),
            "verdict": "unavailable",
            "message": str(exc),
            "summary": str(exc),
            "series": [],
        }


def action_effect(
    session: Session,
    *,
    action: dict,
    now: datetime,
    metric: str | None = None,
    max_controls: int = 6,
    pre_weeks: int = 8,
) -> EffectReport:
    """The effect of a stored action (``store.actions.action_dict``) as of ``now``: on its own
    metric, or ``metric``. The weeks before are counted from the earliest onset of the alerts it
    answers, when that is later than ``pre_weeks`` before the start (the action is measured
    against the state it answered). Cells another action of the brand touched in the window are
    not controls."""
    segment = action["segment"]
    start = datetime.fromisoformat(action["started_at"])
    end = datetime.fromisoformat(action["ended_at"]) if action.get("ended_at") else None
    onsets = actions_repo.alert_onsets(session, alert_ids=action.get("alert_ids") or [])
    pre_from = min(onsets) if onsets else None
    if pre_from is not None and pre_from >= week_floor(start):
        pre_from = None  # an onset after the start says nothing about the weeks before
    flt = FeedbackFilter(
        brands=(action["brand"],), products=(action["product"],) if action.get("product") else ()
    )
    others = actions_repo.overlapping(
        session,
        brand=action["brand"],
        since=start - pre_weeks * WEEK,
        until=end or now,
        besides=action.get("id"),
    )
    exclude = []
    for o in others:
        seg = json.loads(o.segment)
        if seg and all(
            k in segment for k in seg
        ):  # a segment over other dimensions cannot be told apart
            exclude.append(seg)
    return estimate_effect(
        session,
        flt=flt,
        segment=segment,
        metric=metric or action["metric"],
        aspect=action.get("aspect"),
        start=start,
        end=end,
        now=now,
        pre_weeks=pre_weeks,
        pre_from=pre_from,
        controls=action.get("controls"),
        exclude=exclude,
        max_controls=max_controls,
        min_effect=action.get("min_effect"),
    )
