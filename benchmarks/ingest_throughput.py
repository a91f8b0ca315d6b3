"""``POST /v1/feedback`` against the scoring pipeline's own rate, in the same run.

    python benchmarks/ingest_throughput.py [--items 1200] [--batches 10 50] [--clients 1 8]

1. **pipeline**: the served scoring pipeline, in this process, on the benchmark's texts in
   calls of 64 (what the model alone does; the baseline every ingest figure is a share of).
2. **where the time goes**: the ingest service in this process (no HTTP) on the same items in
   batches of 50, profiled: validation and normalisation, language id, PII, near-duplicate
   fingerprints, the model, the database writes; seconds and shares.
3. **the API**: ``radar serve`` (real model, SQLite, access control on) in a subprocess, fed by
   ``clients`` concurrent clients with batches of ``batch`` new demo items each; items/s, the
   share of the pipeline's rate, latency percentiles and 503s. A fresh store per setting.

Prints one JSON object. Figures from one machine at one time: compare only within a run.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import radar_harness as h  # noqa: E402

STAGES = {  # profile entries (file suffix, function) -> stage
    ("ingest/validate.py", "validate"): "validate",
    ("ingest/language.py", "detect"): "language id",
    ("ingest/pii.py", "redact"): "pii",
    ("ingest/dedup.py", "fingerprint"): "near-duplicate fingerprint",
    ("ingest/prepare.py", "prepare"): "prepare (all of normalise, language, pii, fingerprint)",
    ("nlp/pipeline.py", "score"): "model",
    ("jobs/ingest.py", "_write"): "database write",
    ("store/repo.py", "existing_by_key"): "lookup of stored keys",
}


def pipeline_rate(texts: list[str], langs: list[str]) -> dict:
    from service.config import Settings
    from service.runtime import Runtime

    rt = Runtime(Settings(database_url="sqlite://"))
    scorer = rt.base_scorer
    scorer.score(texts[:64], langs[:64])  # warm
    t0 = time.perf_counter()
    for i in range(0, len(texts), 64):
        scorer.score(texts[i : i + 64], langs[i : i + 64])
    secs = time.perf_counter() - t0
    return {
        "items": len(texts),
        "seconds": round(secs, 2),
        "items_per_s": round(len(texts) / secs, 1),
        "model_version": scorer.version,
    }


def profile_ingest(items: list[dict], workdir: Path) -> dict:
    from service.config import Settings
    from service.ingest.mapping import ColumnMapping
    from service.runtime import Runtime

    rt = Runtime(Settings(database_url=f"sqlite:///{workdir / 'profile.db'}"))
    svc = rt.ingest_service(ColumnMapping(extra_as_attributes=False))
    svc.ingest(list(enumerate(h.demo_items(20, seed=99, tag="warm"))))
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for i in range(0, len(items), 50):
        svc.ingest(list(enumerate(items[i : i + 50])))
    prof.disable()
    total = time.perf_counter() - t0
    stats = pstats.Stats(prof).stats
    stages = {}
    for (file, _, func), (_, _, _, cum, _) in stats.items():
        for (suffix, name), stage in STAGES.items():
            if file.endswith(suffix) and func == name:
                stages[stage] = stages.get(stage, 0.0) + cum
    rt.close()
    return {
        "items": len(items),
        "seconds": round(total, 2),
        "items_per_s": round(len(items) / total, 1),
        "stages": {
            k: {"seconds": round(v, 2), "share": round(v / total, 3)}
            for k, v in sorted(stages.items(), key=lambda kv: -kv[1])
        },
    }


def api_run(items: list[dict], *, clients: int, batch: int, workdir: Path) -> dict:
    import httpx

    db = h.fresh_database("sqlite", workdir)
    keys = h.create_keys(db.url, ["admin"])
    server = h.Server(db.url, workdir)
    server.start(keys["admin"])
    try:
        base, head = server.base, h.auth(keys["admin"])
        with httpx.Client(timeout=300) as c:  # warm: the first request loads the language models
            c.post(
                base + "/v1/feedback",
                json={"items": h.demo_items(5, seed=98, tag="warm")},
                headers=head,
            )
        batches = [items[i : i + batch] for i in range(0, len(items), batch)]
        lock = threading.Lock()
        latencies: list[float] = []
        counts = {"stored": 0, "503": 0, "errors": 0}

        def client(idx: int) -> None:
            with httpx.Client(timeout=300) as c:
                for b in batches[idx::clients]:
                    while True:
                        t0 = time.perf_counter()
                        r = c.post(base + "/v1/feedback", json={"items": b}, headers=head)
                        dt = time.perf_counter() - t0
                        with lock:
                            latencies.append(dt * 1000)
                            if r.status_code == 503:
                                counts["503"] += 1
                            elif r.status_code != 200:
                                counts["errors"] += 1
                        if r.status_code == 503:
                            time.sleep(float(r.headers.get("Retry-After", "1")))
                            continue
                        if r.status_code == 200:
                            out = r.json()
                            with lock:
                                counts["stored"] += (
                                    out["created"] + out["updated"] + out["unchanged"]
                                )
                        break

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        secs = time.perf_counter() - t0
        return {
            "clients": clients,
            "batch": batch,
            "items": len(items),
            "seconds": round(secs, 2),
            "items_per_s": round(len(items) / secs, 1),
            "latency_ms": h.percentiles(latencies),
            **counts,
        }
    finally:
        server.stop()
        db.drop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--items", type=int, default=1200)
    ap.add_argument("--batches", type=int, nargs="+", default=[10, 50])
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--skip-profile", action="store_true")
    args = ap.parse_args(argv)

    from service.ingest.language import LanguageDetector

    items = h.demo_items(args.items, seed=5, tag="bench")
    texts = [i["text"] for i in items]
    langs = LanguageDetector().detect_many(texts)
    out: dict = {"machine": {"cpus": os.cpu_count(), "loadavg_start": h.loadavg()}}
    out["pipeline"] = pipeline_rate(texts, langs)
    rate = out["pipeline"]["items_per_s"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.skip_profile:
            out["profile"] = profile_ingest(h.demo_items(args.items, seed=6, tag="prof"), work)
            out["profile"]["share_of_pipeline"] = round(out["profile"]["items_per_s"] / rate, 3)
        runs = []
        for clients in args.clients:
            for batch in args.batches:
                r = api_run(
                    h.demo_items(
                        args.items, seed=7 + clients * 100 + batch, tag=f"c{clients}b{batch}"
                    ),
                    clients=clients,
                    batch=batch,
                    workdir=work,
                )
                r["share_of_pipeline"] = round(r["items_per_s"] / rate, 3)
                runs.append(r)
        out["api"] = runs
        one = {r["batch"]: r["items_per_s"] for r in runs if r["clients"] == 1}
        out["concurrency_gain"] = {
            f"{r['clients']} clients, batch {r['batch']}": round(
                r["items_per_s"] / one[r["batch"]], 2
            )
            for r in runs
            if r["clients"] > 1 and r["batch"] in one
        }
    out["machine"]["loadavg_end"] = h.loadavg()
    h.write_json(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
