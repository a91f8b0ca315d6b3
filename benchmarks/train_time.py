"""`radar train` on a store of 20,000 items with 500 labels, and a promoted team model's
throughput against the generic pipeline's in the same run. Prints JSON.

    python benchmarks/train_time.py [--items 20000] [--labels 500] [--store PATH]

The store is the demo generator's data (English and Chinese, with ratings: the rated items
are the run's weak labels), ingested and scored by the real pipeline once into a SQLite file
under the model cache (resumable: ingest is idempotent, a rerun scores nothing twice).
``labels`` items are labeled from the generator's truth (overall sentiment from the sign of
its aspect polarities, every aspect present or absent): this measures time, not quality (the
demo agrees with the models; ``benchmarks/learning_curve.py`` measures quality on real sets).

Throughput: the same 1,000 stored texts scored by the generic pipeline and by the promoted
team pipeline, alternating, three rounds each; the ratio is team / generic.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--labels", type=int, default=500)
    ap.add_argument("--store", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from tqdm import tqdm

    from service.config import Settings
    from service.demo.generator import DemoConfig, DemoGenerator
    from service.domain import Label
    from service.runtime import Runtime
    from service.store import labels as store
    from service.store import repo

    base = Settings()
    path = args.store or Path(base.model_cache_dir) / "bench" / f"train-{args.items}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    rt = Runtime(Settings(database_url=f"sqlite:///{path}"))
    weeks = max(1, args.items // 1000)
    rows, truth = [], {}
    for row, t in DemoGenerator(DemoConfig(weeks=weeks, per_week=1000, seed=11)).items():
        rows.append(row)
        truth[row["external_id"]] = t
        if len(rows) >= args.items:
            break
    t0 = time.time()
    with rt.sessions() as s:
        have = repo.count_feedback(s)
    if have < len(rows):
        svc = rt.ingest_service()
        with tqdm(total=len(rows), desc="ingest (once)", unit="item", file=sys.stderr) as bar:
            for start in range(0, len(rows), 2000):
                part = rows[start : start + 2000]
                svc.ingest(list(enumerate(part, start)), keep_results=False)
                bar.update(len(part))
    ingest_s = time.time() - t0
    now = datetime.now(UTC)
    ids = rt.settings.taxonomy.ids
    with rt.sessions() as s:
        keys = [(r["source"], r["external_id"]) for r in rows]
        found = repo.existing_by_key(s, keys=keys)
        chosen = random.Random(5).sample([k for k in keys if k in found], args.labels)
        from sqlalchemy import delete

        from service.store.tables import LabelRow

        s.execute(delete(LabelRow))
        for key in chosen:
            t = truth[key[1]]
            pol = sum(t.aspects.values())
            labels = [
                Label(
                    target="sentiment",
                    value="negative" if pol < 0 else "positive" if pol > 0 else "neutral",
                )
            ]
            labels += [
                Label(target="aspect", aspect=a, value="present" if a in t.aspects else "absent")
                for a in ids
            ]
            store.put_labels(
                s, feedback_id=found[key].id, labels=labels, source="import", actor="bench", now=now
            )
        s.commit()
        stored = repo.count_feedback(s)
    name = f"bench-{now.strftime('%Y%m%d-%H%M%S')}"
    t0 = time.time()
    m = rt.train_team_model(name=name, actor="bench")
    train_s = time.time() - t0
    rt.promote_model(name, actor="bench", force=True)
    team = rt.scorer
    generic = rt.base_scorer
    with rt.sessions() as s:
        texts = [t for _, t, _ in repo.recent_texts(s, flt=repo.FeedbackFilter(), limit=1000)]
    generic.score(texts[:64])
    team.score(texts[:64])
    times = {"generic": [], "team": []}
    for _ in range(args.rounds):
        for label, scorer in (("generic", generic), ("team", team)):
            t0 = time.perf_counter()
            scorer.score(texts)
            times[label].append(time.perf_counter() - t0)
    rt.promote_model("generic", actor="bench")
    g, t = min(times["generic"]), min(times["team"])
    print(
        json.dumps(
            {
                "store_items": stored,
                "labels": args.labels,
                "ingest_s_this_run": round(ingest_s, 1),
                "train_wall_s": round(train_s, 1),
                "train_seconds_inside": m["params"]["seconds"],
                "weak_ratings": m["params"]["labels"]["weak_ratings"],
                "heads": m["params"]["fit"]["aspects"].get("trained"),
                "model_bytes": m["size_bytes"],
                "throughput": {
                    "texts": len(texts),
                    "generic_items_per_s": round(len(texts) / g, 1),
                    "team_items_per_s": round(len(texts) / t, 1),
                    "team_over_generic": round(g / t, 3),
                    "rounds": args.rounds,
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
