"""Shift detectors for one metric series: interval breaches, level shifts, trend changes, surges.

``detect(y, kind=..., trials=..., alpha=..., k=..., min_history=..., season=..., seed=...)``
returns ``Detection``s (onset, the period the detector became sure, magnitude in the
metric's units, p-value and confidence), sorted by ``detected_at``.

False alarms. ``alpha`` is the probability that a series without any change raises a given
sustained detector (``level_shift``, ``trend_change``); the two short-run detectors
(``interval_breach``, ``surge``) get ``alpha / 2`` each (``ALPHA_SHARE``), so a series without
a change raises *something* with probability of about ``3·alpha`` (3 % at the default).
The shares were tuned on the synthetic suite of benchmarks/shift_detection.py only.

Scale and standardisation (binomial-aware). Every period is put on a variance-stabilising
scale with a known sampling variance ``v_t``:

- ``count``: ``z = 2·√(y + 3/8)`` (Anscombe), ``v_t = 1`` for Poisson counts;
- ``proportion``: ``z = asin √((y + 3/8)/(n + 3/4))``, ``v_t = 1/(4·n_t + 2)``: the binomial
  variance at that period's own trials (periods with 0 trials are missing, not 0 %);
- ``level``: ``z = y``, ``v_t = 1/n_t`` with ``trials`` (items behind each mean), else 1.

Baseline. The first ``b = max(min_history, min(N // 2, max(20, 3·season)))`` periods are the
reference; the rest is monitored. A weighted least-squares fit (weights ``1/v_t``) of a level
plus, when ``season`` is given, the baseline holds two full seasons and an F-test finds the
phase offsets (level ``SEASON_ALPHA``), one offset per phase; points beyond ``OUTLIER`` (3.5)
robust standard deviations are left out and the fit repeated (a spike in the baseline cannot
set the bar). The overdispersion factor ``φ`` pools the Pearson statistic of that fit with
the variance of the whole series' de-seasonalised period-over-period differences (robustly
screened the same way, so a level shift, a slow trend or a spike barely moves it, while the
monitored periods sharpen a 20-point estimate), and is floored at 1 for counts and
proportions: never less noise than Poisson/binomial sampling, so a segment with 7 items a
week does not alert on noise. For levels ``φ`` is the noise variance itself. Residuals are
standardised by their prediction variance ``φ·(v_t + x_t'(X'WX)⁻¹x_t)``.

Detectors:

- ``interval_breach``: ``forecast()`` (service.analytics.forecast) fitted once on the baseline
  and run over the monitored periods; ``k`` consecutive observations outside its interval
  on the same side. p-value: product of the points' two-sided normal tail probabilities
  times the number of windows (Bonferroni), capped at 1.
- ``level_shift``: two-sided CUSUM of the standardised residuals of the monitored periods
  (reference value ``KREF`` = 1 SD, aimed at shifts of 2 SD and more; residuals clipped at
  ``CLIP`` SD; isolated surges, i.e. surges of at most two periods after which the series
  is back within ``BACK`` SD, set to 0). The alarm threshold is the ``1 − alpha`` quantile
  of the largest CUSUM value in ``NULL_DRAWS`` seeded simulations of Gaussian series of the
  same length, baseline and design, estimated the same way: with the noise variance known
  when the binomial/Poisson floor bound, estimated (pooled as above) otherwise. So the
  estimation error of a short baseline is priced in. Onset: the period after the CUSUM last
  stood at zero before the alarm. p-value: of the evidence on all the data to date, the
  largest standardised sum of the residuals from any start ``τ`` to the last period,
  ``max_τ |Σ_{t≥τ} r_t| / √(n − τ)``, against its null in the same simulations (a sudden
  shift seen for three periods is strong evidence even while the CUSUM has only just
  crossed its threshold; the alerting layer ranks series by these p-values).
- ``trend_change``: segmented regression on the de-seasonalised stabilised series,
  ``z_t = a + c·(t − τ)₊`` (weights ``1/v_t``, isolated surges left out), with the hinge
  ``τ`` scanned over the periods that leave at least ``MIN_AFTER`` points after it
  (``τ = 0`` is a trend over the whole series) and a t-test on ``c`` whose residual variance
  is floored at the binomial/Poisson one. The statistic at period ``T`` is the largest
  ``|t|`` over ``τ`` on the data up to ``T``; it must clear the threshold at two consecutive
  periods with the same sign (one outlier cannot make a trend). Threshold and p-value come
  from seeded Gaussian simulations of the whole scan, which corrects for the number of
  hinges and periods tried. Onset: ``τ̂ + 1``. p-value: of the largest sustained statistic.

Simulated p-values past the last 20 simulated maxima follow an exponential tail fitted to
the top 5 % of them, so strong evidence is not floored at ``1 / (NULL_DRAWS + 1)``.
- ``surge``: upper tail probability of each monitored period: the larger of the exact
  Poisson (negative binomial with variance ``φ·μ`` when ``φ > 1``) or binomial
  (beta-binomial with the same ``φ``) tail at the baseline's expectation, and a Student-t
  tail of the residual in the metric's own units over its predictive SD (which carries the
  uncertainty of the expectation); Bonferroni over the monitored periods. Consecutive
  surging periods are one detection.

Arbitration. When both a level shift and a trend change are found, a step at the level
shift's onset and a hinge at the trend's onset are fitted to the whole series and only the
one with the smaller weighted residual sum of squares is kept: a slow steady trend comes out
as ``trend_change``, a jump as ``level_shift``. Surges after the onset of a sustained change
in the same direction are that change and are dropped. ``level_shift``, ``trend_change`` and
``interval_breach`` report their first alarm; ``surge`` reports every surging run.

``magnitude`` is after-minus-before in the metric's units (proportion points for
proportions): ``observed`` is the mean (pooled share) over ``onset..detected_at`` and
``baseline`` the baseline's expectation over the same periods. ``confidence = 1 − p_value``.
Series with fewer than ``min_history`` usable baseline periods, nothing to monitor, or only
zeros give ``[]``. Results depend on nothing but the inputs and ``seed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.stats import betabinom, binom, nbinom, norm, poisson
from scipy.stats import f as f_dist
from scipy.stats import t as student_t

from service.analytics.forecast import forecast

DETECTORS = ("interval_breach", "level_shift", "trend_change", "surge")
KINDS = ("count", "proportion", "level")
KREF = 1.0  # CUSUM reference value, in SD
CLIP = 3.5  # CUSUM input clip, in SD (one wild period cannot make a shift)
OUTLIER = 3.5  # robust SDs beyond which a baseline point or a difference is screened out
BACK = 2.0  # a surge is isolated when the next period is back below this many SD
SEASON_ALPHA = 0.05  # F-test level for keeping phase offsets in the baseline
MIN_AFTER = 3  # points after a hinge before its slope is tested
NULL_DRAWS = 2000  # seeded Gaussian series behind each threshold and p-value
MAX_HINGES = 60  # hinges scanned at most (a stride on long series)
_CELLS = 1_000_000  # simulation cells per chunk (bounds memory on long series)
# Each detector's share of ``alpha`` (tuned on benchmarks/shift_detection.py's synthetic suite).
ALPHA_SHARE = {"interval_breach": 0.5, "level_shift": 1.0, "trend_change": 1.0, "surge": 0.5}


@dataclass(frozen=True)
class Detection:
    kind: str
    direction: int
    onset: int
    detected_at: int
    magnitude: float
    baseline: float
    observed: float
    p_value: float
    confidence: float

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "direction": int(self.direction),
            "onset": int(self.onset),
            "detected_at": int(self.detected_at),
            "magnitude": float(self.magnitude),
            "baseline": float(self.baseline),
            "observed": float(self.observed),
            "p_value": float(self.p_value),
            "confidence": float(self.confidence),
        }


@dataclass(frozen=True)
class _Series:
    """One series on the stabilised scale, with its units for reporting."""

    kind: str
    values: np.ndarray  # y as given
    trials: np.ndarray | None
    z: np.ndarray  # stabilised value (0 where missing)
    v: np.ndarray  # sampling variance on that scale (1 where missing)
    ok: np.ndarray  # period carries data
    metric: np.ndarray  # value in the metric's units (count, share, level; nan where missing)


@dataclass(frozen=True)
class _Baseline:
    b: int
    design: np.ndarray  # N × p
    phi: float  # overdispersion used (floored at 1 for counts and proportions)
    known: bool  # the floor bound: residuals are standardised by the sampling variance itself
    dof: float  # degrees of freedom behind phi
    leverage: np.ndarray  # x'(X'WX)⁻¹x: variance of the expectation over phi, every period
    mu: np.ndarray  # stabilised expectation, every period
    resid: np.ndarray  # standardised residual, every period (0 where missing)
    expected: np.ndarray  # expectation in the metric's units, every period
    seasonal: np.ndarray  # phase offsets on the stabilised scale, every period


def detect(
    y,
    *,
    kind: str = "count",
    trials=None,
    alpha: float = 0.01,
    k: int = 2,
    min_history: int = 8,
    season: int | None = None,
    seed: int = 0,
    detectors: Sequence[str] = DETECTORS,
) -> list[Detection]:
    """Changes in ``y`` after its baseline, sorted by the period they were detected at."""
    unknown = set(detectors) - set(DETECTORS)
    if unknown:
        raise ValueError(f"unknown detectors {sorted(unknown)}; choose from {DETECTORS}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), not {alpha!r}")
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k!r}")
    series = _prepare(y, kind, trials)
    n = len(series.z)
    season = season if season and season >= 2 else None
    b = _baseline_length(n, min_history, season)
    if (
        b >= n
        or int(series.ok[:b].sum()) < min_history
        or not series.ok[b:].any()
        or _all_zero(series)
    ):
        return []
    base = _fit_baseline(series, b, season)
    found: list[Detection] = []
    share = {name: alpha * ALPHA_SHARE[name] for name in DETECTORS}
    surges = _surges(series, base, share["surge"])
    isolated = _isolated(series, base, surges)
    if "surge" in detectors:
        found += surges
    if "interval_breach" in detectors:
        found += _breach(series, base, share["interval_breach"], k, season, seed)
    level = (
        _level_shift(series, base, share["level_shift"], isolated, seed)
        if "level_shift" in detectors
        else None
    )
    trend = (
        _trend_change(series, base, share["trend_change"], isolated, seed)
        if "trend_change" in detectors
        else None
    )
    if level is not None and trend is not None:
        level, trend = _arbitrate(series, base, isolated, level, trend)
    found += [d for d in (level, trend) if d is not None]
    found = _drop_explained_surges(found)
    return sorted(found, key=lambda d: (d.detected_at, d.onset, DETECTORS.index(d.kind)))


def _drop_explained_surges(found: list[Detection]) -> list[Detection]:
    """Surges after the onset of a sustained change in the same direction are that change."""
    sustained = [d for d in found if d.kind != "surge"]
    return [
        d
        for d in found
        if d.kind != "surge"
        or not any(s.direction == d.direction and d.onset > s.onset for s in sustained)
    ]


# --- preparation and baseline ---------------------------------------------------------------


def _prepare(y, kind: str, trials) -> _Series:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    values = np.asarray(y, dtype=float).ravel()
    if values.size == 0:
        raise ValueError("cannot detect shifts in an empty series: y has no values")
    n_trials = None if trials is None else np.asarray(trials, dtype=float).ravel()
    if n_trials is not None and n_trials.shape != values.shape:
        raise ValueError(f"trials has {n_trials.size} values but y has {values.size}")
    if kind == "proportion":
        if n_trials is None:
            raise ValueError("kind='proportion' needs trials (the per-period totals)")
        ok = (n_trials > 0) & np.isfinite(values)
        if np.any(values[ok] < 0) or np.any(values[ok] > n_trials[ok]):
            raise ValueError("proportions need 0 <= y <= trials in every period")
        safe_n = np.where(ok, n_trials, 1.0)
        safe_y = np.where(ok, values, 0.0)
        z = np.arcsin(np.sqrt((safe_y + 3 / 8) / (safe_n + 3 / 4)))
        v = 1.0 / (4 * safe_n + 2)
        metric = np.where(ok, safe_y / safe_n, np.nan)
    elif kind == "count":
        ok = np.isfinite(values)
        if np.any(values[ok] < 0):
            raise ValueError("counts cannot be negative")
        safe_y = np.where(ok, values, 0.0)
        z, v, metric = (
            2 * np.sqrt(safe_y + 3 / 8),
            np.ones_like(values),
            np.where(ok, values, np.nan),
        )
    else:
        ok = np.isfinite(values)
        if n_trials is not None:
            ok &= n_trials > 0
        z = np.where(ok, values, 0.0)
        v = 1.0 / np.where(ok, n_trials, 1.0) if n_trials is not None else np.ones_like(values)
        metric = np.where(ok, values, np.nan)
    z = np.where(ok, z, 0.0)
    v = np.where(ok, v, 1.0)
    return _Series(kind, values, n_trials, z, v, ok, metric)


def _all_zero(series: _Series) -> bool:
    return bool(np.all(series.values[series.ok] == 0)) if series.kind != "level" else False


def _baseline_length(n: int, min_history: int, season: int | None) -> int:
    cap = max(20, 3 * season) if season else 20
    return max(min_history, min(n // 2, cap))


def _design(n: int, b: int, season: int | None) -> np.ndarray:
    """Intercept, plus one offset per phase when the baseline holds two full seasons."""
    cols = [np.ones(n)]
    if season and b >= 2 * season:
        phase = np.arange(n) % season
        cols += [(phase == j).astype(float) for j in range(1, season)]
    return np.column_stack(cols)


def _robust_fit(Z: np.ndarray, W: np.ndarray, X: np.ndarray):
    """Weighted LS of every row of ``Z`` on ``X``, outliers screened once.

    Returns ``(beta (S×p), phi (S,), inverse normal matrices (S×p×p), kept (S×b))``;
    ``phi`` is the Pearson statistic per degree of freedom of the kept points.
    """
    p = X.shape[1]
    ridge = 1e-9 * np.eye(p)

    def solve(weights):
        a = np.einsum("sb,bp,bq->spq", weights, X, X) + ridge
        rhs = np.einsum("sb,bp,sb->sp", weights, X, Z)
        inv = np.linalg.inv(a)
        return np.einsum("spq,sq->sp", inv, rhs), inv

    beta, _ = solve(W)
    std = (Z - beta @ X.T) * np.sqrt(W)
    present = W > 0
    scale = 1.4826 * np.nanmedian(np.where(present, np.abs(std), np.nan), axis=1)
    kept = present & (np.abs(std) <= OUTLIER * np.maximum(scale, 1e-12)[:, None])
    beta, inv = solve(W * kept)
    resid = (Z - beta @ X.T) * np.sqrt(W * kept)
    dof = np.maximum(kept.sum(axis=1) - p, 1)
    phi = (resid**2).sum(axis=1) / dof
    return beta, phi, inv, kept


def _fit_baseline(series: _Series, b: int, season: int | None) -> _Baseline:
    n = len(series.z)
    w = np.where(series.ok, 1.0 / series.v, 0.0)
    X = _design(n, b, season)
    beta, phi, inv, kept = _robust_fit(series.z[None, :b], w[None, :b], X[:b])
    if X.shape[1] > 1 and not _seasonal(series, b, X, w, beta[0], float(phi[0]), kept[0]):
        X = X[:, :1]
        beta, phi, inv, kept = _robust_fit(series.z[None, :b], w[None, :b], X[:b])
    mu = (beta @ X.T)[0]
    seasonal = mu - beta[0, 0]
    raw_phi, dof = _pooled_phi(
        phi, kept, X.shape[1], (series.z - seasonal)[None], series.v[None], series.ok[None]
    )
    raw_phi, dof = float(raw_phi[0]), float(dof[0])
    phi_used = max(raw_phi, 1.0) if series.kind != "level" else max(raw_phi, 1e-12)
    leverage = np.einsum("np,pq,nq->n", X, inv[0], X)
    resid = np.where(series.ok, (series.z - mu) / np.sqrt(phi_used * (series.v + leverage)), 0.0)
    expected = _expected_units(series, X, b, kept[0])
    return _Baseline(
        b,
        X,
        phi_used,
        _known_scale(series.kind, raw_phi),
        dof,
        leverage,
        mu,
        resid,
        expected,
        seasonal,
    )


def _pooled_phi(
    phi_base: np.ndarray, kept: np.ndarray, p: int, d: np.ndarray, v: np.ndarray, ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Noise variance per row: the baseline fit's, pooled with the one of the whole series'
    period-over-period differences (robust to a level shift, a slow trend and spikes, so the
    monitored periods sharpen the estimate without hiding a change). Returns ``(φ, dof)``;
    differences count for ⅔ of a degree of freedom each (they are correlated)."""
    dof_base = np.maximum(kept.sum(axis=1) - p, 0).astype(float)
    pair = ok[:, 1:] & ok[:, :-1]
    x = np.where(pair, (d[:, 1:] - d[:, :-1]) / np.sqrt(v[:, 1:] + v[:, :-1]), np.nan)
    usable = pair.sum(axis=1) >= 4
    phi_diff = np.zeros(len(d))
    dof_diff = np.zeros(len(d))
    if usable.any():
        xs = x[usable]
        med = np.nanmedian(xs, axis=1, keepdims=True)
        scale = 1.4826 * np.nanmedian(np.abs(xs - med), axis=1, keepdims=True)
        keep = np.isfinite(xs) & (np.abs(xs - med) <= OUTLIER * np.maximum(scale, 1e-12))
        count = keep.sum(axis=1)
        mean = np.where(keep, xs, 0.0).sum(axis=1) / np.maximum(count, 1)
        phi_diff[usable] = np.where(keep, (xs - mean[:, None]) ** 2, 0.0).sum(axis=1) / np.maximum(
            count - 1, 1
        )
        dof_diff[usable] = np.maximum(count - 1, 0) / 1.5
    dof = dof_base + dof_diff
    pooled = (dof_base * phi_base + dof_diff * phi_diff) / np.maximum(dof, 1e-12)
    return np.where(dof > 0, pooled, phi_base), dof


