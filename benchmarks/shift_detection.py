"""Shift detection and forecast intervals on a seeded synthetic suite: Radar vs a naive rule.

    python benchmarks/shift_detection.py [--series 400] [--seed 0]

The suite. Each series is 40–80 periods long, half daily (weekly seasonality, ``season=7``
passed to the detectors) and half weekly; half are counts (mean volume 5–5,000 per period,
log-uniform, Poisson or negative-binomial noise with overdispersion 1, 1.5 or 3) and half
proportions (successes out of Poisson(volume) trials, volume 5–5,000, base share 8–60 %,
binomial or beta-binomial noise with the same overdispersion factors; periods that draw 0
trials are missing). 40 % carry no change; the rest carry one of

- a level shift (30 %) of 1, 2, 3 or 5 noise SDs, up or down, starting at period ≥ 22;
- a trend change (15 %): a ramp that reaches 1, 2, 3 or 5 SDs 8 periods after its onset and
  keeps rising to the end (onset 8–16 periods before the end);
- a single spike (15 %) of 1, 2, 3 or 5 SDs above the expected value.

The noise SD is that of one period at the base level: ``√(φ·μ)`` for counts,
``√(φ·p(1−p)/n)`` for proportions. A proportion change that would leave [0.02, 0.97] is
turned around (never a spike), or its series given the volume that makes it fit (so big
proportion changes sit at higher volumes).

Scoring. A detection *matches* a change when it points the same way and is detected at or
after the change's onset (spikes: at the spike or the next period); everything else is a
false detection. Precision = matching detections / detections; recall = changes with a
matching detection / changes; delay = first matching ``detected_at`` − onset. Per detector,
recall counts the change types it is meant for (interval_breach: level and trend,
level_shift: level, trend_change: trend, surge: spike). False-alert rate = share of series
without a change on which anything fires. Forecast coverage: ``forecast()`` (alpha 0.05) is
fitted on the same history the detectors use as baseline (20–21 periods: AICc selection), and
again on the first 60 % of the series (24–48 periods: rolling-origin selection), and scored
on every later observed value of the series without a change.

The naive baseline flags period ``t`` (after the same history) when the period-over-period
change ``|m_t − m_{t−1}|`` of the metric (count, or share) exceeds 3× the median absolute
period-over-period change of the history; consecutive flags form one alarm.

Targets: recall ≥ 0.90 and median delay ≤ 2 periods for level shifts of ≥ 3 SD, false-alert
rate ≤ 5 %, F1 above the baseline's, coverage within 0.90–0.98; the median delay over every
detected change (small shifts and slow trends included) is reported against ≤ 2 as well.

Prints one JSON object (Radar, the baseline and the targets side by side); progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from service.analytics.forecast import forecast  # noqa: E402
from service.analytics.shifts import DETECTORS, detect  # noqa: E402

SIZES = (1, 2, 3, 5)
PHIS = (1.0, 1.5, 3.0)
BANDS = ((5, 50, "5-50"), (50, 500, "50-500"), (500, 5001, "500-5000"))
TYPES = ("none", "level", "trend", "spike")
TYPE_P = (0.40, 0.30, 0.15, 0.15)
TARGET_TYPES = {
    "interval_breach": ("level", "trend"),
    "level_shift": ("level",),
    "trend_change": ("trend",),
    "surge": ("spike",),
}
WEEK = np.array([0.10, 0.05, 0.0, 0.0, 0.05, -0.15, -0.05])
RAMP = 8  # periods for a trend change to reach its size
TARGETS = {
    "recall_level_shift_ge_3sd": ">= 0.90",
    "false_alert_rate": "<= 0.05",
    "median_delay_level_shift_ge_3sd": "<= 2",
    "median_delay_all_detected_changes": "<= 2",
    "f1": "> baseline",
    "coverage_95": "0.90 - 0.98 (both fits)",
}


@dataclass
class Case:
    kind: str
    season: int | None
    volume: float
    phi: float
    y: np.ndarray
    trials: np.ndarray | None
    change: str = "none"
    size: int = 0
    direction: int = 0
    onset: int = -1
    history: int = 0
    extra: dict = field(default_factory=dict)


def history_length(n: int, season: int | None, min_history: int = 8) -> int:
    """The baseline the detectors use by default (documented in service/analytics/shifts.py)."""
    cap = max(20, 3 * season) if season else 20
    return max(min_history, min(n // 2, cap))


def make_case(rng: np.random.Generator) -> Case:
    kind = "count" if rng.random() < 0.5 else "proportion"
    season = 7 if rng.random() < 0.5 else None
    n = int(rng.integers(40, 81))
    volume = float(math.exp(rng.uniform(math.log(5), math.log(5000))))
    phi = float(rng.choice(PHIS))
    change = str(rng.choice(TYPES, p=TYPE_P))
    size = int(rng.choice(SIZES)) if change != "none" else 0
    direction = 1 if change == "spike" else int(rng.choice((-1, 1))) if change != "none" else 0
    if change == "trend":
        onset = int(rng.integers(max(22, n - 16), n - 7))
    elif change != "none":
        onset = int(rng.integers(22, n - 7))
    else:
        onset = -1
    t = np.arange(n)
    amp = rng.uniform(0.3, 1.0) if season else 0.0
    pattern = amp * WEEK[t % 7] if season else np.zeros(n)
    reach = 1.0
    if change == "level":
        shape = (t >= onset).astype(float)
    elif change == "trend":
        shape = np.maximum(t - onset + 1, 0) / RAMP
        reach = (n - onset) / RAMP
    elif change == "spike":
        shape = (t == onset).astype(float)
    else:
        shape = np.zeros(n)
    if kind == "count":
        sd = math.sqrt(phi * volume)
        if direction < 0 and volume - size * sd * reach < 0.3 * volume:
            direction = 1
        mu = np.maximum(volume * (1 + pattern) + direction * size * sd * shape, 0.05)
        y = _overdispersed_counts(rng, mu, phi).astype(float)
        trials = None
    else:
        p0 = float(rng.uniform(0.08, 0.6))
        need = size * reach
        room_up, room_down = 0.97 - p0, p0 - 0.02
        sd = math.sqrt(phi * p0 * (1 - p0) / volume)
        if direction != 0:
            if change != "spike" and direction > 0 and need * sd > room_up and room_down > room_up:
                direction = -1
            elif direction < 0 and need * sd > room_down and room_up > room_down:
                direction = 1
            room = room_up if direction > 0 else room_down
            if need * sd > room:
                volume = phi * p0 * (1 - p0) * (need / room) ** 2 * 1.05
                sd = math.sqrt(phi * p0 * (1 - p0) / volume)
        logit = math.log(p0 / (1 - p0)) + 0.6 * pattern
        p = np.clip(1 / (1 + np.exp(-logit)) + direction * size * sd * shape, 0.005, 0.995)
        trials = rng.poisson(volume, n).astype(float)
        y = _overdispersed_successes(rng, trials, p, phi, volume).astype(float)
    return Case(
        kind,
        season,
        volume,
        phi,
        y,
        trials,
        change,
        size,
        direction,
        onset,
        history_length(n, season),
    )


def _overdispersed_counts(rng: np.random.Generator, mu: np.ndarray, phi: float) -> np.ndarray:
    if phi <= 1:
        return rng.poisson(mu)
    shape = mu / (phi - 1)
    return rng.poisson(rng.gamma(shape, phi - 1))


def _overdispersed_successes(
    rng, trials: np.ndarray, p: np.ndarray, phi: float, volume: float
) -> np.ndarray:
    if phi <= 1 or volume <= 2:
        return rng.binomial(trials.astype(np.int64), p)
    rho = min((phi - 1) / (volume - 1), 0.9)
    ab = 1 / rho - 1
    latent = rng.beta(p * ab, (1 - p) * ab)
    return rng.binomial(trials.astype(np.int64), latent)


def metric(case: Case) -> np.ndarray:
    if case.kind == "count":
        return case.y
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(case.trials > 0, case.y / np.where(case.trials > 0, case.trials, 1), np.nan)


def naive(case: Case) -> list[dict]:
    """Alarms of the fixed-threshold rule on period-over-period change."""
    m = metric(case)
    b = case.history
    hist = np.diff(m[:b])
    hist = np.abs(hist[np.isfinite(hist)])
    threshold = 3 * float(np.median(hist)) if hist.size else 0.0
    alarms, last = [], None
    prev = None
    for t in range(len(m)):
        if not np.isfinite(m[t]):
            continue
        if t >= b and prev is not None and abs(m[t] - m[prev]) > threshold:
            if last is None or last != prev:
                alarms.append(
                    {
                        "kind": "naive",
                        "direction": int(np.sign(m[t] - m[prev])),
                        "onset": t,
                        "detected_at": t,
                    }
                )
            last = t
        prev = t
    return alarms


def matches(case: Case, det: dict) -> bool:
    if case.change == "none" or det["direction"] != case.direction:
        return False
    last = case.onset + 1 if case.change == "spike" else len(case.y) - 1
    return case.onset <= det["detected_at"] <= last


def band(volume: float) -> str:
    return (
        next(label for lo, hi, label in BANDS if lo <= volume < hi)
        if volume < 5001
        else BANDS[-1][2]
    )


def prf(tp: int, detections: int, found: int, changes: int) -> dict:
    precision = tp / detections if detections else None
    recall = found / changes if changes else None
    f1 = (2 * precision * recall / (precision + recall)) if precision and recall else 0.0
    return {
        "precision": _r(precision),
        "recall": _r(recall),
        "f1": _r(f1),
        "detections": detections,
        "changes": changes,
    }


def _r(x, nd: int = 4):
    return None if x is None else round(float(x), nd)


def _median(xs):
    return _r(statistics.median(xs), 2) if xs else None


def score(cases: list[Case], results: list[list[dict]], kinds: tuple[str, ...]) -> dict:
    """Precision/recall/F1 overall and per detector kind, recall and delay by size/volume/type."""
    tp = det = 0
    found_delay: list[tuple[Case, int | None]] = []
    per = {k: {"tp": 0, "det": 0, "found": 0, "changes": 0} for k in kinds}
    false_series = clean = 0
    for case, dets in zip(cases, results):
        det += len(dets)
        good = [d for d in dets if matches(case, d)]
        tp += len(good)
        for k in kinds:
            mine = [d for d in dets if d["kind"] == k]
            per[k]["det"] += len(mine)
            per[k]["tp"] += sum(matches(case, d) for d in mine)
            if case.change in TARGET_TYPES.get(k, TYPES[1:]):
                per[k]["changes"] += 1
                per[k]["found"] += any(matches(case, d) for d in mine)
        if case.change == "none":
            clean += 1
            false_series += bool(dets)
        else:
            found_delay.append(
                (case, min((d["detected_at"] - case.onset for d in good), default=None))
            )
    changes = len(found_delay)
    found = sum(d is not None for _, d in found_delay)
    out = {
        "overall": prf(tp, det, found, changes),
        "false_alert_rate": _r(false_series / clean if clean else None),
        "series_without_change": clean,
        "median_delay": _median([d for _, d in found_delay if d is not None]),
        "per_detector": {
            k: prf(v["tp"], v["det"], v["found"], v["changes"]) for k, v in per.items()
        },
    }
    out["by_type_and_size"] = _groups(found_delay, lambda c: f"{c.change} {c.size}sd")
    out["by_size"] = _groups(found_delay, lambda c: f"{c.size}sd")
    out["by_volume"] = _groups(found_delay, lambda c: band(c.volume))
    out["by_type"] = _groups(found_delay, lambda c: c.change)
    level3 = [d for c, d in found_delay if c.change == "level" and c.size >= 3]
    all3 = [d for c, d in found_delay if c.size >= 3]
    out["recall_level_shift_ge_3sd"] = (
        _r(sum(d is not None for d in level3) / len(level3)) if level3 else None
    )
    out["recall_all_changes_ge_3sd"] = (
        _r(sum(d is not None for d in all3) / len(all3)) if all3 else None
    )
    out["median_delay_level_shift_ge_3sd"] = _median([d for d in level3 if d is not None])
    return out


def _groups(found_delay, key) -> dict:
    groups: dict[str, list] = {}
    for case, d in found_delay:
        groups.setdefault(key(case), []).append(d)
    return {
        g: {
            "n": len(ds),
            "recall": _r(sum(d is not None for d in ds) / len(ds)),
            "median_delay": _median([d for d in ds if d is not None]),
        }
        for g, ds in sorted(groups.items())
    }


def onset_errors(cases: list[Case], results: list[list[dict]]) -> dict:
    errs = [abs(d["onset"] - c.onset) for c, ds in zip(cases, results) for d in ds if matches(c, d)]
    return {
        "median_abs_onset_error": _median(errs),
        "share_within_1": _r(sum(e <= 1 for e in errs) / len(errs)) if errs else None,
    }


def coverage(cases: list[Case], seed: int, share: float | None = None) -> dict:
    """Empirical coverage of the 95 % interval over the rest of each series without a change,
    fitted on the detectors' history (``share=None``) or on the first ``share`` of the series."""
    hits: dict[str, list[int]] = {"all": [], "count": [], "proportion": [], "first_4": []}
    for b_label in (b for _, _, b in BANDS):
        hits[b_label] = []
    models: dict[str, int] = {}
    for case in cases:
        if case.change != "none":
            continue
        n = len(case.y)
        b = case.history if share is None else int(share * n)
        trials = case.trials[:b] if case.trials is not None else None
        fc = forecast(
            case.y[:b],
            n - b,
            kind=case.kind,
            trials=trials,
            alpha=0.05,
            seed=seed,
            season=case.season,
        )
        models[fc.model] = models.get(fc.model, 0) + 1
        m = metric(case)[b:]
        ok = np.isfinite(m)
        inside = ((m >= fc.lower - 1e-12) & (m <= fc.upper + 1e-12))[ok].astype(int).tolist()
        hits["all"] += inside
        hits[case.kind] += inside
        hits[band(case.volume)] += inside
        hits["first_4"] += (
            ((m >= fc.lower - 1e-12) & (m <= fc.upper + 1e-12))[:4][ok[:4]].astype(int).tolist()
        )
    out = {
        k: {"coverage": _r(np.mean(v)) if v else None, "points": len(v)} for k, v in hits.items()
    }
    out["models"] = dict(sorted(models.items()))
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--k", type=int, default=2)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    cases = [make_case(rng) for _ in range(args.series)]
    t0 = time.perf_counter()
    radar, base = [], []
    for i, case in enumerate(cases):
        dets = detect(
            case.y,
            kind=case.kind,
            trials=case.trials,
            alpha=args.alpha,
            k=args.k,
            season=case.season,
            seed=args.seed,
        )
        radar.append([d.to_dict() for d in dets])
        base.append(naive(case))
        if (i + 1) % 50 == 0:
            print(f"{i + 1}/{len(cases)} series, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    detect_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    cov = {
        "fit_on_history": coverage(cases, args.seed),
        "fit_on_first_60pct": coverage(cases, args.seed, 0.6),
    }
    cover_s = time.perf_counter() - t1
    r, nb = score(cases, radar, DETECTORS), score(cases, base, ("naive",))
    r["onset"] = onset_errors(cases, radar)
    nb["onset"] = onset_errors(cases, base)
    met = {
        "recall_level_shift_ge_3sd": (r["recall_level_shift_ge_3sd"] or 0) >= 0.90,
        "false_alert_rate": (r["false_alert_rate"] or 0) <= 0.05,
        "median_delay_level_shift_ge_3sd": (
            r["median_delay_level_shift_ge_3sd"] is not None
            and r["median_delay_level_shift_ge_3sd"] <= 2
        ),
        "median_delay_all_detected_changes": r["median_delay"] is not None
        and r["median_delay"] <= 2,
        "f1": r["overall"]["f1"] > nb["overall"]["f1"],
        "coverage_95": all(0.90 <= (c["all"]["coverage"] or 0) <= 0.98 for c in cov.values()),
    }
    out = {
        "suite": {
            "series": len(cases),
            "seed": args.seed,
            "alpha": args.alpha,
            "k": args.k,
            "by_change": {t: sum(c.change == t for c in cases) for t in TYPES},
            "by_kind": {k: sum(c.kind == k for c in cases) for k in ("count", "proportion")},
        },
        "targets": TARGETS,
        "met": met,
        "radar": r,
        "baseline_naive": nb,
        "forecast_coverage_95": cov,
        "seconds": {
            "detect_and_naive": round(detect_s, 1),
            "coverage": round(cover_s, 1),
            "per_series_detect_ms": round(1000 * detect_s / len(cases), 1),
        },
    }
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
