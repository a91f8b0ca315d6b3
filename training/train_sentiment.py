"""Fine-tune the multilingual encoder for 3-class sentiment on CPU: LoRA on the top layers.

    python -m training.train_sentiment [--freeze 8 --rank 8 --epochs 2 --max-per-set 5000 --threads 2]

What it trains: low-rank adapters (``service/nlp/build/lora.py``) on every linear layer of the
encoder's top ``12 - freeze`` layers, and the sentiment MLP head on the pooled embedding.
The bottom ``freeze`` layers stay frozen, so their output is computed once per training
text and cached on disk (``<model cache>/finetune/``); each step then runs only the top
layers forward and backward, which is what makes fine-tuning fit on 2 CPU cores.

Data: ``training.train_sentiment_head.datasets('multilingual')`` (SST-2, TweetEval, UMSAB × 8,
ChnSentiCorp, online_shopping_10_cats, review clauses from MAMS and SemEval laptops), every
dev text removed from training first (ChnSentiCorp dev also out of online_shopping).
Two-class sets are scored on the negative/positive logits only, so they never teach that
nothing is neutral. A keep-loss ``λ·(1 − cos(new, base))`` holds the pooled embedding near
the base encoder's, so zero-shot aspects, themes and phrase matching keep working on it.
10% of each training set fits the temperature (calibration; ECE before/after on dev).

Progress is shown per step; a checkpoint is written every ``--checkpoint-every`` steps and a
re-run with the same arguments resumes from it. Output: ``models/<adapter>.safetensors``
(adapters, a few MB), ``models/<name>.safetensors`` (the head) and their manifest entries;
``radar models build`` merges the adapter into the encoder and exports int8 ONNX.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from service.config import Settings
from service.nlp.build.lora import add_lora, save_adapter
from service.nlp.sentiment import SentimentHead
from training import data as D
from training.checkpoints import resume, run_checkpoint, save_checkpoint
from training.manifest import model_registry, update_artifact
from training.metrics import sentiment_row, table
from training.train_sentiment_head import _loss, _split, _weight, datasets, fit_temperature


class Prefix:
    """Cached output of the frozen bottom layers for one labeled set: ragged fp16 token states,
    the pooling range of each example and the base encoder's pooled embedding. ``subset``
    gives a view of some examples without copying the states."""

    def __init__(
        self,
        states: np.ndarray,
        offsets: np.ndarray,
        pool: np.ndarray,
        base: np.ndarray,
        index: np.ndarray | None = None,
    ):
        self.states, self.offsets, self._pool, self._base = states, offsets, pool, base
        self.index = np.arange(len(pool)) if index is None else index

    def __len__(self) -> int:
        return len(self.index)

    def subset(self, rows: np.ndarray) -> Prefix:
        return Prefix(self.states, self.offsets, self._pool, self._base, self.index[rows])

    def lengths(self) -> np.ndarray:
        return self.offsets[self.index + 1] - self.offsets[self.index]

    def base(self, rows: np.ndarray) -> np.ndarray:
        return self._base[self.index[rows]].astype(np.float32)

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = self.index[rows]
        lengths = self.offsets[idx + 1] - self.offsets[idx]
        width = int(lengths.max())
        h = np.zeros((len(idx), width, self.states.shape[1]), np.float32)
        mask = np.zeros((len(idx), width), np.float32)
        pool = np.zeros((len(idx), width), np.float32)
        for j, i in enumerate(idx):
            n = lengths[j]
            h[j, :n] = self.states[self.offsets[i] : self.offsets[i + 1]]
            mask[j, :n] = 1
            a, b = self._pool[i]
            pool[j, a:b] = 1
        return torch.from_numpy(h), torch.from_numpy(mask), torch.from_numpy(pool)


def _tokenize(
    tok, s: D.LabeledSet, prefix: str, max_len: int
) -> tuple[list[list[int]], list[tuple[int, int]]]:
    """Token ids (with ``<s>``/``</s>``, at most ``max_len``) and the pooling range per example:
    the whole sequence for a text, the clause's tokens for a clause in its sentence."""
    if s.spans is None:
        enc = tok(
            [prefix + t for t in s.texts],
            add_special_tokens=True,
            truncation=True,
            max_length=max_len,
        )
        ids = enc["input_ids"]
        return ids, [(0, len(x)) for x in ids]
    sents = [sent for sent, _ in s.spans]
    enc = tok([prefix + t for t in sents], add_special_tokens=False, return_offsets_mapping=True)
    out_ids, pools = [], []
    shift = len(prefix)
    for k, (ids, offs) in enumerate(zip(enc["input_ids"], enc["offset_mapping"])):
        a, b = s.spans[k][1]
        inside = [j for j, (x, y) in enumerate(offs) if y > x and x - shift < b and y - shift > a]
        lo = max(0, min(inside[0], len(ids) - (max_len - 2))) if inside else 0
        window = ids[lo : lo + max_len - 2]
        out_ids.append([tok.cls_token_id, *window, tok.sep_token_id])
        sel = [j - lo + 1 for j in inside if lo <= j < lo + len(window)]
        pools.append((sel[0], sel[-1] + 1) if sel else (0, len(window) + 2))
    return out_ids, pools


