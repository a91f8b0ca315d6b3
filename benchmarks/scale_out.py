"""Scale-out: the batch scoring engines, bulk ingest into PostgreSQL, and the analytics queries
before and after the indexes of migration 0008.

    python benchmarks/scale_out.py [--items 20000] [--analytics-items 1000000]
                                   [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

1. The same ``--items`` demo items (service/demo/generator.py, seed 11) scored into Parquet by
   the local engine (one process, the encoder on every core) and by the Ray engine on a local Ray
   instance with 1 and with 2 workers (actors of 1 CPU each, the model loaded once per actor):
   wall time with start-up and model loading, items/s over the whole job and in steady state
   (after the first chunk), and how Ray's output compares with the local engine's row for row.
2. Bulk ingest into a throw-away PostgreSQL database: the same items validated, prepared, stored
   with their scores (the local run's, replayed, plus 384-d embeddings: no model, so this is
   the database path's rate), in chunks of 512, one transaction per chunk; then the same file
   again (every item found unchanged: the idempotent re-run).
3. Analytics over ``--analytics-items`` synthetic scored items (benchmarks/analytics.py's
   generator) in a throw-away PostgreSQL database at revision 0007, then upgraded to 0008:
   median of 3 for a month's breakdown by region, the same for one age group, the competitor
   benchmark over everything, a month's weekly aspect series, and the newest page of items;
   with the sizes of the created_at indexes.

Prints one JSON object. Takes ~15 minutes on 2 cores (``--analytics-items 0`` skips part 3).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.config import Settings  # noqa: E402
from service.domain import AspectScore, Score  # noqa: E402
from service.nlp.pipeline import ScoredText, Scorer  # noqa: E402


def demo_items(path: Path, n: int) -> Path:
    """The first ``n`` items of the demo generator (26 weeks, as many per week as it takes)."""
    import csv

    from service.demo.generator import DemoConfig, DemoGenerator

    cfg = DemoConfig(per_week=-(-n // 26) + 1, seed=11)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = None
        for i, (row, _) in enumerate(DemoGenerator(cfg).items()):
            if i == n:
                break
            if w is None:
                w = csv.DictWriter(fh, fieldnames=list(row))
                w.writeheader()
            w.writerow(row)
    return path


class _Clock:
    """on_chunk for a job: when the first chunk landed, and how many rows."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.first: float | None = None
        self.first_rows = 0

    def __call__(self, n: int) -> None:
        if self.first is None:
            self.first, self.first_rows = time.perf_counter(), n

    def result(self, rows: int) -> dict:
        wall = time.perf_counter() - self.t0
        steady = wall - (self.first - self.t0) if self.first else wall
        return {
            "wall_s": round(wall, 1),
            "items_per_s": round(rows / wall, 1),
            "first_chunk_s": round(self.first - self.t0, 1) if self.first else None,
            "steady_items_per_s": round((rows - self.first_rows) / steady, 1)
            if steady > 0
            else None,
        }


def score_engines(src: Path, work: Path, settings: Settings, workers: list[int]) -> dict:
    import pyarrow.parquet as pq

    from service.jobs.score_file import ScoreOptions, score_file
    from service.runtime import Runtime

    out: dict = {}
    clock = _Clock()
    rt = Runtime(settings)
    local = work / "local.parquet"
    rep = score_file(
        src,
        local,
        scorer=rt.scorer,
        detector=rt.detector,
        options=ScoreOptions(resume=False, on_chunk=clock),
        chunk_size=settings.ingest.chunk_size,
    )
    out["local"] = {"threads": "onnxruntime default (all cores)", **clock.result(rep.rows)}
    version = rt.scorer.version
    del rt
    reference = pq.read_table(local)
    try:
        from service.scale.ray_engine import RayOptions, score_with_ray
    except ImportError:  # pragma: no cover
        out["ray"] = "not installed (pip install 'feedback-radar[ray]')"
        return out
    for n in workers:
        clock = _Clock()
        dest = work / f"ray-{n}.parquet"
        opts = RayOptions(
            num_cpus=2, concurrency=n, cpus_per_worker=1, batch_size=settings.ingest.chunk_size
        )
        rep = score_with_ray(
            src,
            dest,
            settings=settings,
            opts=opts,
            model_version=version,
            options=ScoreOptions(resume=False, on_chunk=clock),
        )
        out[f"ray_{n}_workers"] = {
            "threads_per_worker": 1,
            **clock.result(rep.rows),
            "vs_local": compare(reference, pq.read_table(dest)),
        }
    return out


def compare(a, b) -> dict:
    """How far one engine's output is from another's, row by row."""
    la, lb = a.to_pylist(), b.to_pylist()
    same_order = [r["external_id"] for r in la] == [r["external_id"] for r in lb]
    diffs = [
        abs((x[c] or 0) - (y[c] or 0))
        for x, y in zip(la, lb)
        for c in ("sentiment_score", "p_negative", "p_neutral", "p_positive")
    ]
    return {
        "rows": [len(la), len(lb)],
        "same_order": same_order,
        "identical_rows": sum(x == y for x, y in zip(la, lb)),
        "same_sentiment": sum(x["sentiment"] == y["sentiment"] for x, y in zip(la, lb)),
        "same_aspects": sum(x["aspects"] == y["aspects"] for x, y in zip(la, lb)),
        "max_abs_score_diff": round(max(diffs, default=0.0), 6),
    }


