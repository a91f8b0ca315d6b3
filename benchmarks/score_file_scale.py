"""`radar score` on a generated 50,000-row CSV: items/s, peak RSS, and kill-and-resume.

    python benchmarks/score_file_scale.py [--rows 50000] [--kill-after 20000]

Run 1 scores the whole file in one go (items/s, peak RSS of the process).
Run 2 scores it again into a new output, is killed with SIGKILL once the progress file
says ``--kill-after`` rows are done, and is started again; the finished output must equal
the input row for row (no duplicate, no missing external_id), and its scores must match
run 1's. Prints JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, env) -> tuple[float, int, str]:
    """Wall time, peak RSS (KiB) of the child, stdout."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    out, _ = proc.communicate()
    status = proc.returncode
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"{cmd} failed with {status}")
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, out


def _ids_and_labels(path: Path) -> tuple[list[str], list[str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["external_id"] for r in rows], [r["sentiment"] for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--kill-after", type=int, default=20_000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="radar-scale-"))
    env = {
        **os.environ,
        "RADAR_NO_PROGRESS": "1",
        "HF_HUB_OFFLINE": "1",
        "RADAR_DATABASE_URL": f"sqlite:///{tmp}/unused.db",
    }
    from service.demo.generator import DemoConfig, write_demo

    per_week = args.rows // 26 + 1
    src = tmp / "feedback.csv"
    info = write_demo(src, DemoConfig(per_week=per_week, seed=21))
    radar = [sys.executable, "-m", "service.cli.main", "score", str(src)]

    out1 = tmp / "run1.csv"
    wall1, rss1, _ = _run(radar + ["-o", str(out1)], env)

    out2 = tmp / "run2.csv"
    progress = tmp / "run2.csv.progress.json"
    proc = subprocess.Popen(
        radar + ["-o", str(out2)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    killed_at = None
    while proc.poll() is None:
        if progress.exists():
            try:
                done = json.loads(progress.read_text()).get("rows_done", 0)
            except json.JSONDecodeError:
                done = 0
            if done >= args.kill_after:
                proc.send_signal(signal.SIGKILL)
                killed_at = done
                break
        time.sleep(0.2)
    proc.wait()
    wall2, _, out = _run(radar + ["-o", str(out2)], env)
    resumed = json.loads(out.strip().splitlines()[-1])

    with open(src, encoding="utf-8", newline="") as fh:
        expected = [r["external_id"] for r in csv.DictReader(fh)]
    ids1, labels1 = _ids_and_labels(out1)
    ids2, labels2 = _ids_and_labels(out2)
    print(
        json.dumps(
            {
                "rows": info["rows"],
                "run1": {
                    "seconds": round(wall1, 1),
                    "items_per_s": round(info["rows"] / wall1, 1),
                    "peak_rss_mib": round(rss1 / 1024, 1),
                },
                "run2": {
                    "killed_after_rows": killed_at,
                    "resumed_from_row": resumed["resumed_from_row"],
                    "rerun_seconds": round(wall2, 1),
                },
                "run1_rows_match_input": ids1 == expected,
                "run2_rows_match_input": ids2 == expected,
                "run2_duplicates": len(ids2) - len(set(ids2)),
                "run2_missing": len(set(expected) - set(ids2)),
                "labels_equal_run1_vs_run2": sum(a == b for a, b in zip(labels1, labels2))
                / len(labels1),
                "workdir": str(tmp),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
