"""Forecasts with intervals and shift detectors on synthetic series with known truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.analytics.forecast import Forecast, forecast
from service.analytics.shifts import Detection, detect

N = 50  # one length for most detector tests: the null simulations are cached per length


def poisson_series(seed: int, mean: float = 40.0, n: int = N) -> np.ndarray:
    return np.random.default_rng(seed).poisson(mean, n).astype(float)


def proportion_series(
    seed: int, p, trials: int | np.ndarray = 200, n: int = N
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_t = (
        np.full(n, trials, dtype=float) if np.isscalar(trials) else np.asarray(trials, dtype=float)
    )
    p_t = np.broadcast_to(np.asarray(p, dtype=float), (n,))
    return rng.binomial(n_t.astype(np.int64), p_t).astype(float), n_t


# --- forecast ------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("kind", ["count", "proportion", "level"])
def test_short_series_use_the_fallback_with_finite_intervals(length, kind):
    rng = np.random.default_rng(length)
    if kind == "count":
        y, trials = rng.poisson(12, length).astype(float), None
    elif kind == "proportion":
        trials = np.full(length, 9.0)
        y = rng.binomial(9, 0.4, length).astype(float)
    else:
        y, trials = rng.uniform(-0.5, 0.5, length), None
    fc = forecast(y, 4, kind=kind, trials=trials)
    assert fc.model == "naive-mean" and fc.criterion.startswith("fallback")
    for arr in (fc.mean, fc.lower, fc.upper):
        assert arr.shape == (4,) and np.all(np.isfinite(arr))
    assert np.all(fc.lower <= fc.mean + 1e-12) and np.all(fc.mean <= fc.upper + 1e-12)
    assert np.all(fc.upper > fc.lower)


def test_single_count_gets_at_least_poisson_uncertainty():
    fc = forecast([50], 2)
    assert fc.mean[0] == pytest.approx(50)
    assert (
        fc.lower[0] < 50 - 1.96 * np.sqrt(50) + 1e-9
        and fc.upper[0] > 50 + 1.96 * np.sqrt(50) - 1e-9
    )


def test_empty_series_raise_a_clear_value_error():
    with pytest.raises(ValueError, match="empty"):
        forecast([], 3)
    with pytest.raises(ValueError, match="empty"):
        detect([])
    with pytest.raises(ValueError, match="trials"):
        forecast([1, 2, 3], 2, kind="proportion")


@pytest.mark.parametrize("length", [1, 6, 30])
def test_all_zero_series_forecast_zero_and_detect_nothing(length):
    zeros = np.zeros(length)
    fc = forecast(zeros, 5)
    assert np.all(fc.mean == 0) and np.all(fc.lower == 0)
    assert np.all(np.isfinite(fc.upper)) and np.all(
        fc.upper <= 3 / np.sqrt(length)
    )  # less doubt, more zeros
    assert detect(zeros) == []
    assert detect(zeros, kind="proportion", trials=np.full(length, 10.0)) == []


def test_constant_series_do_not_crash():
    fc = forecast(np.full(30, 7.0), 3)
    assert fc.criterion == "fallback: constant series"
    assert fc.mean[0] == pytest.approx(7) and fc.lower[0] < 7 < fc.upper[0]
    assert detect(np.full(30, 7.0)) == []


def test_counts_are_never_forecast_below_zero():
    y = np.random.default_rng(3).poisson(0.8, 40).astype(float)
    fc = forecast(y, 10)
    assert np.all(fc.lower >= 0) and np.all(fc.mean >= 0)


@pytest.mark.parametrize("p,trials", [(0.02, 30), (0.5, 7), (0.97, 50), (0.3, 5000)])
def test_proportion_forecasts_stay_in_the_unit_interval(p, trials):
    y, n = proportion_series(11, p, trials, n=40)
    fc = forecast(y, 12, kind="proportion", trials=n)
    for arr in (fc.mean, fc.lower, fc.upper):
        assert np.all((arr >= 0) & (arr <= 1))
    assert np.all(fc.lower <= fc.mean) and np.all(fc.mean <= fc.upper)
    assert abs(fc.mean[0] - p) < max(0.1, 4 * np.sqrt(p * (1 - p) / trials))


def test_low_volume_proportion_interval_carries_the_sampling_noise():
    """At 7 trials a period the observed share moves in steps of 1/7: the interval must be wide."""
    y, n = proportion_series(5, 0.3, 7, n=40)
    fc = forecast(y, 4, kind="proportion", trials=n)
    assert fc.upper[0] - fc.lower[0] >= 4 / 7 - 1e-9
    big_y, big_n = proportion_series(5, 0.3, 5000, n=40)
    big = forecast(big_y, 4, kind="proportion", trials=big_n)
    assert big.upper[0] - big.lower[0] < 0.1


def test_periods_without_trials_are_missing_not_zero_percent():
    y, n = proportion_series(8, 0.4, 100, n=40)
    y[[5, 17, 30, 38]] = 0
    n[[5, 17, 30, 38]] = 0
    fc = forecast(y, 3, kind="proportion", trials=n)
    assert abs(fc.mean[0] - 0.4) < 0.08


def test_level_forecasts_are_clipped_to_the_sentiment_range():
    y = np.clip(0.95 + np.random.default_rng(2).normal(0, 0.05, 30), -1, 1)
    fc = forecast(y, 6, kind="level")
    assert np.all(fc.upper <= 1) and np.all(fc.lower >= -1)


def test_smaller_alpha_gives_a_wider_interval():
    y = poisson_series(21, n=36)
    wide = forecast(y, 6, alpha=0.01)
    narrow = forecast(y, 6, alpha=0.2)
    assert wide.model == narrow.model
    assert np.all(wide.upper - wide.lower > narrow.upper - narrow.lower)
    assert wide.alpha == 0.01 and narrow.alpha == 0.2


def test_forecast_is_deterministic_and_serialisable():
    y = poisson_series(4, n=45) + 10 * np.sin(np.arange(45) * 2 * np.pi / 7)
    a = forecast(y, 7, seed=3, season=7)
    b = forecast(y, 7, seed=3, season=7)
    assert a.to_dict() == b.to_dict()
    d = json.loads(json.dumps(a.to_dict()))
    assert (
        set(d) == {"mean", "lower", "upper", "alpha", "model", "criterion"} and len(d["mean"]) == 7
    )
    assert isinstance(a, Forecast)


def test_selection_criterion_is_rolling_origin_on_long_series_and_aicc_on_short_ones():
    assert forecast(poisson_series(1, n=40), 2).criterion.startswith("rolling-origin")
    assert forecast(poisson_series(1, n=15), 2).criterion.startswith("aicc")


def test_seasonal_model_is_chosen_when_the_season_is_strong():
    t = np.arange(56)
    y = np.random.default_rng(6).poisson(200 * (1 + 0.4 * (t % 7 >= 5))).astype(float)
    fc = forecast(y, 7, season=7)
    assert "7" in fc.model or "A)" in fc.model
    weekend = [i for i in range(7) if (56 + i) % 7 >= 5]
    weekday = [i for i in range(7) if (56 + i) % 7 < 5]
    assert fc.mean[weekend].min() > fc.mean[weekday].max()


def test_interval_coverage_is_honest_for_stable_counts():
    hits = []
    for seed in range(25):
        y = poisson_series(100 + seed, mean=30, n=40)
        fc = forecast(y[:30], 10)
        hits += list((y[30:] >= fc.lower) & (y[30:] <= fc.upper))
    assert 0.88 <= np.mean(hits) <= 0.995


# --- detect --------------------------------------------------------------------------------


def test_a_huge_spike_is_a_surge_not_a_lasting_level_shift():
    y = poisson_series(7)
    y[35] += 300
    dets = detect(y)
    surges = [d for d in dets if d.kind == "surge"]
    assert [d.onset for d in surges] == [35] and surges[0].detected_at == 35
    assert surges[0].direction == 1 and surges[0].magnitude > 200 and surges[0].confidence > 0.99
    assert not [d for d in dets if d.kind in ("level_shift", "trend_change", "interval_breach")]


def test_a_clear_level_shift_in_a_proportion_series_is_found_with_its_onset():
    onset = 32
    p = np.where(np.arange(N) >= onset, 0.42, 0.30)
    y, n = proportion_series(12, p, 150)
    dets = detect(y, kind="proportion", trials=n)
    shifts = [d for d in dets if d.kind == "level_shift"]
    assert len(shifts) == 1
    d = shifts[0]
    assert d.direction == 1 and abs(d.onset - onset) <= 1 and onset <= d.detected_at <= onset + 3
    assert 0.05 < d.magnitude < 0.2 and d.baseline == pytest.approx(0.30, abs=0.04)
    assert d.p_value < 0.01 and d.confidence == pytest.approx(1 - d.p_value)
    assert not [x for x in dets if x.detected_at < onset]


def test_a_downward_level_shift_in_counts():
    y = poisson_series(13, mean=100)
    y[30:] = np.random.default_rng(14).poisson(65, N - 30)
    dets = detect(y)
    assert any(
        d.kind == "level_shift" and d.direction == -1 and abs(d.onset - 30) <= 1 for d in dets
    )
    assert not [d for d in dets if d.direction == 1]


def test_low_volume_proportions_without_change_rarely_alert():
    fired = 0
    for seed in range(50):
        y, n = proportion_series(1000 + seed, 0.3, 7)
        fired += bool(detect(y, kind="proportion", trials=n))
    assert fired <= 2  # at most 5 % of 50 series


def test_zero_trial_periods_are_not_a_drop():
    y, n = proportion_series(15, 0.35, 60)
    n[[30, 31, 40, 44, 47]] = 0
    y[[30, 31, 40, 44, 47]] = 0
    assert detect(y, kind="proportion", trials=n) == []


def test_a_slow_steady_trend_is_a_trend_not_a_level_shift():
    t = np.arange(N)
    y = np.random.default_rng(16).poisson(100 + 1.2 * t).astype(float)
    dets = detect(y)
    kinds = {d.kind for d in dets}
    assert "trend_change" in kinds and "level_shift" not in kinds
    trend = next(d for d in dets if d.kind == "trend_change")
    assert trend.direction == 1 and trend.onset < 20


def test_a_change_of_slope_is_found_after_its_start():
    t = np.arange(N)
    y = np.random.default_rng(17).poisson(200 + 6.0 * np.maximum(t - 34, 0)).astype(float)
    dets = detect(y, detectors=("trend_change",))
    assert len(dets) == 1 and dets[0].kind == "trend_change" and dets[0].direction == 1
    assert 30 <= dets[0].onset <= 38 and dets[0].detected_at >= 34


def test_weekly_seasonality_is_not_a_shift():
    t = np.arange(56)
    y = np.random.default_rng(18).poisson(300 * (1 - 0.35 * (t % 7 >= 5))).astype(float)
    assert detect(y, season=7) == []


def test_too_little_data_gives_nothing():
    assert detect([5, 9, 4, 30, 6]) == []
    assert detect(poisson_series(1, n=12), min_history=12) == []


def test_detect_is_deterministic_and_serialisable():
    y = poisson_series(19)
    y[30:] += 25
    a = detect(y, seed=5)
    b = detect(y, seed=5)
    assert a == b and a
    for d in a:
        assert isinstance(d, Detection)
        out = json.loads(json.dumps(d.to_dict()))
        assert set(out) == {
            "kind",
            "direction",
            "onset",
            "detected_at",
            "magnitude",
            "baseline",
            "observed",
            "p_value",
            "confidence",
        }


def test_detector_selection_and_validation():
    y = poisson_series(20)
    y[30:] += 30
    only = detect(y, detectors=("level_shift",))
    assert only and {d.kind for d in only} == {"level_shift"}
    with pytest.raises(ValueError, match="unknown detectors"):
        detect(y, detectors=("cusum",))
    with pytest.raises(ValueError, match="trials"):
        detect(y, kind="proportion")
