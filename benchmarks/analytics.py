"""Analytics at scale: a one-dimension breakdown over a month of 1,000,000 stored items and
the competitor benchmark over all of them, on SQLite and on PostgreSQL, and themes for
100,000 items.

    python benchmarks/analytics.py [--items 1000000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

The store is filled directly with synthetic scored items (bulk inserts, no model): ten
months of feedback over 5 regions, 3 brands, 4 age groups, 2 languages, with sentiment,
1–2 aspects each and 384-d float16 embeddings drawn around 40 topic centres. The
PostgreSQL run uses a throw-away database. Prints one JSON object: rows inserted and insert
rate per database, breakdown times (median of 3, each a full `breakdown` call as the API
makes it), benchmark times (median of 3 `benchmark` calls as `radar benchmark` makes them:
every stored item, all brands × aspects, gaps and BH; and per region), the wall time of the
`radar benchmark --json` command itself, and the themes run time. Targets: breakdown < 2 s,
benchmark < 3 s, themes < 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from service.analytics.segments import breakdown  # noqa: E402
from service.analytics.themes import discover  # noqa: E402
from service.store.migrate import upgrade  # noqa: E402
from service.store.repo import FeedbackFilter  # noqa: E402
from service.store.tables import AspectScoreRow, AttributeRow, FeedbackRow, ScoreRow  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=UTC)
MONTHS = 10
REGIONS = ["North", "South", "East", "West", "Central"]
BRANDS = ["spicewell", "noodleking", "goldenbowl"]
AGES = ["18-24", "25-34", "35-44", "45+"]
ASPECTS = ["taste", "packaging", "price_value", "delivery", "customer_service", "quantity_size"]
WORDS_EN = [
    "spicy",
    "broth",
    "noodles",
    "box",
    "crushed",
    "price",
    "courier",
    "late",
    "portion",
    "service",
    "refund",
    "flavour",
    "salty",
    "cheap",
    "lid",
    "fresh",
]
WORDS_ZH = [
    "太辣",
    "汤底",
    "面条",
    "包装",
    "破损",
    "价格",
    "快递",
    "很慢",
    "分量",
    "客服",
    "退款",
    "味道",
]


def synth(n: int, seed: int = 0):
    """Rows for the four tables, in chunks of 20,000 items."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, 384)).astype(np.float32)
    span = MONTHS * 30 * 86400
    now = datetime.now(UTC)
    for lo in range(0, n, 20_000):
        k = min(20_000, n - lo)
        topic = rng.integers(0, 40, k)
        emb = centres[topic] + rng.normal(scale=1.2, size=(k, 384)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        secs = rng.integers(0, span, k)
        sent = rng.choice(["negative", "neutral", "positive"], k, p=[0.3, 0.2, 0.5])
        zh = rng.random(k) < 0.5
        fb, sc, asp, att = [], [], [], []
        for j in range(k):
            i = lo + j
            words = WORDS_ZH if zh[j] else WORDS_EN
            picks = [words[(topic[j] + m) % len(words)] for m in range(3)]
            body = ("".join(picks) if zh[j] else " ".join(picks)) + f" #{i}"
            created = START + timedelta(seconds=int(secs[j]))
            fb.append(
                {
                    "id": i + 1,
                    "source": "bench",
                    "external_id": str(i),
                    "channel": "review",
                    "text": body,
                    "text_hash": f"{i:040x}",
                    "content_hash": f"{i:040x}",
                    "created_at": created,
                    "brand": BRANDS[i % 3],
                    "region": REGIONS[(i // 3) % 5],
                    "language": "zh" if zh[j] else "en",
                    "ingested_at": now,
                    "updated_at": now,
                }
            )
            att.append({"feedback_id": i + 1, "name": "age_group", "value": AGES[(i // 7) % 4]})
            s = str(sent[j])
            score = {"negative": -0.7, "neutral": 0.0, "positive": 0.7}[s]
            sc.append(
                {
                    "feedback_id": i + 1,
                    "sentiment": s,
                    "sentiment_score": score,
                    "p_negative": 0.2,
                    "p_neutral": 0.2,
                    "p_positive": 0.6,
                    "model_version": "bench-1",
                    "embedding": emb[j].astype("<f2").tobytes(),
                    "scored_at": now,
                    "topic_embedding": emb[j].astype("<f2").tobytes(),
                }
            )
            for m in range(1 + (i % 2)):
                asp.append(
                    {
                        "feedback_id": i + 1,
                        "aspect": ASPECTS[(topic[j] + m) % len(ASPECTS)],
                        "confidence": 0.8,
                        "sentiment": s,
                        "sentiment_score": score,
                        "evidence": body,
                    }
                )
        yield fb, att, sc, asp


def insert_synth(c, n: int, progress=None) -> int:
    """``n`` synthetic items (``synth``) inserted into the four tables through the connection
    ``c``: the rows inserted. ``progress`` is told the last item's id after each chunk."""
    rows = 0
    for fb, att, sc, asp in synth(n):
        for table, batch in (
            (FeedbackRow, fb),
            (AttributeRow, att),
            (ScoreRow, sc),
            (AspectScoreRow, asp),
        ):
            c.execute(insert(table), batch)
            rows += len(batch)
        if progress:
            progress(fb[-1]["id"])
    return rows


def fill(url: str, n: int) -> dict:
    engine = create_engine(url)
    upgrade(engine)
    t0 = time.time()
    with engine.begin() as c:
        rows = insert_synth(
            c,
            n,
            progress=lambda last: print(
                f"\r{url.split(':')[0]}: {last:,} items", end="", file=sys.stderr, flush=True
            ),
        )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("ANALYZE"))
    print(file=sys.stderr)
    wall = time.time() - t0
    engine.dispose()
    return {"rows": rows, "insert_s": round(wall, 1), "rows_per_s": round(rows / wall)}


def time_breakdown(url: str) -> dict:
    from sqlalchemy.orm import Session

    engine = create_engine(url)
    month = (START + timedelta(days=120), START + timedelta(days=150))
    flt = FeedbackFilter(since=month[0], until=month[1])
    runs = []
    with Session(engine) as s:
        for _ in range(3):
            t0 = time.time()
            out = breakdown(s, dimensions=["region"], flt=flt)
            runs.append(time.time() - t0)
    engine.dispose()
    return {
        "breakdown_month_items": out["total"]["volume"],
        "breakdown_s_median": round(statistics.median(runs), 3),
        "breakdown_s_runs": [round(r, 3) for r in runs],
    }


def time_benchmark(url: str) -> dict:
    import os
    import subprocess

    from sqlalchemy.orm import Session

    from service.analytics.benchmark import benchmark

    engine = create_engine(url)
    out: dict = {}
    with Session(engine) as s:
        for label, segment in (("benchmark", None), ("benchmark_by_region", "region")):
            runs = []
            for _ in range(3):
                t0 = time.time()
                res = benchmark(s, flt=FeedbackFilter(), our_brand="spicewell", segment=segment)
                runs.append(time.time() - t0)
            out[f"{label}_s_median"] = round(statistics.median(runs), 3)
            out[f"{label}_gaps_tested"] = res["tests"]
    engine.dispose()
    env = {**os.environ, "RADAR_DATABASE_URL": url, "RADAR_NO_PROGRESS": "1"}
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "service.cli.main", "benchmark", "--days", "3660", "--json"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
    )
    out["radar_benchmark_cli_s"] = round(time.time() - t0, 2)
    out["radar_benchmark_cli_rc"] = proc.returncode
    return out


def time_themes(url: str, items: int) -> dict:
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    engine = create_engine(url)
    with Session(engine) as s:
        # the window ending at the 10th month's end that holds `items` items (or everything)
        until = START + timedelta(days=MONTHS * 30)
        total = s.scalar(select(func.count()).select_from(FeedbackRow))
        since = until - timedelta(days=MONTHS * 30 * min(1.0, items / max(total, 1)))
        t0 = time.time()
        out = discover(
            s, flt=FeedbackFilter(), since=since, until=until, scope="bench", now=datetime.now(UTC)
        )
        wall = time.time() - t0
    engine.dispose()
    return {
        "themes_items": out["items"],
        "themes_sample": out["sample"],
        "themes_found": len(out["themes"]),
        "sub_themes_found": sum(len(t["children"]) for t in out["themes"]),
        "themes_s": round(wall, 1),
    }


def measure(url: str, items: int) -> dict:
    """Fill the store at ``url`` with ``items`` items, then time the breakdown and the benchmark."""
    return {**fill(url, items), **time_breakdown(url), **time_benchmark(url)}


def main() -> None:
    from benchmarks.radar_harness import pg_database

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--theme-items", type=int, default=100_000)
    ap.add_argument("--sqlite", default="/tmp/radar-bench-analytics.db")
    ap.add_argument(
        "--pg",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="Admin URL; a throw-away database is created next to it ('' to skip).",
    )
    args = ap.parse_args()
    Path(args.sqlite).unlink(missing_ok=True)
    sqlite_url = f"sqlite:///{args.sqlite}"
    result: dict = {"items": args.items, "sqlite": measure(sqlite_url, args.items)}
    result["themes_sqlite"] = time_themes(sqlite_url, args.theme_items)
    if args.pg:
        with pg_database(args.pg) as url:
            result["postgresql"] = measure(url, args.items)
    result["targets"] = {"breakdown_s": 2.0, "benchmark_s": 3.0, "themes_s": 60.0}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
