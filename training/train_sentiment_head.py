"""Train the 3-class sentiment head over a frozen packaged encoder.

    python -m training.train_sentiment_head [--encoder minilm-l6-en] [--name sentiment-minilm-v1]

Data (English, read from ../shared/data): SST-2 train (two-class), TweetEval train and
UMSAB-English train (three-class), and review clauses labeled by the polarity of the aspect
terms in them (MAMS ATSA train, SemEval-2014 laptops train): the clause is the unit aspect
sentiment is read from. Every dev/val text is removed from training first.
Two-class examples are scored on the negative/positive logits only (the loss never sees
the neutral logit), so they teach polarity without teaching that nothing is neutral.
10% of each training set is held out to fit the temperature (calibration). Embeddings are
cached in chunks and training checkpoints every epoch, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from tqdm import tqdm

from service.config import Settings
from service.nlp.sentiment import SentimentHead
from training import data as D
from training.checkpoints import resume, run_checkpoint, save_checkpoint
from training.embed_cache import embed_set
from training.manifest import model_registry, update_artifact
from training.metrics import sentiment_row, table

DATASET_WEIGHT = {
    "sst2": 1.5,
    "tweeteval": 1.0,
    "umsab": 3.0,
    "mams-clauses": 4.0,
    "laptop-clauses": 4.0,
    "chnsenticorp": 1.5,
    "online_shopping": 1.0,
}


def _weight(name: str) -> float:
    key = name.split("/")[0]
    return DATASET_WEIGHT["umsab" if key.startswith("umsab-") else key]


def datasets(preset: str, max_per_set: int | None, seed: int):
    """``(train, dev)`` sets for a preset; every dev text is removed from training."""
    if preset == "en":
        dev = [D.sst2("dev"), D.tweeteval("val"), D.umsab("english", "val"), D.mams_clauses("val")]
        train = [
            D.sst2("train"),
            D.tweeteval("train"),
            D.umsab("english", "train"),
            D.mams_clauses("train"),
            D.laptop_clauses(),
        ]
    elif preset == "multilingual":
        dev = [
            D.sst2("dev"),
            D.tweeteval("val"),
            *(D.umsab(lang, "val") for lang in D.UMSAB_LANGS),
            D.chnsenticorp("dev"),
            D.mams_clauses("val"),
        ]
        train = [
            D.sst2("train"),
            D.tweeteval("train"),
            *(D.umsab(lang, "train") for lang in D.UMSAB_LANGS),
            D.chnsenticorp("train"),
            D.online_shopping(),
            D.mams_clauses("train"),
            D.laptop_clauses(),
        ]
    else:
        raise SystemExit(f"unknown preset {preset!r}")
    keys = D.dedup_keys(*dev)
    train = [D.sample(s.without(keys), max_per_set, seed) for s in train]
    return train, dev


def _split(n: int, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.random.default_rng(seed).permutation(n)
    k = int(round(n * frac))
    return idx[k:], idx[:k]


def _loss(
    logits: torch.Tensor, y: torch.Tensor, binary: torch.Tensor, w: torch.Tensor
) -> torch.Tensor:
    full = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    two = logits[:, [0, 2]]
    two_y = (y == 2).long()
    part = torch.nn.functional.cross_entropy(two, two_y, reduction="none")
    return (torch.where(binary, part, full) * w).sum() / w.sum()


def fit_temperature(logits: np.ndarray, labels: np.ndarray, binary: np.ndarray) -> float:
    z = torch.tensor(logits)
    y = torch.tensor(labels)
    b = torch.tensor(binary)
    w = torch.ones(len(y))
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)

    def closure():
        opt.zero_grad()
        loss = _loss(z / log_t.exp(), y, b, w)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--encoder", default="minilm-l6-en")
    ap.add_argument("--name", default="sentiment-minilm-v1")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--hidden", type=int, default=512, help="Hidden units (0: a linear head).")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument(
        "--datasets",
        choices=["en", "multilingual"],
        default="en",
        help="en: English sets; multilingual: adds UMSAB (8 languages), ChnSentiCorp, online_shopping.",
    )
    ap.add_argument(
        "--max-per-set", type=int, default=None, help="Seeded subsample of each training set."
    )
    ap.add_argument(
        "--max-tokens", type=int, default=128, help="Token window when embedding training texts."
    )
    args = ap.parse_args(argv)

    t0 = time.time()
    settings = Settings()
    registry = model_registry(settings, batch_size=64, max_tokens=args.max_tokens)
    encoder = registry.encoder(args.encoder)
    cache = settings.model_cache_dir

    train, dev = datasets(args.datasets, args.max_per_set, args.seed)
    for s in train:
        extra = f", sampled from {s.meta['sampled_from']}" if "sampled_from" in s.meta else ""
        print(
            f"{s.name}: {len(s)} rows after removing {s.meta['removed']} that appear in a dev set{extra}"
        )

    X, Y, B, W, Xc, Yc, Bc = [], [], [], [], [], [], []
    for k, s in enumerate(train):
        emb = embed_set(encoder, s, cache)
        y = np.asarray(s.labels)
        tr, cal = _split(len(s), 0.1, args.seed + k)
        X.append(emb[tr])
        Y.append(y[tr])
        B.append(np.full(len(tr), s.binary))
        W.append(np.full(len(tr), _weight(s.name)))
        Xc.append(emb[cal])
        Yc.append(y[cal])
        Bc.append(np.full(len(cal), s.binary))
    X, Y, B, W = (np.concatenate(a) for a in (X, Y, B, W))
    Xc, Yc, Bc = (np.concatenate(a) for a in (Xc, Yc, Bc))

    torch.manual_seed(args.seed)
    if args.hidden:
        layer = torch.nn.Sequential(
            torch.nn.Linear(X.shape[1], args.hidden),
            torch.nn.GELU(),
            torch.nn.Dropout(0.2),
            torch.nn.Linear(args.hidden, 3),
        )
    else:
        layer = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 3))
    opt = torch.optim.AdamW(layer.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    ckpt = run_checkpoint(
        cache,
        args.name,
        [vars(args), [(s.name, len(s), s.spans is not None) for s in train], DATASET_WEIGHT],
    )
    start_epoch = resume(ckpt, "epoch", layer=layer, opt=opt)
    if start_epoch:
        print(f"resuming from epoch {start_epoch}")
    Xt, Yt, Bt, Wt = (
        torch.tensor(X),
        torch.tensor(Y),
        torch.tensor(B),
        torch.tensor(W, dtype=torch.float32),
    )
    gen = torch.Generator().manual_seed(args.seed)
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=args.epochs, last_epoch=start_epoch - 1
        )
        if start_epoch
        else torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    )
    for epoch in tqdm(
        range(start_epoch, args.epochs),
        desc="train head",
        initial=start_epoch,
        total=args.epochs,
        unit="epoch",
    ):
        layer.train()
        perm = torch.randperm(len(Xt), generator=gen)
        for i in range(0, len(perm), 256):
            b = perm[i : i + 256]
            opt.zero_grad()
            loss = _loss(layer(Xt[b]), Yt[b], Bt[b], Wt[b])
            loss.backward()
            opt.step()
        sched.step()
        save_checkpoint(ckpt, "epoch", epoch + 1, layer=layer, opt=opt)

    layer.eval()
    sd = {k: v.detach().numpy().copy() for k, v in layer.state_dict().items()}
    if args.hidden:
        parts = dict(
            weight=sd["3.weight"],
            bias=sd["3.bias"],
            hidden_weight=sd["0.weight"],
            hidden_bias=sd["0.bias"],
        )
    else:
        parts = dict(weight=sd["0.weight"], bias=sd["0.bias"])
    raw = SentimentHead(temperature=1.0, **parts)
    temperature = fit_temperature(raw.logits(Xc), Yc, Bc)
    head = SentimentHead(temperature=temperature, **parts)
    print(f"temperature fitted on the held-out 10% of train: {temperature:.3f}")

    rows, metrics = [], {}
    for s in dev:
        emb = embed_set(encoder, s, cache)
        row = sentiment_row(s, head.predict_proba(emb), raw.predict_proba(emb))
        rows.append(row)
        metrics[s.name] = {
            k: round(v, 4) if isinstance(v, float) else v for k, v in row.items() if k != "set"
        }
    umsab = [r["value"] for r in rows if r["set"].startswith("umsab-") and len(rows) > 5]
    if len(umsab) == len(D.UMSAB_LANGS):
        rows.append(
            {
                "set": "umsab (8 languages)",
                "metric": "mean macro F1",
                "value": float(np.mean(umsab)),
            }
        )
        metrics["umsab/val-mean"] = {
            "metric": "mean macro F1",
            "value": round(float(np.mean(umsab)), 4),
        }
    print(table(rows, ["set", "metric", "value", "ece_before", "ece_after"]))

    out = settings.models_dir / f"{args.name}.safetensors"
    head.save(out)
    wall = time.time() - t0
    update_artifact(
        settings.models_dir,
        args.name,
        {
            "kind": "sentiment_head",
            "base": args.encoder,
            "files": {"weights": {"path": out.name}},
            "labels": list(head.labels),
            "params": {"temperature": round(temperature, 4)},
            "metrics": metrics,
            "training_data": [
                f"{s.name} ({len(s)} rows, dev texts removed"
                + (f", sampled from {s.meta['sampled_from']}" if "sampled_from" in s.meta else "")
                + ")"
                for s in train
            ],
            "trained_with": f"python -m training.train_sentiment_head --encoder {args.encoder} "
            f"--datasets {args.datasets} --max-per-set {args.max_per_set} --epochs {args.epochs} "
            f"--hidden {args.hidden} --seed {args.seed} ({wall:.0f}s on this machine, "
            "embeddings included unless cached)",
        },
    )
    print(json.dumps({"artifact": args.name, "wall_s": round(wall, 1)}))


if __name__ == "__main__":
    main()