class ReplayScorer(Scorer):
    """Scores already computed (the local run's), handed out in turn with random unit
    embeddings: the store's write path at full size without a model."""

    def __init__(self, parquet: Path):
        import pyarrow.parquet as pq

        from service.jobs.score_file import PROBABILITY_COLUMNS

        self.version = "replay-1"
        self.rows = [
            r
            for r in pq.read_table(
                parquet,
                columns=["sentiment", "sentiment_score", *PROBABILITY_COLUMNS, "aspects"],
            ).to_pylist()
            if r["sentiment"]
        ]
        self.rng = np.random.default_rng(0)
        self.i = 0

    def score(self, texts, languages=None):
        out = []
        emb = self.rng.standard_normal((len(texts), 384)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        for k in range(len(texts)):
            r = self.rows[self.i % len(self.rows)]
            self.i += 1
            aspects = [AspectScore(**a) for a in json.loads(r["aspects"])]
            score = Score(
                sentiment=r["sentiment"],
                sentiment_score=r["sentiment_score"],
                probabilities={
                    "negative": r["p_negative"],
                    "neutral": r["p_neutral"],
                    "positive": r["p_positive"],
                },
                aspects=aspects,
                model_version=self.version,
            )
            out.append(ScoredText(score, emb[k], emb[k] if aspects else None))
        return out


def bulk_ingest(src: Path, scored: Path, admin_url: str) -> dict:
    from benchmarks.radar_harness import pg_database
    from service.ingest.readers import read_records
    from service.runtime import Runtime
    from service.store import repo

    out: dict = {}
    with pg_database(admin_url) as url:
        rt = Runtime(Settings(database_url=url), scorer=ReplayScorer(scored))
        _ = rt.engine  # migrated before the clock starts
        service = rt.ingest_service()
        for label in ("first", "rerun"):
            t0 = time.perf_counter()
            rep = service.ingest(read_records(src), keep_results=False)
            wall = time.perf_counter() - t0
            n = sum(rep.counts.values())
            out[label] = {
                "items": n,
                **{k: v for k, v in rep.counts.items() if v},
                "wall_s": round(wall, 1),
                "items_per_s": round(n / wall, 1),
            }
        with rt.sessions() as s:
            out["stored"] = repo.count_feedback(s)
        rt.close()
    return out


def _median_s(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 3)


def _time_queries(url: str) -> dict:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from benchmarks.analytics import START
    from service.analytics.benchmark import benchmark
    from service.analytics.segments import breakdown
    from service.analytics.trends import series
    from service.store.repo import FeedbackFilter, list_feedback

    engine = create_engine(url)
    month = (START + timedelta(days=120), START + timedelta(days=150))
    flt = FeedbackFilter(since=month[0], until=month[1])
    young = FeedbackFilter(since=month[0], until=month[1], attributes={"age_group": ("18-24",)})
    with Session(engine) as s:
        out = {
            "breakdown_month_by_region_s": _median_s(
                lambda: breakdown(s, dimensions=["region"], flt=flt)
            ),
            "breakdown_month_18_24_by_region_s": _median_s(
                lambda: breakdown(s, dimensions=["region"], flt=young)
            ),
            "benchmark_all_s": _median_s(
                lambda: benchmark(s, flt=FeedbackFilter(), our_brand="spicewell")
            ),
            "series_month_taste_weekly_s": _median_s(
                lambda: series(
                    s,
                    flt=FeedbackFilter(),
                    since=month[0],
                    until=month[1],
                    bucket="week",
                    aspect="taste",
                )
            ),
            "newest_page_s": _median_s(lambda: list_feedback(s, flt=FeedbackFilter(), limit=50)),
            "newest_page_in_month_s": _median_s(lambda: list_feedback(s, flt=flt, limit=50)),
        }
    engine.dispose()
    return out


def _index_sizes(url: str) -> dict:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as c:
        rows = c.execute(
            text(
                "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes "
                "WHERE relname = 'feedback' AND indexrelname LIKE 'ix_feedback_created_at%'"
            )
        ).all()
    engine.dispose()
    return {name: f"{size / 2**20:.2f} MiB" for name, size in rows}


def analytics_before_after(admin_url: str, items: int) -> dict:
    from sqlalchemy import create_engine, text

    from benchmarks.analytics import insert_synth
    from benchmarks.radar_harness import pg_database
    from service.store.migrate import upgrade

    out: dict = {"items": items}
    with pg_database(admin_url) as url:
        engine = create_engine(url)
        upgrade(engine, "0007")
        t0 = time.perf_counter()
        with engine.begin() as c:
            insert_synth(c, items)
        out["fill_s"] = round(time.perf_counter() - t0, 1)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE"))
        out["before_0007"] = {**_time_queries(url), "created_at_indexes": _index_sizes(url)}
        t0 = time.perf_counter()
        upgrade(engine, "0008")
        out["migration_0008_s"] = round(time.perf_counter() - t0, 1)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE"))
        out["after_0008"] = {**_time_queries(url), "created_at_indexes": _index_sizes(url)}
        engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--analytics-items", type=int, default=1_000_000)
    ap.add_argument(
        "--pg",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="Admin URL; throw-away databases are created next to it ('' to skip parts 2 and 3).",
    )
    args = ap.parse_args()
    result: dict = {"items": args.items}
    with tempfile.TemporaryDirectory(prefix="radar-scale-") as tmp:
        work = Path(tmp)
        src = demo_items(work / "items.csv", args.items)
        settings = Settings(database_url=f"sqlite:///{work / 'unused.db'}")
        result["scoring"] = score_engines(src, work, settings, args.workers)
        print(json.dumps(result["scoring"]), file=sys.stderr)
        if args.pg:
            result["bulk_ingest_postgresql"] = bulk_ingest(src, work / "local.parquet", args.pg)
            print(json.dumps(result["bulk_ingest_postgresql"]), file=sys.stderr)
    if args.pg and args.analytics_items:
        result["analytics_postgresql"] = analytics_before_after(args.pg, args.analytics_items)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