def build_prefix(
    model,
    tok,
    s: D.LabeledSet,
    *,
    prefix: str,
    freeze: int,
    max_len: int,
    folder: Path,
    batch: int = 64,
) -> Prefix:
    """Run the frozen encoder once over a set (resumable per set) and keep layer ``freeze``'s
    states plus the base pooled embedding."""
    ids, pools = _tokenize(tok, s, prefix, max_len)
    digest = hashlib.sha1(json.dumps([ids, pools]).encode()).hexdigest()[:12]
    path = folder / f"{s.name.replace('/', '_')}-{digest}.npz"
    if path.exists():
        z = np.load(path)
        return Prefix(z["states"], z["offsets"], z["pool"], z["base"])
    lengths = np.array([len(x) for x in ids])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    states = np.zeros((offsets[-1], model.config.hidden_size), np.float16)
    base = np.zeros((len(ids), model.config.hidden_size), np.float16)
    order = np.argsort(-lengths, kind="stable")
    pad = tok.pad_token_id
    with (
        torch.inference_mode(),
        tqdm(
            total=len(ids), desc=f"frozen layers {s.name}", unit="text", dynamic_ncols=True
        ) as bar,
    ):
        for k in range(0, len(order), batch):
            idx = order[k : k + batch]
            width = int(lengths[idx].max())
            x = torch.full((len(idx), width), pad, dtype=torch.long)
            m = torch.zeros((len(idx), width), dtype=torch.long)
            pm = torch.zeros((len(idx), width))
            for j, i in enumerate(idx):
                x[j, : lengths[i]] = torch.tensor(ids[i])
                m[j, : lengths[i]] = 1
                pm[j, pools[i][0] : pools[i][1]] = 1
            out = model(input_ids=x, attention_mask=m, output_hidden_states=True)
            hid = out.hidden_states[freeze].numpy()
            last = out.last_hidden_state
            pooled = torch.nn.functional.normalize(
                (last * pm.unsqueeze(-1)).sum(1) / pm.sum(1, keepdim=True), dim=1
            )
            for j, i in enumerate(idx):
                states[offsets[i] : offsets[i + 1]] = hid[j, : lengths[i]]
            base[idx] = pooled.numpy()
            bar.update(len(idx))
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, states=states, offsets=offsets, pool=np.array(pools), base=base)
    tmp.replace(path)
    return Prefix(states, offsets, np.array(pools), base)


