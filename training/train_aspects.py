"""Train the aspect-category heads (detection + per-aspect sentiment) on labeled aspect data.

    python -m training.train_aspects [--pipeline default] [--name aspects-e5-heads-v1]

One head set per dataset in ``configs/aspect_mapping.yaml``, on that dataset's own categories
(``service/nlp/aspect_heads.py`` describes the model). The heads read the pipeline's own
encoder pass (text embedding + clause embeddings from the served encoder), so they must be
retrained whenever the encoder changes. Splits (fixed seed 13):

- SemEval-2014 restaurants: the train file; 20% of sentences held out (the same split as
  ``training.tune_aspects``) for the report, the rest trains (10% of it picks the threshold
  and the sentiment temperature);
- MAMS ACSA: train trains (10% picks threshold/temperature), val reports;
- Chinese aspect polarity: terms grouped into categories by the mapping; 20% held out.

Metrics: category detection micro-F1 over all the dataset's categories, and sentiment
accuracy on the gold (sentence, category) pairs (the ACSA measure), with the zero-shot
tagger's figures on the same held-out sentences in the same table (taxonomy-mapped
categories only; it has no notion of e.g. "ambience"). Checkpoints per head set: a re-run
skips the sets already trained with the same arguments.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from service.config import REPO_ROOT, Settings
from service.nlp.aspect_heads import PARAMS, AspectHeads, load_mapping
from service.nlp.aspects import ZeroShotAspectTagger
from service.nlp.text import clause_spans
from training import data as D
from training.manifest import model_registry, update_artifact
from training.metrics import table

POLARITY = D.POLARITY
MAPPING_FILE = REPO_ROOT / "configs" / "aspect_mapping.yaml"

Example = tuple[str, dict[str, str]]  # (sentence, {category: polarity})


def chinese_terms(mapping_file: Path = MAPPING_FILE) -> list[Example]:
    import yaml

    groups = yaml.safe_load(mapping_file.read_text(encoding="utf-8"))["chinese-aspect-terms"][
        "terms"
    ]
    of_term = {t: g for g, terms in groups.items() for t in terms}
    by_text: dict[str, dict[str, str]] = {}
    with open(D.data_dir() / "chinese_aspect_polarity" / "train.tsv", encoding="utf-8") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            cats = by_text.setdefault(r["text"], {})
            g = of_term.get(r["aspect"])
            if g:
                pol = r["polarity"].lower()
                cats[g] = pol if cats.get(g, pol) == pol else "conflict"
    return list(by_text.items())


def splits(name: str, seed: int) -> tuple[list[Example], list[Example], list[str]]:
    """``(train, report, categories)`` for a dataset."""
    if name == "semeval14-restaurants":
        sents = D.semeval_restaurant_categories()
        perm = np.random.default_rng(seed).permutation(len(sents))
        cut = int(len(sents) * 0.8)
        train, report = [sents[i] for i in perm[:cut]], [sents[i] for i in perm[cut:]]
    elif name == "mams-acsa":
        train, report = D.mams_categories("train"), D.mams_categories("val")
    elif name == "chinese-aspect-terms":
        sents = chinese_terms()
        perm = np.random.default_rng(seed).permutation(len(sents))
        cut = int(len(sents) * 0.8)
        train, report = [sents[i] for i in perm[:cut]], [sents[i] for i in perm[cut:]]
    else:
        raise SystemExit(f"no loader for aspect dataset {name!r}")
    cats = sorted({c for _, cs in train + report for c in cs})
    return train, report, cats


class HeadsModule(torch.nn.Module):
    """The torch twin of ``AspectHeads.predict`` (batched, clause-padded)."""

    def __init__(
        self, dim: int, k: int, hidden: int = 256, s_hidden: int = 128, dropout: float = 0.1
    ):
        super().__init__()
        self.l1, self.ld = torch.nn.Linear(dim, hidden), torch.nn.Linear(hidden, k)
        self.ls1, self.ls2 = torch.nn.Linear(2 * dim, s_hidden), torch.nn.Linear(s_hidden, 3)
        self.E = torch.nn.Parameter(torch.zeros(k, s_hidden))
        self.drop = torch.nn.Dropout(dropout)

    def forward(self, t: torch.Tensor, c: torch.Tensor, cmask: torch.Tensor):
        x = torch.cat([t[:, None], c], 1)
        xm = torch.cat([torch.ones(len(t), 1), cmask], 1)
        logits = self.ld(self.drop(torch.nn.functional.gelu(self.l1(self.drop(x)))))
        logits = logits.masked_fill(xm[:, :, None] == 0, -1e4)
        z = logits.max(1).values
        rep = torch.einsum("bnk,bnd->bkd", torch.softmax(logits, 1), x)
        s_in = torch.cat([rep, t[:, None].expand(-1, rep.shape[1], -1)], -1)
        s = self.ls2(self.drop(torch.nn.functional.gelu(self.ls1(s_in) + self.E)))
        return z, s

    def export(self) -> dict[str, np.ndarray]:
        w = {
            "W1": self.l1.weight,
            "b1": self.l1.bias,
            "Wd": self.ld.weight,
            "bd": self.ld.bias,
            "Ws1": self.ls1.weight,
            "bs1": self.ls1.bias,
            "E": self.E,
            "Ws2": self.ls2.weight,
            "bs2": self.ls2.bias,
        }
        return {k: w[k].detach().numpy().copy() for k in PARAMS}


def encode(encoder, examples: list[Example]):
    texts = [t for t, _ in examples]
    text_emb, clause_emb = encoder.encode_with_spans(texts, [clause_spans(t) for t in texts])
    return text_emb, clause_emb


def tensors(text_emb, clause_emb, examples: list[Example], cats: list[str]):
    width = max(1, max(len(c) for c in clause_emb))
    n, d = text_emb.shape
    c = np.zeros((n, width, d), np.float32)
    m = np.zeros((n, width), np.float32)
    for i, ce in enumerate(clause_emb):
        c[i, : len(ce)] = ce
        m[i, : len(ce)] = 1
    y = np.zeros((n, len(cats)), np.float32)
    pol = np.full((n, len(cats)), -100, np.int64)  # -100: no sentiment target
    for i, (_, cs) in enumerate(examples):
        for cat, p in cs.items():
            y[i, cats.index(cat)] = 1
            if p in POLARITY:
                pol[i, cats.index(cat)] = POLARITY[p]
    return (
        torch.from_numpy(text_emb),
        torch.from_numpy(c),
        torch.from_numpy(m),
        torch.from_numpy(y),
        torch.from_numpy(pol),
    )


def train_heads(data, cats: list[str], *, epochs: int, seed: int, lr: float) -> HeadsModule:
    torch.manual_seed(seed)
    t, c, m, y, pol = data
    model = HeadsModule(t.shape[1], len(cats))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in tqdm(range(epochs), desc="train heads", unit="epoch", dynamic_ncols=True, leave=False):
        perm = torch.randperm(len(t), generator=gen)
        for i in range(0, len(perm), 64):
            b = perm[i : i + 64]
            z, s = model(t[b], c[b], m[b])
            det = torch.nn.functional.binary_cross_entropy_with_logits(z, y[b])
            sent = (
                torch.nn.functional.cross_entropy(
                    s.reshape(-1, 3), pol[b].reshape(-1), ignore_index=-100
                )
                if (pol[b] >= 0).any()
                else z.sum() * 0
            )
            opt.zero_grad()
            (det + sent).backward()
            opt.step()
        sched.step()
    model.eval()
    return model


def evaluate(heads: AspectHeads, text_emb, clause_emb, examples: list[Example]) -> dict:
    cats = heads.categories
    tp = fp = fn = 0
    right = total = 0
    for i, (_, gold) in enumerate(examples):
        prob, _, sent = heads.predict(text_emb[i], clause_emb[i])
        pred = {cats[j] for j in np.flatnonzero(prob >= heads.threshold)}
        tp += len(pred & set(gold))
        fp += len(pred - set(gold))
        fn += len(set(gold) - pred)
        for cat, p in gold.items():
            if p in POLARITY:
                total += 1
                right += int(sent[cats.index(cat)].argmax() == POLARITY[p])
    prec, rec = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return {
        "micro_f1": 100 * (2 * prec * rec / (prec + rec) if prec + rec else 0.0),
        "precision": 100 * prec,
        "recall": 100 * rec,
        "sentiment_acc": 100 * right / max(total, 1),
        "n": len(examples),
    }


def zero_shot_report(
    tagger: ZeroShotAspectTagger,
    clause_emb,
    examples: list[Example],
    mapping: dict[str, str],
    ids: list[str],
) -> dict:
    """The zero-shot tagger on the mapped categories (what it can be asked about), counted the
    same way: a mapped aspect predicted on a sentence without its category is a false positive."""
    served = sorted(set(mapping.values()))
    tp = fp = fn = 0
    for i, (_, gold) in enumerate(examples):
        want = {mapping[c] for c in gold if c in mapping}
        got = {h.aspect for h in tagger.tag(clause_emb[i]) if h.aspect in served}
        tp += len(got & want)
        fp += len(got - want)
        fn += len(want - got)
    prec, rec = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return {
        "micro_f1": 100 * (2 * prec * rec / (prec + rec) if prec + rec else 0.0),
        "precision": 100 * prec,
        "recall": 100 * rec,
    }


def mapped_report(
    heads: AspectHeads, text_emb, clause_emb, examples: list[Example], mapping: dict[str, str]
) -> dict:
    """The trained heads counted like the zero-shot tagger (mapped taxonomy aspects only)."""
    tp = fp = fn = 0
    for i, (_, gold) in enumerate(examples):
        prob, _, _ = heads.predict(text_emb[i], clause_emb[i])
        want = {mapping[c] for c in gold if c in mapping}
        got = {a for c, a in mapping.items() if prob[heads.categories.index(c)] >= heads.threshold}
        tp += len(got & want)
        fp += len(got - want)
        fn += len(want - got)
    prec, rec = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return {"micro_f1": 100 * (2 * prec * rec / (prec + rec) if prec + rec else 0.0)}


def calibrate(
    model: HeadsModule, name: str, cats: list[str], text_emb, clause_emb, examples: list[Example]
) -> AspectHeads:
    """Threshold (best micro-F1) and sentiment temperature (best NLL) on a held-out slice of train."""
    heads = AspectHeads(name, cats, model.export())
    outs = [heads.predict(text_emb[i], clause_emb[i]) for i in range(len(examples))]
    best = (-1.0, 0.5)
    for thr in np.arange(0.2, 0.81, 0.02):
        tp = fp = fn = 0
        for (prob, _, _), (_, gold) in zip(outs, examples):
            pred = {cats[j] for j in np.flatnonzero(prob >= thr)}
            tp += len(pred & set(gold))
            fp += len(pred - set(gold))
            fn += len(set(gold) - pred)
        f = 2 * tp / max(2 * tp + fp + fn, 1)
        if f > best[0]:
            best = (f, float(thr))
    logp, labels = [], []
    for (_, _, sent), (_, gold) in zip(outs, examples):
        for cat, p in gold.items():
            if p in POLARITY:
                logp.append(np.log(np.clip(sent[cats.index(cat)], 1e-9, 1)))
                labels.append(POLARITY[p])
    temperature = 1.0
    if logp:
        z, y = np.array(logp), np.array(labels)
        nll = {
            T: -np.mean((z / T - np.log(np.exp(z / T).sum(1, keepdims=True)))[np.arange(len(y)), y])
            for T in np.arange(0.5, 3.01, 0.05)
        }
        temperature = float(min(nll, key=nll.get))
    return AspectHeads(
        name, cats, model.export(), threshold=round(best[1], 3), temperature=round(temperature, 3)
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pipeline", default="default")
    ap.add_argument("--name", default="aspects-e5-heads-v1")
    ap.add_argument(
        "--datasets", nargs="*", default=None, help="Default: every dataset in the mapping file."
    )
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)
    t0 = time.time()
    settings = Settings()
    reg = model_registry(settings)
    spec = reg.pipeline_spec(args.pipeline)
    encoder = reg.encoder(spec.encoder)
    cal = reg.artifact(spec.aspects).params
    zero = ZeroShotAspectTagger(
        settings.taxonomy,
        threshold=float(cal["threshold"]),
        slope=float(cal["slope"]),
        margin=float(cal.get("margin", 1.0)),
    ).fit(encoder)
    mapping = load_mapping(MAPPING_FILE)
    names = args.datasets or list(mapping)
    ckdir = settings.model_cache_dir / "checkpoints" / "aspects"
    ckdir.mkdir(parents=True, exist_ok=True)
    rows, files, metrics, data_lines = [], {}, {}, []
    for name in names:
        train, report, cats = splits(name, args.seed)
        cut = int(len(train) * 0.9)
        perm = np.random.default_rng(args.seed).permutation(len(train))
        fit, held = [train[i] for i in perm[:cut]], [train[i] for i in perm[cut:]]
        key = hashlib.sha1(
            json.dumps(
                [
                    vars(args),
                    name,
                    encoder.name,
                    encoder.runtime,
                    reg.pipeline_version(args.pipeline),
                    cats,
                    len(train),
                ]
            ).encode()
        ).hexdigest()[:12]
        ck = ckdir / f"{name}-{key}.safetensors"
        print(
            f"{name}: {len(fit)} train / {len(held)} calibration / {len(report)} report sentences, "
            f"{len(cats)} categories"
        )
        rep_t, rep_c = encode(encoder, report)
        if ck.exists():
            heads = AspectHeads.load(ck)
        else:
            fit_t, fit_c = encode(encoder, fit)
            model = train_heads(
                tensors(fit_t, fit_c, fit, cats),
                cats,
                epochs=args.epochs,
                seed=args.seed,
                lr=args.lr,
            )
            held_t, held_c = encode(encoder, held)
            heads = calibrate(model, name, cats, held_t, held_c, held)
            heads.save(ck)
        res = evaluate(heads, rep_t, rep_c, report)
        served = mapping.get(name, {})
        zs = zero_shot_report(zero, rep_c, report, served, settings.taxonomy.ids) if served else {}
        mapped = mapped_report(heads, rep_t, rep_c, report, served) if served else {}
        rows.append(
            {
                "set": name,
                "categories": len(cats),
                "n": res["n"],
                "micro_f1": res["micro_f1"],
                "precision": res["precision"],
                "recall": res["recall"],
                "sentiment_acc": res["sentiment_acc"],
                "mapped_f1": mapped.get("micro_f1"),
                "zero_shot_mapped_f1": zs.get("micro_f1"),
                "threshold": heads.threshold,
            }
        )
        metrics[name] = {
            k: round(v, 2) if isinstance(v, float) else v for k, v in rows[-1].items() if k != "set"
        }
        out = settings.models_dir / f"{args.name}-{name}.safetensors"
        heads.save(out)
        files[name] = {"path": out.name}
        data_lines.append(
            f"{name}: {len(fit)} sentences (+{len(held)} for threshold/temperature), "
            f"report on {len(report)}"
        )
    print(
        table(
            rows,
            [
                "set",
                "categories",
                "n",
                "micro_f1",
                "precision",
                "recall",
                "sentiment_acc",
                "mapped_f1",
                "zero_shot_mapped_f1",
                "threshold",
            ],
        )
    )
    wall = time.time() - t0
    update_artifact(
        settings.models_dir,
        args.name,
        {
            "kind": "aspect_heads",
            "base": spec.encoder,
            "files": files,
            "params": {"mapping": "configs/aspect_mapping.yaml"},
            "metrics": metrics,
            "training_data": data_lines,
            "trained_with": f"python -m training.train_aspects --pipeline {args.pipeline} --epochs {args.epochs} "
            f"--seed {args.seed} ({wall:.0f}s on this machine)",
        },
    )
    print(json.dumps({"artifact": args.name, "wall_s": round(wall, 1)}))


if __name__ == "__main__":
    main()
