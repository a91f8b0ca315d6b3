"""Aspect tags on a taxonomy a new team wrote, on real labeled sentences. Prints JSON.

    python benchmarks/aspects_new_taxonomy.py [--sets mams,semeval14,...] [--fast]

Protocol: every set in ``training/aspect_sets.py`` comes with a taxonomy written **before**
its sentences were read (``benchmarks/taxonomies/``, committed first; never tuned on the set
afterwards). For each set:

zero_shot       what a team gets on a new taxonomy: the hybrid tagger (its rules + the
                relevance model) where the relevance model was trained **without** the set's
                family (``training.train_relevance.leave_one_out``: SemEval-2014 and -2016
                restaurants are one family, MAMS train and val another; no shared sentence)
                and its threshold chosen inside the training families (nested)
zero_shot_model the same model without the rules (rules switched off in its features too)
rules_only      the taxonomy's rules alone
previous        the tagger this replaces: best cosine to the taxonomy's words against one
                global threshold (``aspects-zeroshot-e5-v1``), no rules
served_default  the shipped relevance model (trained on every set, this one included) with
                the rules: an in-domain figure, not a zero-shot one

Measures: micro-F1 over all the set's aspects with precision and recall, false positives,
tags per sentence, per-aspect precision (the lowest, with its aspect and count), and top-1
accuracy of the most confident tag on sentences with exactly one gold category (a sentence
with no tag counts as wrong). For the zero-shot tagger also the sentiment of its true tags
against the gold polarity of the aspect (``sentiment_of_true_tags``): the evidence clause's,
as Radar serves it, and the whole item's. ``--fast`` skips the nested threshold choice (uses the served
model's threshold) and runs in about a minute once embeddings are cached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def measure(pred: np.ndarray, gold: np.ndarray, conf: np.ndarray, ids: list[str]) -> dict:
    tp = int((pred & gold).sum())
    npred, ngold = int(pred.sum()), int(gold.sum())
    p, r = tp / max(npred, 1), tp / max(ngold, 1)
    per = {}
    for k, aid in enumerate(ids):
        n = int(pred[:, k].sum())
        if n:
            per[aid] = {
                "precision": round(float((pred[:, k] & gold[:, k]).sum()) / n, 3),
                "tagged": n,
                "gold": int(gold[:, k].sum()),
            }
    single = np.where(gold.sum(axis=1) == 1)[0]
    masked = np.where(pred, conf, -1.0)
    top = masked.argmax(axis=1)
    top1 = [bool(pred[i].any() and gold[i, top[i]]) for i in single]
    low = min(per.items(), key=lambda kv: kv[1]["precision"]) if per else None
    return {
        "micro_f1": round(100 * 2 * p * r / max(p + r, 1e-9), 1),
        "precision": round(100 * p, 1),
        "recall": round(100 * r, 1),
        "true_positives": tp,
        "false_positives": npred - tp,
        "false_negatives": ngold - tp,
        "tags_per_sentence": round(npred / len(gold), 2),
        "top1_single_category": round(100 * float(np.mean(top1)), 1) if top1 else None,
        "single_category_sentences": int(len(single)),
        "lowest_aspect_precision": None if low is None else {"aspect": low[0], **low[1]},
        "per_aspect": per,
    }


def aspect_sentiment(s, emb, head, clause: np.ndarray, pred: np.ndarray) -> dict:
    """The sentiment Radar gives a true tag (tagged and gold, with one gold polarity): its
    evidence clause's, as served, against the whole item's. Accuracy, macro-F1 and the
    negative class (what complaint counts and alerts rest on) with its precision and recall."""
    rows = [
        (i, k)
        for i, k in zip(*np.nonzero(pred & s.gold))
        if s.polarity is not None and s.polarity[i, k] >= 0
    ]
    if not rows:
        return {"true_tags_with_polarity": 0}
    gold = np.array([s.polarity[i, k] for i, k in rows])
    by_clause = head.predict_proba(np.stack([emb.clauses[i][clause[i, k]] for i, k in rows]))
    by_item = head.predict_proba(emb.text[[i for i, _ in rows]])

    def scores(probs: np.ndarray) -> dict:
        got = probs.argmax(axis=1)
        f1 = []
        for c in range(3):
            tp = int(((got == c) & (gold == c)).sum())
            prec, rec = tp / max(int((got == c).sum()), 1), tp / max(int((gold == c).sum()), 1)
            f1.append(2 * prec * rec / max(prec + rec, 1e-9))
            if c == 0:
                neg = (prec, rec)
        return {
            "accuracy": round(100 * float((got == gold).mean()), 1),
            "macro_f1": round(100 * float(np.mean(f1)), 1),
            "negative_precision": round(100 * neg[0], 1),
            "negative_recall": round(100 * neg[1], 1),
        }

    return {
        "true_tags_with_polarity": len(rows),
        "gold_negative_neutral_positive": np.bincount(gold, minlength=3).tolist(),
        "evidence_clause": scores(by_clause),
        "whole_item": scores(by_item),
    }


def run_tagger(tagger, s, emb, clause: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Tags and confidences per sentence and aspect (``clause``, when given, receives each
    tag's evidence clause)."""
    ids = s.ids
    pred = np.zeros((len(s), len(ids)), bool)
    conf = np.zeros((len(s), len(ids)))
    step = 512
    for i in range(0, len(s), step):
        sl = slice(i, i + step)
        hits = tagger.tag_batch(
            s.texts[sl],
            emb.spans[sl],
            [s.language] * len(s.texts[sl]),
            emb.text[sl],
            emb.clauses[sl],
        )
        for j, item in enumerate(hits):
            for h in item:
                k = ids.index(h.aspect)
                pred[i + j, k] = True
                conf[i + j, k] = h.confidence
                if clause is not None:
                    clause[i + j, k] = h.clause
    return pred, conf


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--sets", default=None, help="Comma-separated keys of training.aspect_sets.REPORTED."
    )
    ap.add_argument(
        "--fast", action="store_true", help="No nested threshold choice (served threshold)."
    )
    ap.add_argument("--iterations", type=int, default=250)
    args = ap.parse_args()
    t0 = time.time()

    from service.config import Settings
    from service.domain import Taxonomy
    from service.nlp.aspects import ZeroShotAspectTagger
    from service.nlp.registry import ModelRegistry
    from service.nlp.relevance import RelevanceModel
    from service.nlp.tagger import AspectTagger
    from training import aspect_sets as A
    from training.train_relevance import leave_one_out, set_features

    st = Settings()
    reg = ModelRegistry(st.models_dir, taxonomy=st.taxonomy, cache_dir=st.model_cache_dir)
    spec = reg.pipeline_spec("default")
    encoder = reg.encoder(spec.encoder)
    served = reg.relevance_model(spec.relevance)
    cal = reg.artifact(spec.aspects).params
    head = reg.sentiment_head(spec.sentiment)
    sets = A.load_all()
    feats = {k: set_features(s, encoder) for k, s in sets.items()}
    wanted = args.sets.split(",") if args.sets else list(A.REPORTED)
    out = {
        "encoder": f"{spec.encoder} ({encoder.runtime})",
        "served_model": spec.relevance,
        "served_threshold": served.threshold,
        "sets": {},
    }
    for key in wanted:
        s = sets[key]
        emb = A.embed(s, encoder)
        ids = s.ids

        def tagger(relevance=None, zero=None, taxonomy: Taxonomy = s.taxonomy):
            return AspectTagger(taxonomy, relevance=relevance, zero_shot=zero).fit(encoder)

        _, thr, trees = leave_one_out(sets, feats, key, args.iterations, nested=not args.fast)
        thr = served.threshold if args.fast else thr
        loo = RelevanceModel(
            trees, thr
        )  # the leave-one-family-out model, served through the real tagger
        no_rules = Taxonomy.model_validate(
            {
                **s.taxonomy.model_dump(),
                "aspects": [{**a.model_dump(), "rules": None} for a in s.taxonomy.aspects],
            }
        )
        rules_only = Taxonomy.model_validate(
            {
                **s.taxonomy.model_dump(),
                "aspects": [
                    {**a.model_dump(), "tagging": "rules"}
                    if a.rules
                    else {**a.model_dump(), "tagging": "rules", "rules": {"include": {}}}
                    for a in s.taxonomy.aspects
                ],
            }
        )
        previous = ZeroShotAspectTagger(
            s.taxonomy,
            threshold=float(cal["threshold"]),
            slope=float(cal["slope"]),
            margin=float(cal["margin"]),
        )
        row = {
            "sentences": len(s),
            "aspects": len(ids),
            "language": s.language,
            "taxonomy": f"benchmarks/taxonomies/{s.meta['taxonomy']}.yaml",
            "zero_shot_threshold": thr,
        }
        for name, tg in (
            ("zero_shot", tagger(loo)),
            ("zero_shot_model", tagger(loo, taxonomy=no_rules)),
            ("rules_only", tagger(loo, taxonomy=rules_only)),
            ("previous", tagger(zero=previous, taxonomy=no_rules)),
            ("served_default", tagger(served)),
        ):
            clause = np.zeros((len(s), len(ids)), int)
            pred, conf = run_tagger(tg, s, emb, clause)
            row[name] = measure(pred, s.gold, conf, ids)
            if name == "zero_shot":
                row[name]["sentiment_of_true_tags"] = aspect_sentiment(s, emb, head, clause, pred)
        out["sets"][key] = row
        print(
            f"{key}: zero-shot F1 {row['zero_shot']['micro_f1']} (previous {row['previous']['micro_f1']}), "
            f"served {row['served_default']['micro_f1']}",
            file=sys.stderr,
            flush=True,
        )
    z = [r["zero_shot"] for r in out["sets"].values()]
    out["summary"] = {
        "zero_shot_micro_f1": {k: r["zero_shot"]["micro_f1"] for k, r in out["sets"].items()},
        "zero_shot_top1": {
            k: r["zero_shot"]["top1_single_category"] for k, r in out["sets"].items()
        },
        "zero_shot_lowest_aspect_precision": min(
            (r["lowest_aspect_precision"]["precision"], k)
            for k, r in zip(out["sets"], z)
            if r["lowest_aspect_precision"]
        ),
        "previous_micro_f1": {k: r["previous"]["micro_f1"] for k, r in out["sets"].items()},
        "served_micro_f1": {k: r["served_default"]["micro_f1"] for k, r in out["sets"].items()},
        "zero_shot_true_tag_negative_recall_clause_vs_item": {
            k: [
                r["zero_shot"]["sentiment_of_true_tags"][w]["negative_recall"]
                for w in ("evidence_clause", "whole_item")
            ]
            for k, r in out["sets"].items()
            if "evidence_clause" in r["zero_shot"]["sentiment_of_true_tags"]
        },
    }
    out["wall_s"] = round(time.time() - t0, 1)
    print(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
