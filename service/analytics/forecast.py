"""Forecasts with prediction intervals for one metric series (no database, no I/O).

``forecast(y, horizon, kind=..., trials=..., alpha=..., seed=..., season=...)`` returns a
``Forecast``: ``mean, lower, upper`` for the next ``horizon`` periods in the metric's own
units, the ``(1 − alpha)`` level, the model used and the criterion that chose it.

Scales. Every kind is modelled on a scale where additive Gaussian errors are reasonable and
mapped back afterwards:

- ``count`` (volumes): the counts themselves; mean and bounds are clipped at 0.
- ``level`` (e.g. mean sentiment in [−1, 1]): the values themselves, clipped to [−1, 1].
- ``proportion`` (``y`` successes out of ``trials``): the empirical logit
  ``log((y + ½) / (n − y + ½))``; periods with 0 trials are missing (interpolated for the
  fit, never read as 0 %). The interval is for the *observed* share at the expected number
  of trials ``n̄`` (mean of the last 8 periods with trials): the model's logit-scale
  variance is split into the part that the history's own binomial sampling explains and a
  latent part (state drift ``s²_h − s²_1``, extra-binomial noise ``max(s²_1 − v̄, 0)`` and
  the uncertainty of the level, at least one pooled-share standard error), and the bounds
  are quantiles of ``Binomial(n̄, expit(L)) / n̄`` with ``L`` normal over that latent
  variance, after undoing the small-``n`` pull of the empirical logit towards 0 (its
  expectation at ``n̄`` trials is inverted on a grid). A segment with 7 items a period
  therefore gets the wide, discrete interval its observed share really has.

Candidates (all additive-error, fitted by maximum likelihood), in order of complexity:

- ETS ``(A,N,N)``; SARIMAX ``(1,0,0)`` with a constant;
- from 12 points, ETS ``(A,Ad,N)`` (damped additive trend);
- with ``season`` and at least two full seasons plus 4 points, ETS ``(A,N,A)``;
- with ``season`` and three full seasons, SARIMAX ``(1,0,0)(1,0,0,season)``.

Selection (the documented criterion). With at least ``ROLLING_MIN`` (24) points:
rolling-origin one-step-ahead absolute error over the last ``m = clip(N // 4, 6, 12)``
origins. Each candidate is fitted once on the first ``N − m`` points and its parameters are
then run, unchanged, over the whole series, so each of the last ``m`` values is predicted
from the data before it only. Below 24 points there are too few origins to score, so AICc
of the candidates fitted on the whole series decides. Either way the *simplest* candidate
that is not clearly worse than the best wins: within one standard error of the paired
error differences (rolling origin) or within 2 AICc units. On short, noisy feedback series
an extra trend or seasonal term that wins by noise extrapolates confidently and breaks the
interval's coverage; this rule keeps it out unless the data ask for it. The winner is
(re)fitted on the whole series; ``criterion`` names the scores.

Intervals come from statsmodels: ETS ``get_prediction(...).summary_frame(alpha)`` (exact for
these additive models; statsmodels simulates otherwise, seeded with ``seed``) and SARIMAX
``get_forecast(h).summary_frame(alpha)``; ``_bounds`` hides their different column names.
Both ignore parameter estimation and use the biased-low ML noise variance, so the half-widths
are widened by ``√(N / (N − k))`` for the ``k`` estimated parameters (initial states
included).

Fallback (``naive-mean``): fewer than 8 points, a constant series, or every candidate
failing. The mean of the series with a Student-t prediction interval from the sample
standard deviation (``mean ± t · s · √(1 + 1/N)``); counts use at least Poisson variance
(``max(s², mean, 1/N)``), proportions the binomial mixture above, and a single ``level``
value gives the whole range [−1, 1]. An empty series raises ``ValueError``.

Convergence warnings are silenced inside each fit only. Results depend on nothing but the
inputs and ``seed``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binom, norm
from scipy.stats import t as student_t

KINDS = ("count", "proportion", "level")
MIN_MODEL_POINTS = 8
ROLLING_MIN = 24
RECENT_TRIALS = 8
_GRID = 48  # latent-share quadrature points for the proportion mixture


@dataclass(frozen=True)
class Forecast:
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    alpha: float
    model: str
    criterion: str

    def to_dict(self) -> dict:
        return {
            "mean": [float(v) for v in self.mean],
            "lower": [float(v) for v in self.lower],
            "upper": [float(v) for v in self.upper],
            "alpha": float(self.alpha),
            "model": self.model,
            "criterion": self.criterion,
        }


@dataclass(frozen=True)
class _Spec:
    """One candidate model: ETS (additive errors) or SARIMAX with a constant."""

    family: str  # "ets" | "sarimax"
    trend: bool = False
    season: int | None = None

    @property
    def name(self) -> str:
        if self.family == "ets":
            return f"ets(A,{'Ad' if self.trend else 'N'},{'A' if self.season else 'N'})"
        seasonal = f"(1,0,0,{self.season})" if self.season else ""
        return f"sarimax(1,0,0){seasonal}"

    def model(self, z: pd.Series):
        if self.family == "ets":
            from statsmodels.tsa.exponential_smoothing.ets import (
                ETSModel,  # slow to import (seconds): only when this analysis runs
            )

            return ETSModel(
                z,
                error="add",
                trend="add" if self.trend else None,
                damped_trend=self.trend,
                seasonal="add" if self.season else None,
                seasonal_periods=self.season,
            )
        from statsmodels.tsa.statespace.sarimax import (
            SARIMAX,  # slow to import (seconds): only when this analysis runs
        )

        seasonal = (1, 0, 0, self.season) if self.season else (0, 0, 0, 0)
        return SARIMAX(z, order=(1, 0, 0), seasonal_order=seasonal, trend="c")


@dataclass(frozen=True)
class _Prepared:
    """The series on its modelling scale, with what the back-transform needs."""

    z: np.ndarray  # modelling scale, gaps interpolated
    ok: np.ndarray  # periods that carry data
    trials_next: float  # expected trials per future period (proportions)
    sampling_var: float  # mean logit-scale binomial variance over the history (proportions)
    pooled_var: float  # logit-scale variance of the pooled share (proportions)

    @property
    def observed(self) -> int:
        return int(self.ok.sum())


def forecast(
    y,
    horizon: int,
    *,
    kind: str = "count",
    trials=None,
    alpha: float = 0.05,
    seed: int = 0,
    season: int | None = None,
) -> Forecast:
    """Forecast ``horizon`` periods of ``y`` with a ``(1 − alpha)`` prediction interval."""
    values, n_trials = _validate(y, horizon, kind, trials, alpha)
    prep = _prepare(values, kind, n_trials)
    if horizon == 0:
        empty = np.empty(0)
        return Forecast(empty, empty.copy(), empty.copy(), alpha, "none", "horizon 0")
    z = prep.z
    if prep.observed < MIN_MODEL_POINTS:
        return _fallback(prep, kind, horizon, alpha, f"fallback: {prep.observed} observed periods")
    if np.ptp(z) < 1e-12:
        return _fallback(prep, kind, horizon, alpha, "fallback: constant series")
    season = season if season and season >= 2 else None
    chosen = _select(z, _candidates(len(z), season))
    if chosen is None:
        return _fallback(prep, kind, horizon, alpha, "fallback: every candidate failed to fit")
    spec, res, criterion = chosen
    try:
        mean, lower, upper = _predict(spec, res, len(z), horizon, alpha, seed)
    except Exception:  # noqa: BLE001 - a model that cannot predict falls back, never crashes
        return _fallback(prep, kind, horizon, alpha, "fallback: prediction failed")
    if not (
        np.all(np.isfinite(mean)) and np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))
    ):
        return _fallback(prep, kind, horizon, alpha, "fallback: non-finite prediction")
    return _finish(prep, kind, mean, lower, upper, alpha, spec.name, criterion)


# --- input and scales -----------------------------------------------------------------------


def _validate(
    y, horizon: int, kind: str, trials, alpha: float
) -> tuple[np.ndarray, np.ndarray | None]:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    values = np.asarray(y, dtype=float).ravel()
    if values.size == 0:
        raise ValueError("cannot forecast an empty series: y has no values")
    if int(horizon) != horizon or horizon < 0:
        raise ValueError(f"horizon must be a non-negative integer, not {horizon!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), not {alpha!r}")
    if kind != "proportion":
        return values, None
    if trials is None:
        raise ValueError("kind='proportion' needs trials (the per-period totals)")
    n = np.asarray(trials, dtype=float).ravel()
    if n.shape != values.shape:
        raise ValueError(f"trials has {n.size} values but y has {values.size}")
    if np.any(n < 0) or np.any(values < 0) or np.any(values > n):
        raise ValueError("proportions need 0 <= y <= trials in every period")
    if not np.any(n > 0):
        raise ValueError("cannot forecast a proportion: no period has any trials")
    return values, n


def _prepare(values: np.ndarray, kind: str, trials: np.ndarray | None) -> _Prepared:
    if kind != "proportion":
        ok = np.isfinite(values)
        if not ok.any():
            raise ValueError("cannot forecast: y has no finite values")
        return _Prepared(_fill_gaps(values, ok), ok, 0.0, 0.0, 0.0)
    ok = trials > 0
    k, n = values[ok], trials[ok]
    raw = np.full(values.shape, np.nan)
    raw[ok] = np.log((k + 0.5) / (n - k + 0.5))
    n_next = float(np.mean(n[-RECENT_TRIALS:]))
    pooled = float(np.clip(k.sum() / n.sum(), 0.5 / n.sum(), 1 - 0.5 / n.sum()))
    sampling = float(np.mean([_logit_sampling_var(int(m), pooled) for m in n]))
    pooled_var = 1.0 / (n.sum() * pooled * (1 - pooled))
    return _Prepared(_fill_gaps(raw, ok), ok, n_next, sampling, pooled_var)


def _fill_gaps(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Linear interpolation inside, nearest value at the edges (for the fit only)."""
    if ok.all():
        return values.copy()
    idx = np.arange(values.size)
    return np.interp(idx, idx[ok], values[ok])


