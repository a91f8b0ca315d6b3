"""Throughput of the scoring pipeline against a plain baseline, on the same items, one run.

    python benchmarks/score_throughput.py [--items 2000] [--threads 2] [--source demo|reviews]

pipeline       Radar's ScoringPipeline as configured (the int8 ONNX encoder when built): one
               encoder pass, sentiment + zero-shot aspects (with per-aspect sentiment) + embedding
pipeline_fp32  the same pipeline on the fp32 PyTorch encoder
baseline       SentenceTransformer.encode (default batch size) + the same sentiment head:
               sentiment and the embedding only, no aspects
no_aspects     the same int8 pipeline with the aspect tagger switched off: what the hybrid
               tagger (rules + relevance model + aspect sentiment) costs is
               ``aspect_tagger_cost = 1 - pipeline rate / no_aspects rate``

Items are review-length texts from the demo generator (English and Chinese), or with
``--source reviews`` whole real reviews read from ``../shared/data``: SemEval-2016 restaurant and
laptop reviews (their sentences joined) and Chinese ASAP reviews, alternating while both last,
about 380 characters each, where the encoder's cost dominates. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def real_reviews(n: int) -> list[str]:
    """Up to ``n`` whole reviews, English and Chinese alternating, read from the shared data."""
    import csv
    import xml.etree.ElementTree as ET
    from itertools import zip_longest

    from training.data import data_dir

    data = data_dir()
    english = [
        " ".join(s.findtext("text") or "" for s in review.iter("sentence")).strip()
        for path in sorted(data.glob("semeval2016_absa/ABSA16_*.xml"))
        for review in ET.parse(path).getroot().iter("Review")
    ]
    csv.field_size_limit(10**9)
    chinese = []
    for split in ("train", "dev", "test"):
        path = data / "asap_samples" / f"{split}_sample.csv"
        with open(path, encoding="utf-8-sig", newline="") as fh:
            chinese += [(r.get("reviewbody") or "").strip() for r in csv.DictReader(fh)]
    mixed = [t for pair in zip_longest(english, chinese) for t in pair if t]
    return mixed[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--chunk", type=int, default=512, help="Items per pipeline call (as ingest chunks)."
    )
    ap.add_argument(
        "--pipeline", default=None, help="Pipeline name in models/manifest.yaml (default: scorer)."
    )
    ap.add_argument(
        "--source",
        choices=["demo", "reviews"],
        default="demo",
        help="demo: generated short items; reviews: whole real reviews from ../shared/data.",
    )
    args = ap.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    from service.config import Settings
    from service.demo.generator import DemoConfig, DemoGenerator
    from service.ingest.language import LanguageDetector
    from service.runtime import Runtime

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.source == "reviews":
        texts = real_reviews(args.items)
    else:
        gen = DemoGenerator(DemoConfig(per_week=max(args.items // 26 + 1, 1), seed=11))
        texts = [row["text"] for row, _ in gen.items()][: args.items]
    langs = LanguageDetector().detect_many(texts)

    from service.nlp.pipeline import ScoringPipeline

    rt = Runtime(Settings())
    name = args.pipeline or rt.settings.scorer
    pipe = rt.registry.pipeline(name)
    spec = rt.registry.manifest.pipelines[name]
    head = pipe.sentiment
    fp32 = ScoringPipeline(
        encoder=rt.registry.encoder(spec.encoder, runtime="torch"),
        sentiment=head,
        aspects=pipe.aspects,
        version=pipe.version + "-fp32",
        languages=pipe.languages,
    )
    st = SentenceTransformer(str(rt.registry.encoder_path(spec.encoder)), device="cpu")

    class _NoAspects:
        taxonomy = pipe.aspects.taxonomy

        def tag_batch(self, texts, *rest):
            return [[] for _ in texts]

    bare = ScoringPipeline(
        encoder=pipe.encoder,
        sentiment=head,
        aspects=_NoAspects(),
        version=pipe.version + "-bare",
        languages=pipe.languages,
    )

    def timed(p) -> float:
        t0 = time.perf_counter()
        for i in range(0, len(texts), args.chunk):
            p.score(texts[i : i + args.chunk], langs[i : i + args.chunk])
        return time.perf_counter() - t0

    pipe.score(texts[:64], langs[:64])  # warm-up all three
    fp32.score(texts[:64], langs[:64])
    st.encode(texts[:64])
    bare.score(texts[:64], langs[:64])
    # interleaved, twice, best of each: the machine is noisy and the two differ by a few percent
    t_pipe, t_bare = min(timed(pipe), timed(pipe)), 0.0
    t_bare = min(timed(bare), timed(bare))
    t_fp32 = timed(fp32)

    t0 = time.perf_counter()
    emb = st.encode(texts, convert_to_numpy=True, normalize_embeddings=True)
    head.predict_proba(emb)
    t_base = time.perf_counter() - t0

    def rate(seconds: float, does: str) -> dict:
        return {
            "seconds": round(seconds, 2),
            "items_per_s": round(len(texts) / seconds, 1),
            "does": does,
        }

    print(
        json.dumps(
            {
                "items": len(texts),
                "mean_chars": round(sum(map(len, texts)) / len(texts), 1),
                "torch_threads": torch.get_num_threads(),
                "cpu": platform.processor() or platform.machine(),
                "pipeline": {
                    "name": name,
                    "encoder_runtime": rt.registry.encoder_runtime(spec.encoder),
                    **rate(t_pipe, "sentiment + aspects (+ aspect sentiment) + embedding"),
                },
                "no_aspects": rate(
                    t_bare, "the same int8 pipeline with the aspect tagger switched off"
                ),
                "aspect_tagger_cost": round(1 - t_bare / t_pipe, 3),
                "pipeline_fp32": rate(t_fp32, "the same pipeline on the fp32 PyTorch encoder"),
                "baseline": rate(
                    t_base,
                    "SentenceTransformer.encode + the same head (sentiment + embedding only)",
                ),
                "pipeline_over_baseline": round(t_base / t_pipe, 3),
                "pipeline_over_fp32": round(t_fp32 / t_pipe, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