def _seasonal(
    series: _Series,
    b: int,
    X: np.ndarray,
    w: np.ndarray,
    beta: np.ndarray,
    phi: float,
    kept: np.ndarray,
) -> bool:
    """F-test of the phase offsets on the baseline (level ``SEASON_ALPHA``); the noise variance is
    floored at the sampling one for counts and proportions."""
    wk = w[:b] * kept
    z = series.z[:b]
    rss1 = float(np.sum(wk * (z - X[:b] @ beta) ** 2))
    level = float(np.sum(wk * z) / max(np.sum(wk), 1e-12))
    rss0 = float(np.sum(wk * (z - level) ** 2))
    p = X.shape[1]
    dof = int(kept.sum()) - p
    if dof < 2:
        return False
    sigma2 = max(phi, 1.0) if series.kind != "level" else max(phi, 1e-12)
    stat = (rss0 - rss1) / (p - 1) / sigma2
    return bool(f_dist.sf(stat, p - 1, dof) < SEASON_ALPHA)


def _known_scale(kind: str, raw_phi: float) -> bool:
    """Whether the standardisation used the sampling variance itself (the floor bound)."""
    return kind != "level" and raw_phi <= 1.0


def _expected_units(series: _Series, X: np.ndarray, b: int, kept: np.ndarray) -> np.ndarray:
    """The baseline's expectation in the metric's units (pooled share per phase for proportions)."""
    if series.kind == "proportion":
        target = np.where(series.ok, series.metric, 0.0)[:b]
        w = np.where(series.ok, series.trials, 0.0)[:b] * kept
    else:
        target = np.where(series.ok, series.metric, 0.0)[:b]
        w = np.where(series.ok, 1.0 / series.v, 0.0)[:b] * kept
    Xb = X[:b]
    a = Xb.T @ (w[:, None] * Xb) + 1e-9 * np.eye(X.shape[1])
    beta = np.linalg.solve(a, Xb.T @ (w * target))
    out = X @ beta
    if series.kind == "count":
        return np.maximum(out, 0.0)
    return np.clip(out, 0.0, 1.0) if series.kind == "proportion" else np.clip(out, -1.0, 1.0)