class TopModel(torch.nn.Module):
    """The encoder's top layers (with adapters) + mean pooling + the sentiment head."""

    def __init__(self, encoder_model, freeze: int, hidden: int):
        super().__init__()
        self.layers = torch.nn.ModuleList(encoder_model.encoder.layer[freeze:])
        dim = encoder_model.config.hidden_size
        self.head = torch.nn.Sequential(
            torch.nn.Linear(dim, hidden),
            torch.nn.GELU(),
            torch.nn.Dropout(0.1),
            torch.nn.Linear(hidden, 3),
        )

    def pooled(self, h: torch.Tensor, mask: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
        ext = (1.0 - mask)[:, None, None, :] * torch.finfo(h.dtype).min
        for layer in self.layers:
            out = layer(h, attention_mask=ext)
            h = out[0] if isinstance(out, tuple) else out
        v = (h * pool.unsqueeze(-1)).sum(1) / pool.sum(1, keepdim=True)
        return torch.nn.functional.normalize(v, dim=1)

    def forward(self, h, mask, pool):
        v = self.pooled(h, mask, pool)
        return self.head(v), v


def _batches(
    prefixes: list[Prefix], batch: int, rng: np.random.Generator
) -> list[list[tuple[int, int]]]:
    """Random batches of similar length (less padding): shuffle, sort within pools of 50 batches."""
    items = [(k, i) for k, p in enumerate(prefixes) for i in range(len(p))]
    perm = rng.permutation(len(items))
    lengths = [p.lengths() for p in prefixes]
    length = {(k, i): int(lengths[k][i]) for k, i in items}
    out = []
    pool = 50 * batch
    for s in range(0, len(perm), pool):
        chunk = sorted((items[j] for j in perm[s : s + pool]), key=lambda it: length[it])
        out += [chunk[j : j + batch] for j in range(0, len(chunk), batch)]
    order = rng.permutation(len(out))
    return [out[j] for j in order]


def _run_batch(top: TopModel, prefixes: list[Prefix], items: list[tuple[int, int]]):
    """Forward one mixed batch; rows come back grouped per set in ``items`` order."""
    hs, vs, rows = [], [], []
    for k in sorted({k for k, _ in items}):
        idx = np.array([i for kk, i in items if kk == k])
        h, m, p = prefixes[k].batch(idx)
        logits, v = top(h, m, p)
        hs.append(logits)
        vs.append(v)
        rows.append((k, idx))
    return torch.cat(hs), torch.cat(vs), rows


def predict(top: TopModel, prefix: Prefix, batch: int = 128) -> np.ndarray:
    """Raw logits for a whole set (eval mode, no grad)."""
    top.eval()
    out = np.zeros((len(prefix), 3), np.float32)
    order = np.argsort(-prefix.lengths())
    with torch.inference_mode():
        for k in range(0, len(order), batch):
            idx = order[k : k + batch]
            logits, _ = top(*prefix.batch(idx))
            out[idx] = logits.numpy()
    top.train()
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--encoder", default="multilingual-e5-small")
    ap.add_argument("--name", default="sentiment-e5-lora-v1", help="The sentiment head artifact.")
    ap.add_argument("--adapter", default="e5-lora-sentiment-v1", help="The LoRA adapter artifact.")
    ap.add_argument(
        "--init-head",
        default="sentiment-e5-v1",
        help="Start the head from this frozen-encoder head ('' for random).",
    )
    ap.add_argument(
        "--freeze", type=int, default=8, help="Bottom layers kept frozen (cached once)."
    )
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-4, help="Adapters; the head gets 2x.")
    ap.add_argument(
        "--keep", type=float, default=1.0, help="Weight of the keep-near-base embedding loss."
    )
    ap.add_argument("--max-per-set", type=int, default=5000)
    ap.add_argument(
        "--set-size",
        action="append",
        default=["tweeteval=15000"],
        metavar="SET=N",
        help="Per-set cap overriding --max-per-set (set name before the '/', repeatable).",
    )
    ap.add_argument(
        "--binary-weight",
        type=float,
        default=0.5,
        help="Multiplier on the two-class sets' loss (they pull the space towards polar).",
    )
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--checkpoint-every", type=int, default=200)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)
    t0 = time.time()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    settings = Settings()
    reg = model_registry(settings)
    spec = reg.encoder_spec(args.encoder)
    from transformers import AutoModel, AutoTokenizer

    path = reg.encoder_path(args.encoder)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(
        path, add_pooling_layer=False, attn_implementation="eager"
    ).eval()
    from service.nlp.checksums import sha256_file

    enc_digest = sha256_file(path / "model.safetensors")
    folder = (
        settings.model_cache_dir
        / "finetune"
        / f"{args.encoder}-f{args.freeze}-L{args.max_len}-{enc_digest[:8]}"
    )

    caps = dict(kv.split("=", 1) for kv in args.set_size)
    train, dev = datasets("multilingual", None, args.seed)
    train = [
        D.sample(s, int(caps.get(s.name.split("/")[0], args.max_per_set)), args.seed) for s in train
    ]
    for s in train:
        extra = f", sampled from {s.meta['sampled_from']}" if "sampled_from" in s.meta else ""
        print(
            f"{s.name}: {len(s)} rows after removing {s.meta['removed']} that appear in a dev set{extra}"
        )

    def pre(s):
        return build_prefix(
            model,
            tok,
            s,
            prefix=spec.prefix,
            freeze=args.freeze,
            max_len=args.max_len,
            folder=folder,
        )

    train_p, cal_p, cal_sets, parts = [], [], [], []
    for k, s in enumerate(train):
        p = pre(s)
        tr, cal = _split(len(s), 0.1, args.seed + k)
        train_p.append(p.subset(tr))
        cal_p.append(p.subset(cal))
        y = np.asarray(s.labels)
        parts.append((y[tr], s.binary, _weight(s.name) * (args.binary_weight if s.binary else 1.0)))
        cal_sets.append((y[cal], s.binary))
    dev_p = [pre(s) for s in dev]
    print(f"frozen-layer cache ready ({time.time() - t0:.0f}s)")

    wrapped = add_lora(
        model,
        list(range(args.freeze, model.config.num_hidden_layers)),
        args.rank,
        args.alpha,
        dropout=0.05,
    )
    top = TopModel(model, args.freeze, args.hidden)
    if args.init_head:
        h0 = reg.sentiment_head(args.init_head)
        with torch.no_grad():
            top.head[0].weight.copy_(torch.from_numpy(h0.hidden_weight))
            top.head[0].bias.copy_(torch.from_numpy(h0.hidden_bias))
            top.head[3].weight.copy_(torch.from_numpy(h0.weight))
            top.head[3].bias.copy_(torch.from_numpy(h0.bias))
    lora_params = [p for m in wrapped.values() for p in (m.lora_A, m.lora_B)]
    opt = torch.optim.AdamW(
        [
            {"params": lora_params, "lr": args.lr},
            {"params": top.head.parameters(), "lr": 2 * args.lr},
        ],
        weight_decay=0.01,
    )
    rng = np.random.default_rng(args.seed)
    plan = [_batches(train_p, args.batch, rng) for _ in range(args.epochs)]
    steps = sum(len(p) for p in plan)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=[args.lr, 2 * args.lr],
        total_steps=steps,
        pct_start=0.05,
        anneal_strategy="linear",
    )
    ckpt = run_checkpoint(
        settings.model_cache_dir, args.adapter, [vars(args), [(s.name, len(s)) for s in train]]
    )
    step = resume(ckpt, "step", top=top, opt=opt, sched=sched)
    if step:
        print(f"resuming at step {step} of {steps}")
    flat = [b for p in plan for b in p]
    ys = [torch.from_numpy(y) for y, _, _ in parts]
    top.train()
    bar = tqdm(total=steps, initial=step, desc="fine-tune", unit="step", dynamic_ncols=True)
    avg = None
    while step < steps:
        items = flat[step]
        logits, v, rows = _run_batch(top, train_p, items)
        y = torch.cat([ys[k][idx] for k, idx in rows])
        binary = torch.cat([torch.full((len(idx),), parts[k][1]) for k, idx in rows])
        w = torch.cat([torch.full((len(idx),), float(parts[k][2])) for k, idx in rows])
        base = torch.cat([torch.from_numpy(train_p[k].base(idx)) for k, idx in rows])
        keep = (1 - (v * base).sum(1)).mean()
        loss = _loss(logits, y, binary, w) + args.keep * keep
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        avg = float(loss) if avg is None else 0.98 * avg + 0.02 * float(loss)
        bar.update(1)
        bar.set_postfix(loss=f"{avg:.3f}", keep=f"{float(keep):.4f}")
        if step % args.checkpoint_every == 0 or step == steps:
            save_checkpoint(ckpt, "step", step, top=top, opt=opt, sched=sched)
    bar.close()

    # calibration on the held-out 10% of train, then the dev table
    cal_logits = np.concatenate([predict(top, p) for p in cal_p])
    cal_y = np.concatenate([y for y, _ in cal_sets])
    cal_b = np.concatenate([np.full(len(y), b) for y, b in cal_sets])
    sd = {k: v.detach().numpy().copy() for k, v in top.head.state_dict().items()}
    parts_head = dict(
        weight=sd["3.weight"],
        bias=sd["3.bias"],
        hidden_weight=sd["0.weight"],
        hidden_bias=sd["0.bias"],
    )
    temperature = fit_temperature(cal_logits, cal_y, cal_b)
    head = SentimentHead(temperature=temperature, **parts_head)
    print(f"temperature fitted on the held-out 10% of train: {temperature:.3f}")
    rows, metrics = [], {}
    for s, p in zip(dev, dev_p):
        z = predict(top, p)
        row = sentiment_row(s, _softmax(z / temperature), _softmax(z))
        rows.append(row)
        metrics[s.name] = {
            k: round(v, 4) if isinstance(v, float) else v for k, v in row.items() if k != "set"
        }
    um = [r["value"] for r in rows if r["set"].startswith("umsab-")]
    rows.append(
        {"set": "umsab (8 languages)", "metric": "mean macro F1", "value": float(np.mean(um))}
    )
    metrics["umsab/val-mean"] = {"metric": "mean macro F1", "value": round(float(np.mean(um)), 4)}
    print(table(rows, ["set", "metric", "value", "ece_before", "ece_after"]))

    wall = time.time() - t0
    adapter_file = settings.models_dir / f"{args.adapter}.safetensors"
    save_adapter(adapter_file, wrapped, rank=args.rank, alpha=args.alpha)
    head_file = settings.models_dir / f"{args.name}.safetensors"
    head.save(head_file)
    command = (
        f"python -m training.train_sentiment --freeze {args.freeze} --rank {args.rank} --alpha {args.alpha} "
        f"--epochs {args.epochs} --batch {args.batch} --lr {args.lr} --keep {args.keep} "
        f"--max-per-set {args.max_per_set} {' '.join('--set-size ' + x for x in args.set_size)} "
        f"--binary-weight {args.binary_weight} --max-len {args.max_len} --seed {args.seed} "
        f"({wall / 60:.0f} min on this machine, 2 cores, frozen-layer cache included)"
    )
    data_lines = [
        f"{s.name} ({len(s)} rows, dev texts removed"
        + (f", sampled from {s.meta['sampled_from']}" if "sampled_from" in s.meta else "")
        + ")"
        for s in train
    ]
    update_artifact(
        settings.models_dir,
        args.adapter,
        {
            "kind": "lora_adapter",
            "base": args.encoder,
            "files": {"weights": {"path": adapter_file.name}},
            "params": {
                "rank": args.rank,
                "alpha": args.alpha,
                "layers": list(range(args.freeze, model.config.num_hidden_layers)),
            },
            "training_data": data_lines,
            "trained_with": command,
        },
    )
    update_artifact(
        settings.models_dir,
        args.name,
        {
            "kind": "sentiment_head",
            "base": f"{args.encoder}+{args.adapter}",
            "files": {"weights": {"path": head_file.name}},
            "labels": list(head.labels),
            "params": {"temperature": round(temperature, 4)},
            "metrics": metrics,
            "training_data": data_lines,
            "trained_with": command,
        },
    )
    print(
        json.dumps(
            {"adapter": args.adapter, "head": args.name, "steps": steps, "wall_s": round(wall, 1)}
        )
    )


if __name__ == "__main__":
    main()