def _logit_sampling_var(n: int, p: float) -> float:
    """Variance of ``log((K + ½)/(n − K + ½))`` for ``K ~ Binomial(n, p)`` (exact up to n·p·q = 30)."""
    if n * p * (1 - p) >= 30:
        return 1.0 / (n * p * (1 - p))
    k = np.arange(n + 1)
    w = binom.pmf(k, n, p)
    x = np.log((k + 0.5) / (n - k + 0.5))
    m = float(np.dot(w, x))
    return float(np.dot(w, (x - m) ** 2))


# --- candidates and selection ---------------------------------------------------------------


def _candidates(n: int, season: int | None) -> list[_Spec]:
    """Candidates in order of complexity."""
    specs = [_Spec("ets"), _Spec("sarimax")]
    if n >= 12:
        specs.append(_Spec("ets", trend=True))
    if season and n >= 2 * season + 4:
        specs.append(_Spec("ets", season=season))
    if season and n >= 3 * season:
        specs.append(_Spec("sarimax", season=season))
    return specs


def _fit(spec: _Spec, z: np.ndarray):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spec.model(pd.Series(z)).fit(disp=False)


def _one_step_errors(spec: _Spec, z: np.ndarray, origins: int) -> np.ndarray:
    """Absolute one-step errors at the last ``origins`` points: fit on the points before them,
    then run those parameters, unchanged, over the whole series."""
    res = _fit(spec, z[:-origins])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec.family == "ets":
            full = spec.model(pd.Series(z)).smooth(res.params)
        else:
            full = res.apply(pd.Series(z))
    fitted = np.asarray(full.fittedvalues, dtype=float)[-origins:]
    return np.abs(z[-origins:] - fitted)