# --- detectors ------------------------------------------------------------------------------


def _surges(series: _Series, base: _Baseline, alpha: float) -> list[Detection]:
    idx = np.flatnonzero(series.ok[base.b :]) + base.b
    if idx.size == 0:
        return []
    exact = np.array([_upper_tail(series, base, t) for t in idx])
    p = np.maximum(exact, student_t.sf(_raw_residual(series, base, idx), max(base.dof, 1.0)))
    p_adj = np.minimum(p * idx.size, 1.0)
    hits = idx[p_adj < alpha]
    out = []
    for run in _runs(hits):
        t0 = int(run[0])
        out.append(_detection(series, base, "surge", +1, t0, t0, float(p_adj[idx == t0][0])))
    return out


def _upper_tail(series: _Series, base: _Baseline, t: int) -> float:
    """P(a value at least as high as period ``t``'s) under the baseline, with overdispersion."""
    phi = base.phi
    if series.kind == "count":
        y, mu = series.values[t], max(base.expected[t], 1e-9)
        if phi <= 1.0 + 1e-9:
            return float(poisson.sf(y - 1, mu))
        r = mu / (phi - 1)
        return float(nbinom.sf(y - 1, r, r / (r + mu)))
    if series.kind == "proportion":
        y, n = series.values[t], int(series.trials[t])
        p = float(np.clip(base.expected[t], 1e-9, 1 - 1e-9))
        if phi <= 1.0 + 1e-9 or n <= 1:
            return float(binom.sf(y - 1, n, p))
        rho = min((phi - 1) / (n - 1), 0.999)
        ab = 1 / rho - 1
        return float(betabinom.sf(y - 1, n, p * ab, (1 - p) * ab))
    return float(norm.sf(base.resid[t]))


