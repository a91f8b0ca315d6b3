"""The crisis rule on real post volumes: NAB's realTweets (brand mentions on Twitter, with
labeled anomaly windows), run hourly as cron would. Prints JSON.

    python benchmarks/crisis_nab.py [--data ../shared/data/nab_realtweets] [--alpha 0.001]

Why: the crisis rule raises L1 alerts (a regional lead is woken). On the alert benchmark its
background is drawn at a constant rate, so it cannot tell whether an ordinary busy afternoon
or a clumpy news day looks like a crisis. NAB's ten series are real: 5-minute counts of tweets
naming a brand over about two months, with the windows where the NAB labelers saw anomalies.

Each series is read as the post times the rule would see (a 5-minute count of c is c posts at
that time) and the rule's test (``service.alerts.families.crisis``) runs every hour from the
first hour with a full baseline: the posts in the last ``window_hours`` (6) against the
``baseline_hours`` (168) before, at least ``min_count`` (8) posts and p < ``alpha``. Two tests
run on the same hours, in the same run:

- ``flat_poisson``: what the rule did before: the baseline's mean hourly rate times the window,
  Poisson noise;
- ``shipped``: ``burst_test``: the same clock hours on the earlier days of the baseline, negative
  binomial noise with the dispersion the baseline shows.

Firing hours less than ``--merge-hours`` (24) apart are one incident (an open alert updates; it
does not raise again). An incident that starts inside a labeled window, or up to 6 hours before
it, detects that window; any other incident is a false alert. Reported per series and in
total: windows detected, false alerts, false alerts per 30 days, hours from a window's start to
its first alert. NAB's own scoring (``final_results.json``) weighs detections differently and
covers 58 series, so its figures are not comparable; they are not used.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from scipy import stats as sstats  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab_realtweets"


def load(data: Path) -> dict[str, tuple[datetime, np.ndarray, list[tuple[datetime, datetime]]]]:
    """Per series: its first hour, posts per hour from then on, and its labeled windows."""
    windows = json.loads((data / "combined_windows_realTweets.json").read_text())
    out = {}
    for path in sorted(data.glob("Twitter_volume_*.csv")):
        with open(path) as fh:
            rows = [
                (datetime.fromisoformat(r["timestamp"]), float(r["value"]))
                for r in csv.DictReader(fh)
            ]
        start = rows[0][0].replace(minute=0, second=0, microsecond=0)
        n_hours = int((rows[-1][0] - start).total_seconds() // 3600) + 1
        hours = np.zeros(n_hours)
        for t, v in rows:
            hours[int((t - start).total_seconds() // 3600)] += v
        wins = [
            (datetime.fromisoformat(a[:19]), datetime.fromisoformat(b[:19]))
            for a, b in windows[f"realTweets/{path.name}"]
        ]
        out[path.stem.removeprefix("Twitter_volume_")] = (start, hours, wins)
    return out


def flat_poisson(count: int, baseline: np.ndarray, window_hours: int) -> float:
    rate = max(baseline.sum() / len(baseline), 0.1)
    return float(sstats.poisson.sf(count - 1, rate * window_hours)) if count else 1.0


def run_series(
    start: datetime,
    hours: np.ndarray,
    wins,
    test,
    *,
    window: int,
    baseline: int,
    alpha: float,
    min_count: int,
    merge_hours: int,
) -> dict:
    """Hourly runs of one test over one series, incidents and their verdicts."""
    fired = []
    for h in range(baseline + window, len(hours) + 1):  # a run at the start of hour h
        count = int(hours[h - window : h].sum())
        if (
            count >= min_count
            and test(count, hours[h - window - baseline : h - window], window) < alpha
        ):
            fired.append(h)
    incidents = []
    for h in fired:
        if incidents and h - incidents[-1][-1] < merge_hours:
            incidents[-1].append(h)
        else:
            incidents.append([h])
    detected, false, delays = set(), 0, []
    for inc in incidents:
        at = start + timedelta(hours=inc[0])
        hit = next((i for i, (a, b) in enumerate(wins) if a - timedelta(hours=6) <= at <= b), None)
        if hit is None:
            false += 1
        elif hit not in detected:
            detected.add(hit)
            delays.append(round((at - wins[hit][0]).total_seconds() / 3600, 1))
    # only windows the runs could see (a window before the first full baseline cannot be found)
    first_run = start + timedelta(hours=baseline + window)
    visible = [i for i, (a, b) in enumerate(wins) if b >= first_run]
    days = (len(hours) - baseline - window) / 24
    return {
        "runs": len(hours) - baseline - window + 1,
        "days_watched": round(days, 1),
        "windows": len(visible),
        "windows_detected": len(detected & set(visible)),
        "false_alerts": false,
        "false_alerts_per_30_days": round(30 * false / days, 2),
        "hours_from_window_start": delays,
        "firing_hours": len(fired),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--data", type=Path, default=Path(os.environ.get("RADAR_NAB_DATA", DEFAULT_DATA))
    )
    ap.add_argument("--alpha", type=float, default=None, help="Default: the shipped rule's.")
    ap.add_argument("--merge-hours", type=int, default=24)
    args = ap.parse_args(argv)

    from service.alerts.families.crisis import burst_test
    from service.alerts.rules import AlertConfig

    rule = next(
        r
        for r in AlertConfig.from_yaml(
            Path(__file__).resolve().parents[1] / "configs" / "alerts.yaml"
        ).rules
        if r.type == "crisis_spike"
    )
    alpha = args.alpha or rule.alpha
    tests = {"flat_poisson": flat_poisson, "shipped": lambda c, b, w: burst_test(c, b, w).p_value}
    t0 = time.time()
    series = load(args.data)
    per = {name: {} for name in tests}
    for name, test in tests.items():
        for s, (start, hours, wins) in series.items():
            per[name][s] = run_series(
                start,
                hours,
                wins,
                test,
                window=rule.window_hours,
                baseline=rule.baseline_hours,
                alpha=alpha,
                min_count=rule.min_count,
                merge_hours=args.merge_hours,
            )
    total = {}
    for name, rows in per.items():
        days = sum(r["days_watched"] for r in rows.values())
        delays = [d for r in rows.values() for d in r["hours_from_window_start"]]
        total[name] = {
            "windows": sum(r["windows"] for r in rows.values()),
            "windows_detected": sum(r["windows_detected"] for r in rows.values()),
            "false_alerts": sum(r["false_alerts"] for r in rows.values()),
            "false_alerts_per_30_days_per_series": round(
                30 * sum(r["false_alerts"] for r in rows.values()) / days, 2
            ),
            "median_hours_from_window_start": float(np.median(delays)) if delays else None,
        }
        total[name]["window_recall"] = round(
            total[name]["windows_detected"] / max(total[name]["windows"], 1), 3
        )
    print(
        json.dumps(
            {
                "data": str(args.data),
                "rule": {
                    "window_hours": rule.window_hours,
                    "baseline_hours": rule.baseline_hours,
                    "min_count": rule.min_count,
                    "alpha": alpha,
                },
                "merge_hours": args.merge_hours,
                "seconds": round(time.time() - t0, 1),
                "total": total,
                "per_series": per,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
