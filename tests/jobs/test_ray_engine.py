"""The Ray engine on a local Ray instance (2 CPUs) with the real model: `radar score --engine ray`
gives the local engine's output row for row, and interrupted Ray jobs resume without scoring,
writing or storing anything twice.

Scores are compared exactly, not within a tolerance, and with different chunk sizes on the two
engines: a text's scores do not depend on the batch it is scored in (the int8 encoder quantises
each token on its own), so the Ray engine's blocks of ``--batch-size`` records and the local
engine's chunks of ``--chunk-size`` give the same rows.
"""

from __future__ import annotations

import csv
import os
import sys

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from service.config import Settings
from service.demo.generator import DemoConfig, write_demo
from service.ingest.readers import read_records
from service.jobs.ingest import chunked
from service.jobs.score_file import ScoreOptions, score_file
from service.store import repo
from tests.jobs._interrupt import Boom, stop_at

ray = pytest.importorskip("ray")

from service.scale.ray_engine import RayOptions, ingest_with_ray, score_with_ray  # noqa: E402


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """One local Ray instance for the module; the jobs join it instead of starting their own."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
    )
    yield
    ray.shutdown()


def _demo(path, per_week, seed=3, bad=False):
    write_demo(path, DemoConfig(per_week=per_week, weeks=26, seed=seed))
    if bad:  # rows the job must keep in place with their reason, and a text in a chunk of its own
        with open(path, "a", encoding="utf-8", newline="") as fh:
            header = next(csv.reader(open(path, encoding="utf-8")))
            w = csv.DictWriter(fh, fieldnames=header)
            w.writerow({**{h: "x" for h in header}, "text": "", "external_id": "empty-1"})
            w.writerow(
                {
                    **{h: "x" for h in header},
                    "text": "Great taste, box crushed.",
                    "external_id": "last-1",
                }
            )
    return path


def test_radar_score_engine_ray_equals_local_engine_row_for_row(
    tmp_path, local_ray, real_pipeline, monkeypatch
):
    from service.cli.main import app
    from service.ingest.language import LanguageDetector

    src = _demo(tmp_path / "in.csv", per_week=12, bad=True)  # ~320 rows
    local = tmp_path / "local.parquet"
    score_file(src, local, scorer=real_pipeline, detector=LanguageDetector(), chunk_size=100)
    monkeypatch.setenv("RADAR_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    out = tmp_path / "ray.parquet"
    res = CliRunner().invoke(
        app,
        [
            "score",
            str(src),
            "-o",
            str(out),
            "--engine",
            "ray",
            "--batch-size",
            "37",
            "--concurrency",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    a, b = pq.read_table(local), pq.read_table(out)
    assert b.schema == a.schema and b.num_rows == a.num_rows
    la, lb = a.to_pylist(), b.to_pylist()
    assert [r["external_id"] for r in lb] == [r["external_id"] for r in la]
    assert [r["sentiment"] for r in lb] == [r["sentiment"] for r in la]
    assert [r["aspects"] for r in lb] == [r["aspects"] for r in la]
    for ra, rb in zip(la, lb):
        for col in ("sentiment_score", "p_negative", "p_neutral", "p_positive"):
            assert (
                rb[col] == pytest.approx(ra[col], abs=1e-6)
                if ra[col] is not None
                else rb[col] is None
            )
    assert lb == la  # in fact identical, bad rows and their reasons included
    assert "field text: empty" in next(r["error"] for r in lb if r["external_id"] == "empty-1")
    assert not (tmp_path / "ray.parquet.progress.json").exists()


def test_interrupted_ray_score_of_a_directory_resumes_without_duplicates_or_gaps(
    tmp_path, local_ray
):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for i in range(3):
        _demo(
            inputs / f"part-{i}.csv", per_week=2, seed=10 + i
        )  # ~50 rows each, a truth .json beside
    (inputs / "notes.txt").write_text("not an input")
    out = tmp_path / "scored.csv"
    opts = RayOptions(batch_size=20, concurrency=1)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(Boom):
        score_with_ray(
            inputs,
            out,
            settings=settings,
            opts=opts,
            model_version="v1",
            options=ScoreOptions(on_chunk=stop_at(4)),
        )
    rep = score_with_ray(inputs, out, settings=settings, opts=opts, model_version="v1")
    expected = [r["external_id"] for f in sorted(inputs.glob("*.csv")) for _, r in read_records(f)]
    sizes = [len(c) for f in sorted(inputs.glob("*.csv")) for c in chunked(read_records(f), 20)]
    assert rep.resumed_from == sum(sizes[:4])  # four chunks were written: none is scored again
    with open(out, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["external_id"] for r in rows] == expected
    assert rep.rows == len(expected) and all(r["sentiment"] for r in rows)


def test_interrupted_ray_ingest_stores_nothing_twice(tmp_path, local_ray, db_url):
    src = _demo(tmp_path / "in.csv", per_week=8, seed=5)  # ~210 rows
    n = sum(1 for _ in read_records(src))
    settings = Settings(database_url=db_url)
    opts = RayOptions(batch_size=30, concurrency=1)
    with pytest.raises(Boom):
        ingest_with_ray(src, settings=settings, opts=opts, on_chunk=stop_at(1))
    from service.runtime import Runtime

    rt = Runtime(settings)
    with rt.sessions() as s:
        stored_first = repo.count_feedback(s)
    assert 30 <= stored_first < n  # the job stopped part-way, whole chunks stored
    report = ingest_with_ray(src, settings=settings, opts=opts)
    assert report.counts["rejected"] == 0
    assert (
        report.counts["unchanged"] >= stored_first
    )  # what was stored is neither stored nor scored again
    assert report.counts["created"] == n - report.counts["unchanged"]
    with rt.sessions() as s:
        assert repo.count_feedback(s) == n
        assert repo.count_stale(s, model_version=rt.registry.pipeline_version(settings.scorer)) == 0
    rt.close()


def test_the_local_engine_never_imports_ray():
    import subprocess

    code = (
        "import sys, service.cli.main, service.jobs.score_file, service.jobs.ingest, service.runtime; "
        "sys.exit('ray' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