def _raw_residual(series: _Series, base: _Baseline, idx: np.ndarray) -> np.ndarray:
    """Residuals in the metric's own units over their predictive SD: ``φ`` times the sampling
    variance at the expected value plus the uncertainty of that expectation."""
    expected = base.expected[idx]
    if series.kind == "count":
        mu = np.maximum(expected, 1e-9)
        var = mu * (1 + base.leverage[idx])
    elif series.kind == "proportion":
        pq = np.clip(expected * (1 - expected), 1e-9, None)
        var = pq / series.trials[idx] + 4 * pq * base.leverage[idx]
    else:
        var = series.v[idx] + base.leverage[idx]
    return (series.metric[idx] - expected) / np.sqrt(base.phi * var)


def _isolated(series: _Series, base: _Baseline, surges: list[Detection]) -> np.ndarray:
    """Periods of surges of at most two periods that the next period shows to be over."""
    mask = np.zeros(len(series.z), dtype=bool)
    flagged = {d.onset for d in surges}
    for d in surges:
        run = [d.onset]
        while run[-1] + 1 < len(series.z) and (
            run[-1] + 1 in flagged or _surging(series, base, run[-1] + 1)
        ):
            run.append(run[-1] + 1)
        after = run[-1] + 1
        if (
            len(run) <= 2
            and after < len(series.z)
            and series.ok[after]
            and base.resid[after] < BACK
        ):
            mask[run] = True
    return mask


