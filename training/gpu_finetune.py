"""Fine-tune multilingual-e5-small with LoRA adapters + the sentiment head on a GPU.

    python training/gpu_finetune.py --pack .gpu/pack.npz --out OUT_DIR [--epochs 2]

Runs where only PyTorch, transformers and peft are installed (the lent GPU machine): the
model is rebuilt from ``training/gpu_pack.py``'s file (4-bit blocks dequantised with the
project's own code). Two-class examples use only the negative/positive logits. Prints dev
metrics per epoch and writes ``adapter.safetensors`` (LoRA A/B per module + head) and
``metrics.json`` to OUT_DIR.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from service.nlp.build.e5_build import (  # noqa: E402
    _Q4,
    QK,
    assemble_state_dict,
    dequantize_q4_0,
    xlmr_config,
)


def load_pack(path: Path):
    z = np.load(path)
    meta = json.loads(bytes(z["meta"]).decode())
    h = meta["header"]

    def tensor(name: str, rows: int | None = None) -> np.ndarray:
        raw = z[f"t:{name}"].reshape(-1)
        info = meta["tensors"][name]
        arr = (
            raw.view("<f4")[: info["count"]]
            if info["dtype"] == 0
            else dequantize_q4_0(raw.view(_Q4)[: info["count"] // QK])
        )
        return arr.reshape(rows, -1) if rows else arr

    sd = assemble_state_dict(h, vocab=meta["vocab"], array=tensor)
    sets = [
        (
            s,
            torch.from_numpy(z[f"ids:{s['key']}"].astype(np.int64)),
            torch.from_numpy(z[f"y:{s['key']}"].astype(np.int64)),
        )
        for s in meta["sets"]
    ]
    return meta, sd, sets


def metric(s, probs: np.ndarray, y: np.ndarray) -> tuple[str, float]:
    from sklearn.metrics import f1_score, recall_score

    if s["binary"]:
        return "acc", float(np.mean(np.where(probs[:, 2] >= probs[:, 0], 2, 0) == y))
    pred = probs.argmax(1)
    if s["name"].startswith("tweeteval"):
        return "macro_recall", float(recall_score(y, pred, average="macro", labels=[0, 1, 2]))
    return "macro_f1", float(f1_score(y, pred, average="macro", labels=[0, 1, 2]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pack", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument(
        "--lr",
        type=float,
        default=5e-5,
        help="3e-4 collapsed English 3-class tweets; 5e-5 did not.",
    )
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument(
        "--binary-weight",
        type=float,
        default=1.0,
        help="Multiplier on two-class sets (they push the shared space towards polar).",
    )
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    from peft import LoraConfig, get_peft_model
    from transformers import XLMRobertaModel

    t0 = time.time()
    meta, sd, sets = load_pack(args.pack)
    h, sp = meta["header"], meta["specials"]
    cfg = xlmr_config(h, vocab=meta["vocab"], pad=sp["pad"])
    model = XLMRobertaModel(cfg, add_pooling_layer=False)
    missing = model.load_state_dict(
        {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}, strict=False
    )
    assert not missing.unexpected_keys, missing
    model = get_peft_model(
        model,
        LoraConfig(
            r=args.rank,
            lora_alpha=2 * args.rank,
            lora_dropout=0.05,
            target_modules=["query", "key", "value", "dense"],
        ),
    )
    head = torch.nn.Sequential(
        torch.nn.Linear(h["hidden"], 512),
        torch.nn.GELU(),
        torch.nn.Dropout(0.1),
        torch.nn.Linear(512, 3),
    )
    model.to(dev), head.to(dev)
    train = [(s, x, y) for s, x, y in sets if s["kind"] == "train"]
    devsets = [(s, x, y) for s, x, y in sets if s["kind"] == "dev"]
    X = torch.cat([x for _, x, _ in train])
    Y = torch.cat([y for _, _, y in train])
    B = torch.cat([torch.full((len(y),), s["binary"]) for s, _, y in train])
    W = torch.cat(
        [
            torch.full((len(y),), float(s["weight"]) * (args.binary_weight if s["binary"] else 1.0))
            for s, _, y in train
        ]
    )
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    steps = args.epochs * ((len(X) + args.batch - 1) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, total_steps=steps, pct_start=0.06
    )
    pad = sp["pad"]

    def embed(ids: torch.Tensor) -> torch.Tensor:
        ids = ids.to(dev)
        longest = int((ids != pad).sum(1).max())
        ids = ids[:, :longest]
        mask = (ids != pad).long()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            hid = model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).float()
        return torch.nn.functional.normalize((hid.float() * m).sum(1) / m.sum(1), dim=1)

    def evaluate(tag: str) -> dict:
        model.eval()
        head.eval()
        res = {}
        with torch.no_grad():
            for s, x, y in devsets:
                probs = torch.cat(
                    [
                        torch.softmax(head(embed(x[i : i + 512])), 1).cpu()
                        for i in range(0, len(x), 512)
                    ]
                )
                name, val = metric(s, probs.numpy(), y.numpy())
                res[s["name"]] = {name: round(100 * val, 2)}
        um = [v["macro_f1"] for k, v in res.items() if k.startswith("umsab-")]
        res["umsab-mean"] = round(float(np.mean(um)), 2)
        print(tag, json.dumps(res), flush=True)
        model.train()
        head.train()
        return res

    results = []
    for epoch in range(args.epochs):
        perm = torch.randperm(len(X))
        for i in range(0, len(X), args.batch):
            b = perm[i : i + args.batch]
            logits = head(embed(X[b]))
            y, bi, w = Y[b].to(dev), B[b].to(dev), W[b].to(dev)
            full = torch.nn.functional.cross_entropy(logits, y, reduction="none")
            two = torch.nn.functional.cross_entropy(
                logits[:, [0, 2]], (y == 2).long(), reduction="none"
            )
            loss = (torch.where(bi, two, full) * w).sum() / w.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        results.append(evaluate(f"epoch {epoch + 1} ({time.time() - t0:.0f}s)"))
    from safetensors.torch import save_file

    args.out.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"lora.{k}": v.detach().float().cpu().contiguous()
        for k, v in model.state_dict().items()
        if "lora_" in k
    }
    tensors.update(
        {f"head.{k}": v.detach().float().cpu().contiguous() for k, v in head.state_dict().items()}
    )
    save_file(
        tensors,
        str(args.out / "adapter.safetensors"),
        metadata={"rank": str(args.rank), "alpha": str(2 * args.rank)},
    )
    (args.out / "metrics.json").write_text(
        json.dumps(
            {
                "epochs": results,
                "wall_s": round(time.time() - t0, 1),
                "device": str(torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"),
                "train_examples": len(X),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
