"""Pack what a GPU fine-tuning run needs into one small file (the device takes ≤ 64 MiB).

    python -m training.gpu_pack [--max-per-set 40000] [--out .gpu/pack.npz]

The e5 weights travel in their 4-bit form, and of the 250k-row word embedding only the rows
the training and dev texts use; texts travel as token ids (``passage: `` prefix, 128
tokens) remapped to that slim vocabulary. ``training/gpu_finetune.py`` rebuilds the model
from it on the device.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from service.config import Settings
from service.nlp.build.e5_build import read_e5_file
from training.manifest import model_registry
from training.train_sentiment_head import _weight, datasets

ENCODER = "multilingual-e5-small"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--max-per-set", type=int, default=40000)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--out", type=Path, default=Path(".gpu/pack.npz"))
    args = ap.parse_args(argv)
    from transformers import AutoTokenizer

    settings = Settings()
    reg = model_registry(settings)
    spec = reg.encoder_spec(ENCODER)
    f = read_e5_file(reg.package_path(ENCODER) / spec.file)
    tok = AutoTokenizer.from_pretrained(reg.encoder_path(ENCODER))
    train, dev = datasets("multilingual", args.max_per_set, args.seed)
    sets = [("train", s) for s in train] + [("dev", s) for s in dev]
    encoded = []
    for kind, s in sets:
        ids = tok([spec.prefix + t for t in s.texts], truncation=True, max_length=args.max_tokens)[
            "input_ids"
        ]
        encoded.append((kind, s, ids))
    used = sorted(
        {i for _, _, ids in encoded for seq in ids for i in seq} | set(f.specials.values())
    )
    remap = np.full(f.header["vocab"], -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    arrays: dict[str, np.ndarray] = {}
    dtype, count, off, nbytes = f.tensors["emb.word"]
    row = nbytes // f.header["vocab"]
    words = np.frombuffer(f.raw[off : off + nbytes], dtype=np.uint8).reshape(f.header["vocab"], row)
    arrays["t:emb.word"] = words[used]
    meta = {
        "header": f.header,
        "specials": {k: int(remap[v]) for k, v in f.specials.items()},
        "vocab": len(used),
        "tensors": {},
        "sets": [],
    }
    for name, (dt, cnt, o, nb) in f.tensors.items():
        if name != "emb.word":
            arrays[f"t:{name}"] = np.frombuffer(f.raw[o : o + nb], dtype=np.uint8)
        meta["tensors"][name] = {
            "dtype": dt,
            "count": cnt if name != "emb.word" else len(used) * f.header["hidden"],
        }
    pad = meta["specials"]["pad"]
    for k, (kind, s, ids) in enumerate(encoded):
        mat = np.full((len(ids), args.max_tokens), pad, dtype=np.int32)
        for r, seq in enumerate(ids):
            mat[r, : len(seq)] = remap[seq]
        arrays[f"ids:{k}"] = mat
        arrays[f"y:{k}"] = np.asarray(s.labels, dtype=np.int8)
        meta["sets"].append(
            {
                "key": k,
                "kind": kind,
                "name": s.name,
                "binary": s.binary,
                "n": len(ids),
                "weight": _weight(s.name) if kind == "train" else 1.0,
            }
        )
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    np.save(args.out.with_name("vocab_map.npy"), np.asarray(used, dtype=np.int64))
    print(
        json.dumps(
            {
                "out": str(args.out),
                "bytes": args.out.stat().st_size,
                "vocab": len(used),
                "train": sum(x["n"] for x in meta["sets"] if x["kind"] == "train"),
                "dev": sum(x["n"] for x in meta["sets"] if x["kind"] == "dev"),
            }
        )
    )


if __name__ == "__main__":
    main()