def _select(z: np.ndarray, specs: list[_Spec]):
    """``(spec, fitted results on the whole series, criterion text)`` or ``None``.

    ``specs`` are in order of complexity; the simplest candidate that is not clearly worse
    than the best wins (one standard error of the paired error differences for rolling
    origin, 2 AICc units otherwise).
    """
    n = len(z)
    fitted: dict[_Spec, object] = {}
    if n >= ROLLING_MIN:
        origins = int(np.clip(n // 4, 6, 12))
        errors: dict[_Spec, np.ndarray] = {}
        for spec in specs:
            try:
                e = _one_step_errors(spec, z, origins)
            except Exception:  # noqa: BLE001 - a candidate that cannot fit is skipped
                continue
            if np.all(np.isfinite(e)):
                errors[spec] = e
        if not errors:
            return None
        best = min(errors, key=lambda sp: float(errors[sp].mean()))
        order = [sp for sp in specs if sp in errors]

        def close(sp: _Spec) -> bool:
            diff = errors[sp] - errors[best]
            return float(diff.mean()) <= float(diff.std(ddof=1)) / math.sqrt(origins) + 1e-12

        ranking = " ".join(f"{sp.name} {errors[sp].mean():.4g}" for sp in order)
        label = (
            f"rolling-origin one-step MAE over the last {origins} origins ({ranking}); "
            f"simplest within one standard error of the best ({best.name})"
        )
    else:
        aicc: dict[_Spec, float] = {}
        for spec in specs:
            try:
                res = _fit(spec, z)
            except Exception:  # noqa: BLE001
                continue
            if math.isfinite(res.aicc):
                fitted[spec], aicc[spec] = res, float(res.aicc)
        if not aicc:
            return None
        best = min(aicc, key=aicc.get)
        order = [sp for sp in specs if sp in aicc]

        def close(sp: _Spec) -> bool:
            return aicc[sp] <= aicc[best] + 2.0

        ranking = " ".join(f"{sp.name} {aicc[sp]:.4g}" for sp in order)
        label = f"aicc ({ranking}); simplest within 2 of the best ({best.name})"
    for spec in [sp for sp in order if close(sp)] + [best]:
        try:
            res = fitted[spec] if spec in fitted else _fit(spec, z)
        except Exception:  # noqa: BLE001
            continue
        return spec, res, label
    return None


# --- prediction -----------------------------------------------------------------------------


def _bounds(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, lower, upper)`` from an ETS or a SARIMAX summary frame."""
    if "pi_lower" in frame:
        lo, hi = "pi_lower", "pi_upper"
    else:
        lo, hi = "mean_ci_lower", "mean_ci_upper"
    return (
        frame["mean"].to_numpy(dtype=float),
        frame[lo].to_numpy(dtype=float),
        frame[hi].to_numpy(dtype=float),
    )


def _predict(spec: _Spec, res, n: int, horizon: int, alpha: float, seed: int):
    """statsmodels' interval, widened by ``√(N / (N − k))`` for the ``k`` estimated parameters
    (initial states included): the maximum-likelihood noise variance ``SSE / N`` is biased low on
    short series and the intervals ignore estimation error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec.family == "ets":
            pred = res.get_prediction(start=n, end=n + horizon - 1, rng=np.random.default_rng(seed))
        else:
            pred = res.get_forecast(horizon)
        mean, lower, upper = _bounds(pred.summary_frame(alpha=alpha))
    k = len(np.asarray(res.params))
    widen = math.sqrt(n / (n - k)) if n - k >= 2 else math.sqrt(n / 2)
    return mean, mean - widen * (mean - lower), mean + widen * (upper - mean)


def _fallback(prep: _Prepared, kind: str, horizon: int, alpha: float, criterion: str) -> Forecast:
    z = prep.z[prep.ok]
    n = len(z)
    mean = float(np.mean(z))
    var = float(np.var(z, ddof=1)) if n >= 2 else 0.0
    quantile = (
        float(student_t.ppf(1 - alpha / 2, n - 1))
        if n >= 2 and var > 0
        else float(norm.ppf(1 - alpha / 2))
    )
    if kind == "count":
        floor = max(mean, 1.0 / n)
        if var < floor:
            var, quantile = floor, float(norm.ppf(1 - alpha / 2))
    if kind == "level" and n == 1:
        ones = np.ones(horizon)
        return Forecast(
            ones * float(np.clip(mean, -1, 1)), -ones, ones.copy(), alpha, "naive-mean", criterion
        )
    half = quantile * math.sqrt(var * (1 + 1 / n))
    means = np.full(horizon, mean)
    return _finish(prep, kind, means, means - half, means + half, alpha, "naive-mean", criterion)


def _finish(
    prep: _Prepared,
    kind: str,
    mean: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    alpha: float,
    model: str,
    criterion: str,
) -> Forecast:
    if kind == "count":
        mean, lower, upper = np.maximum(mean, 0), np.maximum(lower, 0), np.maximum(upper, 0)
    elif kind == "level":
        mean, lower, upper = np.clip(mean, -1, 1), np.clip(lower, -1, 1), np.clip(upper, -1, 1)
    else:
        mean, lower, upper = _observed_share(prep, mean, lower, upper, alpha)
    return Forecast(
        np.asarray(mean, dtype=float),
        np.asarray(lower, dtype=float),
        np.asarray(upper, dtype=float),
        float(alpha),
        model,
        criterion,
    )


def _observed_share(
    prep: _Prepared, mean: np.ndarray, lower: np.ndarray, upper: np.ndarray, alpha: float
):
    """Logit-scale forecast → share forecast with a binomial-mixture interval at ``n̄`` trials."""
    z = float(norm.ppf(1 - alpha / 2))
    total_var = ((upper - lower) / (2 * z)) ** 2
    first = float(total_var[0])
    latent = (
        (total_var - first)
        + max(first - prep.sampling_var, 0.0)
        + max(first / prep.observed, prep.pooled_var)
    )
    n = max(int(round(prep.trials_next)), 1)
    to_logit = _empirical_logit_inverse(n)
    out = np.empty((3, len(mean)))
    nodes = norm.ppf((np.arange(_GRID) + 0.5) / _GRID)
    for h in range(len(mean)):
        p = _expit(to_logit(mean[h] + math.sqrt(max(latent[h], 0.0)) * nodes))
        out[0, h] = float(p.mean())
        out[1, h] = _mixture_quantile(p, n, alpha / 2) / n
        out[2, h] = _mixture_quantile(p, n, 1 - alpha / 2) / n
    return np.clip(out[0], 0, 1), np.clip(out[1], 0, 1), np.clip(out[2], 0, 1)


def _empirical_logit_inverse(n: int):
    """Map an expected empirical logit at ``n`` trials back to the true logit of the share.

    ``E[log((K + ½)/(n − K + ½))]`` is pulled towards 0 at small ``n``; this inverts that
    expectation on a grid (identity once ``n`` is large enough for the pull to vanish).
    """
    if n >= 2000:
        return lambda x: np.asarray(x, dtype=float)
    grid = np.linspace(-10, 10, 401)
    k = np.arange(n + 1)
    pmf = binom.pmf(k[None, :], n, _expit(grid)[:, None])
    expected = pmf @ np.log((k + 0.5) / (n - k + 0.5))
    return lambda x: np.interp(x, expected, grid)


def _mixture_quantile(p: np.ndarray, n: int, q: float) -> int:
    """Smallest ``k`` with ``mean_j P(Binomial(n, p_j) ≤ k) ≥ q`` (bisection)."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if float(np.mean(binom.cdf(mid, n, p))) >= q:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
