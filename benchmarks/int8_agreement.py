"""The served int8 encoder against fp32, on real dev texts, in one run. Prints JSON.

    python benchmarks/int8_agreement.py [--pipeline default] [--probe 400] [--no-dynamic]

For every sentiment dev set in ``../shared/data`` (SST-2, TweetEval, UMSAB × 8, ChnSentiCorp,
MAMS clauses; the training preset's dev sets):

- ``agree_int8``: the share of sentiment labels the served int8 graph (per-token activation
  scales, ``service.nlp.build.onnx_export``) gives as the fp32 PyTorch encoder does, with the same head;
- ``agree_dynamic``: the same for ONNX Runtime's dynamic int8 (one activation scale per tensor,
  what was served before), built here from the same fp32 graph; ``--no-dynamic`` skips it;
- ``metric_fp32`` / ``metric_int8``: the set's own metric under each.

Batch composition (``--probe`` real dev texts through the whole served pipeline): scored in one
call, in four calls, and shuffled in batches of 32; how many labels and aspect tags change and
the largest sentiment-score change, for the served graph and (encoder only) the dynamic one.

Speed, same texts, same run: int8 and fp32 encoders, items/s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def _rate(encoder, texts: list[str]) -> float:
    encoder.encode(texts[:64])
    t = time.perf_counter()
    encoder.encode(texts)
    return len(texts) / (time.perf_counter() - t)


def _labels(head, emb: np.ndarray) -> np.ndarray:
    return head.predict_proba(emb).argmax(1)


def _probe(pipe, texts: list[str]) -> dict:
    """Labels, tags and scores of ``texts`` scored at once, in four calls and shuffled."""

    def key(r):
        return r.score.sentiment, tuple(sorted(a.aspect for a in r.score.aspects))

    whole = pipe.score(texts)
    quarter = -(-len(texts) // 4)
    four = [r for lo in range(0, len(texts), quarter) for r in pipe.score(texts[lo : lo + quarter])]
    order = np.random.default_rng(0).permutation(len(texts))
    shuffled = [None] * len(texts)
    for lo in range(0, len(texts), 32):
        part = order[lo : lo + 32]
        for i, r in zip(part, pipe.score([texts[i] for i in part])):
            shuffled[i] = r
    out = {}
    for name, other in (("four_calls", four), ("shuffled_batches_of_32", shuffled)):
        out[name] = {
            "labels_changed": sum(
                a.score.sentiment != b.score.sentiment for a, b in zip(whole, other)
            ),
            "tag_sets_changed": sum(key(a)[1] != key(b)[1] for a, b in zip(whole, other)),
            "max_abs_score_change": round(
                max(
                    abs(a.score.sentiment_score - b.score.sentiment_score)
                    for a, b in zip(whole, other)
                ),
                4,
            ),
        }
    return out


def _encoder_probe(encoder, head, texts: list[str]) -> dict:
    whole = encoder.encode(texts)
    quarter = -(-len(texts) // 4)
    four = np.concatenate(
        [encoder.encode(texts[lo : lo + quarter]) for lo in range(0, len(texts), quarter)]
    )
    pw, pf = head.predict_proba(whole), head.predict_proba(four)
    return {
        "labels_changed": int((pw.argmax(1) != pf.argmax(1)).sum()),
        "max_abs_score_change": round(
            float(np.abs((pw[:, 2] - pw[:, 0]) - (pf[:, 2] - pf[:, 0])).max()), 4
        ),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pipeline", default=None)
    ap.add_argument("--probe", type=int, default=400)
    ap.add_argument("--no-dynamic", action="store_true")
    args = ap.parse_args(argv)

    from service.config import Settings
    from service.runtime import Runtime
    from training.embed_cache import embed_set
    from training.metrics import sentiment_metric
    from training.train_sentiment_head import datasets

    t0 = time.time()
    rt = Runtime(Settings())
    reg = rt.registry
    name = args.pipeline or rt.settings.scorer
    spec = reg.manifest.pipelines[name]
    if reg.encoder_runtime(spec.encoder) != "onnx-int8":
        raise SystemExit("no int8 build: run `radar models build`")
    head = reg.sentiment_head(spec.sentiment)
    int8 = reg.encoder(spec.encoder)
    fp32 = reg.encoder(spec.encoder, runtime="torch")
    enc_spec = reg.encoder_spec(spec.encoder)
    dynamic = None
    tmp = tempfile.TemporaryDirectory()
    if not args.no_dynamic:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        dyn_path = Path(tmp.name) / "model.dynamic-int8.onnx"
        quantize_dynamic(
            str(reg.onnx_dir(spec.encoder) / "model.onnx"),
            str(dyn_path),
            per_channel=True,
            weight_type=QuantType.QInt8,
        )
        dynamic = reg.new_encoder(
            spec.encoder, onnx_path=dyn_path, label=f"{spec.encoder}-dynamic-probe"
        )
    _, dev = datasets("multilingual" if not enc_spec.languages else "en", 1, 0)
    cache = rt.settings.model_cache_dir
    rows = []
    for s in dev:
        e32, e8 = embed_set(fp32, s, cache), embed_set(int8, s, cache)
        l32, l8 = _labels(head, e32), _labels(head, e8)
        row = {
            "set": s.name,
            "n": len(l32),
            "agree_int8": round(100 * float(np.mean(l8 == l32)), 2),
            "metric": sentiment_metric(s.name, s.binary, head.predict_proba(e8), s.labels)[0],
            "metric_fp32": round(
                sentiment_metric(s.name, s.binary, head.predict_proba(e32), s.labels)[1], 2
            ),
            "metric_int8": round(
                sentiment_metric(s.name, s.binary, head.predict_proba(e8), s.labels)[1], 2
            ),
        }
        if dynamic is not None:
            ed = embed_set(dynamic, s, Path(tmp.name))  # never cached across runs
            row["agree_dynamic"] = round(100 * float(np.mean(_labels(head, ed) == l32)), 2)
            row["metric_dynamic"] = round(
                sentiment_metric(s.name, s.binary, head.predict_proba(ed), s.labels)[1], 2
            )
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    texts = [t for s in dev if s.spans is None for t in s.texts]
    probe_texts = [
        texts[i] for i in np.random.default_rng(1).choice(len(texts), args.probe, replace=False)
    ]
    pipe = reg.pipeline(name)
    speed_texts = probe_texts[:400]
    speed = {
        "int8_items_per_s": round(_rate(int8, speed_texts), 1),
        "fp32_torch_items_per_s": round(_rate(fp32, speed_texts), 1),
    }
    if dynamic is not None:
        speed["dynamic_int8_items_per_s"] = round(_rate(dynamic, speed_texts), 1)
    speed["int8_vs_fp32"] = round(speed["int8_items_per_s"] / speed["fp32_torch_items_per_s"], 2)
    report = {
        "pipeline": name,
        "encoder": spec.encoder,
        "seconds": round(time.time() - t0, 1),
        "sets": rows,
        "lowest_agree_int8": min(r["agree_int8"] for r in rows),
        "lowest_agree_dynamic": min(r["agree_dynamic"] for r in rows)
        if dynamic is not None
        else None,
        "batch_composition": {
            "texts": len(probe_texts),
            "served_pipeline": _probe(pipe, probe_texts),
            "served_encoder": _encoder_probe(int8, head, probe_texts),
            **({"dynamic_encoder": _encoder_probe(dynamic, head, probe_texts)} if dynamic else {}),
        },
        "speed": speed,
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
