"""The int8 encoder against what this machine could do: multiply-adds per second achieved by the
served int8 graph and by fp32 PyTorch on the same batches, next to the cores' nominal peaks, and
where the int8 graph's time goes by operator.

    python benchmarks/encoder_bound.py [--items 2000]

1. **Work.** The demo texts are tokenised and batched as the pipeline does (length-sorted
   batches of ``scoring.batch_size``); per batch, the multiply-adds of multilingual-e5-small's
   12 layers at the padded length ``T``: ``4·H² + 2·H·I`` per token for the projections and
   feed-forward, plus ``2·H·T`` for attention (``H`` hidden size, ``I`` feed-forward size, from
   the model's config). Padding is counted apart: it is work the batches do for nothing.
2. **Achieved.** The encoder alone (no heads, no tagger) over those batches: the int8 ONNX graph
   as served, and fp32 PyTorch; tokens/s and GMAC/s, best of 2.
3. **Peaks.** From the CPU flags and the clock in ``/proc/cpuinfo`` (nominal, not measured):
   int8 multiply-adds per cycle per core (AMX-INT8 1,024; AVX512-VNNI 128; AVX2 64) and fp32
   (AVX-512 32, AVX2 16) times cores times clock. A share of a nominal peak says how far off the
   hardware a runtime is; it is not a target that software can always reach.
4. **Where the int8 time goes.** ONNX Runtime's own profiler on the same batches: time per
   operator type (the integer matrix products against the per-token quantisation around them).

Prints one JSON object. Figures from one machine at one time: compare within a run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def cpu() -> dict:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = set()
    mhz = 0.0
    for line in info.splitlines():
        if line.startswith("flags") and not flags:
            flags = set(line.split(":", 1)[1].split())
        if line.startswith("cpu MHz") and not mhz:
            mhz = float(line.split(":", 1)[1])
    cores = len(os.sched_getaffinity(0))
    int8 = (
        1024
        if "amx_int8" in flags
        else 128
        if "avx512_vnni" in flags
        else 64
        if "avx2" in flags
        else 16
    )
    fp32 = 32 if "avx512f" in flags else 16 if "fma" in flags else 4
    ghz = mhz / 1000
    return {
        "cores": cores,
        "ghz": ghz,
        "int8_macs_per_cycle_core": int8,
        "fp32_macs_per_cycle_core": fp32,
        "int8_peak_gmacs": round(int8 * cores * ghz, 1),
        "fp32_peak_gmacs": round(fp32 * cores * ghz, 1),
        "flags": sorted(
            f
            for f in flags
            if f
            in {
                "avx2",
                "fma",
                "avx512f",
                "avx512_vnni",
                "avx_vnni",
                "amx_int8",
                "amx_bf16",
                "amx_tile",
            }
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--items", type=int, default=2000)
    args = ap.parse_args()

    import numpy as np
    import onnxruntime as ort
    import torch

    from service.config import Settings
    from service.demo.generator import DemoConfig, DemoGenerator
    from service.nlp.encoder import length_sorted_batches
    from service.runtime import Runtime

    gen = DemoGenerator(DemoConfig(per_week=max(args.items // 26 + 1, 1), seed=11))
    texts = [row["text"] for row, _ in gen.items()][: args.items]
    rt = Runtime(Settings())
    spec = rt.registry.manifest.pipelines[rt.settings.scorer]
    int8 = rt.registry.encoder(spec.encoder)
    fp32 = rt.registry.encoder(spec.encoder, runtime="torch")
    model, tok = int8._load()
    cfg = json.loads((int8.path / "config.json").read_text())
    H, I, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]

    rows = int8._rows(texts, int8.prefix)
    batches = []
    for idx in length_sorted_batches([len(r.ids) for r in rows], int8.batch_size):
        T = max(len(rows[i].ids) for i in idx) + 2
        ids = np.full((len(idx), T), tok.pad_token_id, np.int64)
        mask = np.zeros((len(idx), T), np.int64)
        for j, i in enumerate(idx):
            seq = [tok.cls_token_id, *rows[i].ids, tok.sep_token_id]
            ids[j, : len(seq)] = seq
            mask[j, : len(seq)] = 1
        batches.append((ids, mask))
    real = sum(int(m.sum()) for _, m in batches)
    padded = sum(m.size for _, m in batches)
    macs = sum(m.size * layers * (4 * H * H + 2 * H * I + 2 * H * m.shape[1]) for _, m in batches)

    def run_int8() -> float:
        t0 = time.perf_counter()
        for ids, mask in batches:
            model(ids, mask)
        return time.perf_counter() - t0

    tm, _ = fp32._load()

    def run_fp32() -> float:
        t0 = time.perf_counter()
        with torch.inference_mode():
            for ids, mask in batches:
                tm(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
        return time.perf_counter() - t0

    run_int8(), run_fp32()  # warm
    t_int8 = min(run_int8(), run_int8())
    t_fp32 = min(run_fp32(), run_fp32())
    peaks = cpu()

    # operator profile of the served graph on the same batches
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_profiling = True
    with tempfile.TemporaryDirectory() as d:
        opts.profile_file_prefix = str(Path(d) / "ort")
        sess = ort.InferenceSession(str(int8.onnx_path), opts, providers=["CPUExecutionProvider"])
        for ids, mask in batches:
            sess.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask})
        trace = json.loads(Path(sess.end_profiling()).read_text())
    by_op: Counter = Counter()
    for ev in trace:
        if ev.get("cat") == "Node" and ev.get("name", "").endswith("_kernel_time"):
            by_op[ev.get("args", {}).get("op_name", "?")] += ev.get("dur", 0)
    total_us = sum(by_op.values()) or 1
    ops = {op: round(us / total_us, 3) for op, us in by_op.most_common(12)}
    quant = {"Abs", "ReduceMax", "Max", "Div", "Round", "Add", "Clip", "Cast", "Mul"}

    def speed(seconds: float, precision: str) -> dict:
        """One encoder's rates over the batches, and its share of the CPU's peak at ``precision``."""
        gmacs = macs / seconds / 1e9
        return {
            "seconds": round(seconds, 2),
            "items_per_s": round(len(texts) / seconds, 1),
            "tokens_per_s": round(real / seconds),
            "gmacs": round(gmacs, 1),
            f"share_of_{precision}_peak": round(gmacs / peaks[f"{precision}_peak_gmacs"], 3),
        }

    out = {
        "items": len(texts),
        "rows": len(rows),
        "batches": len(batches),
        "batch_size": int8.batch_size,
        "tokens": {"real": real, "padded_to": padded, "padding_share": round(1 - real / padded, 3)},
        "gmac_per_pass": round(macs / 1e9, 2),
        "macs_per_token_layer_stack": layers * (4 * H * H + 2 * H * I),
        "int8_onnx": speed(t_int8, "int8"),
        "fp32_torch": speed(t_fp32, "fp32"),
        "int8_over_fp32": round(t_fp32 / t_int8, 2),
        "cpu": peaks,
        "int8_time_by_operator": ops,
        "int8_share_integer_matmul": round(by_op.get("MatMulInteger", 0) / total_us, 3),
        "int8_share_quantisation_ops": round(
            sum(v for k, v in by_op.items() if k in quant) / total_us, 3
        ),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