def _surging(series: _Series, base: _Baseline, t: int) -> bool:
    return bool(series.ok[t] and base.resid[t] >= CLIP)


def _breach(
    series: _Series, base: _Baseline, alpha: float, k: int, season: int | None, seed: int
) -> list[Detection]:
    b, n = base.b, len(series.z)
    history = series.values[:b]
    trials = series.trials[:b] if series.kind == "proportion" else None
    if series.kind == "proportion":
        history = np.where(series.ok[:b], history, 0.0)
        trials = np.where(series.ok[:b], trials, 0.0)
    fc = forecast(
        history, n - b, kind=series.kind, trials=trials, alpha=alpha, seed=seed, season=season
    )
    observed = series.metric[b:]
    side = np.where(observed > fc.upper, 1, np.where(observed < fc.lower, -1, 0))
    side[~series.ok[b:]] = 0
    z = norm.ppf(1 - alpha / 2)
    sd = np.maximum((fc.upper - fc.lower) / (2 * z), 1e-12)
    point_p = 2 * norm.sf(np.abs(np.nan_to_num(observed) - fc.mean) / sd)
    windows = max(int(series.ok[b:].sum()) - k + 1, 1)
    streak = 0
    for i, s in enumerate(side):
        streak = (
            streak + 1 if s != 0 and (streak == 0 or side[i - 1] == s) else (1 if s != 0 else 0)
        )
        if streak >= k:
            onset = i - k + 1
            p = min(1.0, windows * float(np.prod(point_p[onset : i + 1])))
            return [_detection(series, base, "interval_breach", int(s), b + onset, b + i, p)]
    return []


def _level_shift(
    series: _Series, base: _Baseline, alpha: float, isolated: np.ndarray, seed: int
) -> Detection | None:
    b, n = base.b, len(series.z)
    r = np.clip(np.where(isolated | ~series.ok, 0.0, base.resid), -CLIP, CLIP)[b:]
    up, down = _cusum(r[None, :])
    null_cusum, null_scan = _cusum_null(n, b, _season_of(base.design), base.known, seed)
    h = float(np.quantile(null_cusum, 1 - alpha))
    over = np.flatnonzero(np.maximum(up[0], down[0]) >= h)
    if over.size == 0:
        return None
    t = int(over[0])
    stat, direction = (up[0], 1) if up[0, t] >= down[0, t] else (down[0], -1)
    zeros = np.flatnonzero(stat[:t] == 0)
    onset = int(zeros[-1]) + 1 if zeros.size else 0
    valid = series.ok[b:] & ~isolated[b:]
    p = _p_value(null_scan, float(_scan(r[None, :], valid[None, :])[0]))
    return _detection(series, base, "level_shift", direction, b + onset, b + t, p)


def _scan(r: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Largest ``|Σ_{t ≥ τ} r_t| / √(periods from τ)`` over the start ``τ`` of every row: the
    evidence, on all the data to date, that the level moved somewhere in the monitored part."""
    tail_sum = np.cumsum(r[:, ::-1], axis=1)[:, ::-1]
    tail_len = np.cumsum(valid[:, ::-1], axis=1)[:, ::-1]
    z = np.where(tail_len > 0, np.abs(tail_sum) / np.sqrt(np.maximum(tail_len, 1)), 0.0)
    return z.max(axis=1)


def _p_value(null: np.ndarray, x: float) -> float:
    """Share of the sorted simulated null maxima at or above ``x``. Past the last 20 of them an
    exponential tail fitted to the top 5 % (a generalised Pareto tail of shape 0, conservative
    for the lighter Gaussian-type tails here) takes over, so strong evidence is not floored at
    ``1 / (NULL_DRAWS + 1)``."""
    m = null.size
    above = m - int(np.searchsorted(null, x, side="left"))
    empirical = (above + 1) / (m + 1)
    if above >= 20:
        return empirical
    u = float(null[int(0.95 * m)])
    scale = float(np.mean(null[null > u] - u)) if np.any(null > u) else 0.0
    if scale <= 0:
        return empirical
    return float(min(empirical, 0.05 * np.exp(-(x - u) / scale)))


def _cusum(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided CUSUM paths of every row of ``r`` (reference value ``KREF``)."""
    up = np.zeros_like(r)
    down = np.zeros_like(r)
    s_up = np.zeros(r.shape[0])
    s_down = np.zeros(r.shape[0])
    for i in range(r.shape[1]):
        s_up = np.maximum(0.0, s_up + r[:, i] - KREF)
        s_down = np.maximum(0.0, s_down - r[:, i] - KREF)
        up[:, i], down[:, i] = s_up, s_down
    return up, down


def _season_of(design: np.ndarray) -> int:
    """The season length the baseline design models (0 for a level only)."""
    return design.shape[1] if design.shape[1] > 1 else 0


@lru_cache(maxsize=1024)
def _cusum_null(
    n: int, b: int, season: int, known: bool, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Largest two-sided CUSUM value and largest scan statistic over the monitored periods of
    Gaussian series (each sorted), with the baseline's level (and phases) estimated as for real
    series, and the noise variance either known (``known``: the binomial/Poisson floor bound)
    or estimated the same way."""
    rng = np.random.default_rng([seed, n, b, season, int(known), 1])
    X = _design(n, b, season or None)
    Z = rng.standard_normal((NULL_DRAWS, n))
    W = np.ones((NULL_DRAWS, b))
    beta, phi, inv, kept = _robust_fit(Z[:, :b], W, X[:b])
    if known:
        phi = np.ones(NULL_DRAWS)
    else:
        seasonal = beta @ X.T - beta[:, :1]
        phi, _ = _pooled_phi(
            phi, kept, X.shape[1], Z - seasonal, np.ones_like(Z), np.ones(Z.shape, dtype=bool)
        )
        phi = np.maximum(phi, 1e-12)
    leverage = np.einsum("np,spq,nq->sn", X[b:], inv, X[b:])
    r = (Z[:, b:] - beta @ X[b:].T) / np.sqrt(phi[:, None] * (1 + leverage))
    clipped = np.clip(r, -CLIP, CLIP)
    up, down = _cusum(clipped)
    scan = _scan(clipped, np.ones(clipped.shape, dtype=bool))
    return np.sort(np.maximum(up, down).max(axis=1)), np.sort(scan)


def _trend_change(
    series: _Series, base: _Baseline, alpha: float, isolated: np.ndarray, seed: int
) -> Detection | None:
    b, n = base.b, len(series.z)
    d = series.z - base.seasonal
    w = np.where(series.ok & ~isolated, 1.0 / series.v, 0.0)
    floor = 1.0 if series.kind != "level" else 0.0
    stat, sign, tau = _hinge_scan(d[None, :], w[None, :], floor)
    sustained = np.minimum(stat[0, b - 1 : -1], stat[0, b:])
    same = sign[0, b - 1 : -1] == sign[0, b:]
    null = _trend_null(n, b, seed)
    h = float(np.quantile(null, 1 - alpha))
    hits = np.flatnonzero((sustained >= h) & same)
    if hits.size == 0:
        return None
    t = b + int(hits[0])
    peak = float(np.max(np.where(same, sustained, 0.0)))
    p = _p_value(null, peak)
    onset = min(int(tau[0, t]) + 1, t)
    return _detection(series, base, "trend_change", int(sign[0, t]), onset, t, p)


def _hinges(n: int) -> np.ndarray:
    return np.arange(0, max(n - MIN_AFTER, 1), max(1, n // MAX_HINGES))


def _hinge_scan(d: np.ndarray, w: np.ndarray, floor: float):
    """For every row and every end period ``T``: the largest ``|t|`` of the hinge slope over the
    hinges ``τ`` (data up to ``T``), its sign and its ``τ``. Rows: series; columns: ``T``."""
    n = d.shape[1]
    taus = _hinges(n)
    x = np.maximum(np.arange(n)[None, :] - taus[:, None], 0).astype(float)  # K × n
    present = (w > 0).astype(float)
    sw = np.cumsum(w, axis=1)[:, None, :]
    swd = np.cumsum(w * d, axis=1)[:, None, :]
    swdd = np.cumsum(w * d * d, axis=1)[:, None, :]
    count = np.cumsum(present, axis=1)[:, None, :]
    wx = w[:, None, :] * x[None]
    swx = np.cumsum(wx, axis=2)
    swxx = np.cumsum(wx * x[None], axis=2)
    swxd = np.cumsum(wx * d[:, None, :], axis=2)
    after = np.cumsum(present[:, None, :] * (x[None] > 0), axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        safe_sw = np.where(sw > 0, sw, 1.0)
        var_x = swxx - swx**2 / safe_sw
        cov = swxd - swx * swd / safe_sw
        var_d = swdd - swd**2 / safe_sw
        slope = cov / var_x
        rss = np.maximum(var_d - slope * cov, 0.0)
        sigma2 = np.maximum(rss / np.maximum(count - 2, 1), floor)
        tstat = slope / np.sqrt(sigma2 / var_x)
    valid = (after >= MIN_AFTER) & (var_x > 1e-12) & (count >= 4) & np.isfinite(tstat)
    tstat = np.where(valid, tstat, 0.0)
    best = np.argmax(np.abs(tstat), axis=1)  # S × n
    picked = np.take_along_axis(tstat, best[:, None, :], axis=1)[:, 0, :]
    return np.abs(picked), np.sign(picked).astype(int), taus[best]


@lru_cache(maxsize=512)
def _trend_null(n: int, b: int, seed: int) -> np.ndarray:
    """Largest two-period-sustained hinge statistic over the monitored periods, Gaussian series."""
    rng = np.random.default_rng([seed, n, b, 2])
    chunk = int(np.clip(_CELLS // (len(_hinges(n)) * n), 1, NULL_DRAWS))
    out = []
    for lo in range(0, NULL_DRAWS, chunk):
        size = min(chunk, NULL_DRAWS - lo)
        stat, _, _ = _hinge_scan(rng.standard_normal((size, n)), np.ones((size, n)), 0.0)
        out.append(np.minimum(stat[:, b - 1 : -1], stat[:, b:]).max(axis=1))
    return np.sort(np.concatenate(out))


def _arbitrate(
    series: _Series, base: _Baseline, isolated: np.ndarray, level: Detection, trend: Detection
) -> tuple[Detection | None, Detection | None]:
    """Keep the level shift or the trend change, whichever fits the whole series better."""
    t = np.arange(len(series.z))
    d = series.z - base.seasonal
    w = np.where(series.ok & ~isolated, 1.0 / series.v, 0.0)
    step = _rss(d, w, (t >= level.onset).astype(float))
    hinge = _rss(d, w, np.maximum(t - (trend.onset - 1), 0).astype(float))
    return (level, None) if step <= hinge else (None, trend)


def _rss(d: np.ndarray, w: np.ndarray, x: np.ndarray) -> float:
    X = np.column_stack([np.ones_like(x), x])
    a = X.T @ (w[:, None] * X) + 1e-9 * np.eye(2)
    beta = np.linalg.solve(a, X.T @ (w * d))
    return float(np.sum(w * (d - X @ beta) ** 2))


# --- reporting ------------------------------------------------------------------------------


def _runs(idx: np.ndarray) -> list[np.ndarray]:
    if idx.size == 0:
        return []
    return np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)


def _detection(
    series: _Series, base: _Baseline, kind: str, direction: int, onset: int, at: int, p: float
) -> Detection:
    span = slice(onset, at + 1)
    ok = series.ok[span]
    if series.kind == "proportion":
        n = series.trials[span][ok]
        observed = float(series.values[span][ok].sum() / n.sum())
        expected = float(np.dot(base.expected[span][ok], n) / n.sum())
    else:
        observed = float(np.mean(series.metric[span][ok]))
        expected = float(np.mean(base.expected[span][ok]))
    p = float(min(max(p, 0.0), 1.0))
    return Detection(
        kind,
        int(direction),
        int(onset),
        int(at),
        observed - expected,
        expected,
        observed,
        p,
        1.0 - p,
    )


def expected_band(
    periods: list, expected: float | None, *, trials=None, se=None, z: float = 1.959964
) -> list[dict]:
    """The band an alert is drawn against, computed once when it is detected and stored with it
    (the dashboard and the e-mail chart draw this, not their own): per period the expected value
    and ``expected ± z·sd``, with sd the binomial ``sqrt(p(1-p)/n)`` of a rate (``trials``: items
    per period) or the period's standard error (``se``: a gap). A period without items or without
    a standard error has no band (``None``)."""
    out = []
    for i, period in enumerate(periods):
        sd = None
        if expected is not None:
            if trials is not None and trials[i]:
                p = min(max(float(expected), 0.0), 1.0)
                sd = (p * (1 - p) / float(trials[i])) ** 0.5
            elif se is not None and se[i] is not None:
                sd = float(se[i])
        lo = hi = None
        if sd is not None:
            lo, hi = float(expected) - z * sd, float(expected) + z * sd
            if trials is not None:
                lo, hi = max(lo, 0.0), min(hi, 1.0)
        out.append(
            {
                "period": period.isoformat() if hasattr(period, "isoformat") else period,
                "expected": None if expected is None else round(float(expected), 6),
                "lower": None if lo is None else round(lo, 6),
                "upper": None if hi is None else round(hi, 6),
            }
        )
    return out
