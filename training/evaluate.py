"""Evaluate the shipped scoring model against two baselines on every dev set, in one run.

    python -m training.evaluate [--pipeline default] [--max-train 15000]

Rows: each sentiment dev set (SST-2, TweetEval, UMSAB × 8, ChnSentiCorp, MAMS clauses) and,
when the pipeline has trained aspect heads, each aspect set's report split (category
detection micro-F1 and category sentiment accuracy). Columns:
- shipped: the pipeline's encoder as served (int8 ONNX when built) + its sentiment head;
- fp32: the same head on the fp32 PyTorch encoder, and the label agreement int8 vs fp32;
- tfidf_lr: TF-IDF (word 1-2 grams + character 1-3 grams) + logistic regression;
- frozen_lr: the encoder's frozen embeddings + logistic regression.
Both baselines train on the same training sets as the head (the same preset and sampling,
dev texts removed). Prints one table and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from service.config import Settings
from training.embed_cache import embed_set
from training.manifest import model_registry
from training.metrics import sentiment_metric, table
from training.train_sentiment_head import datasets


def score_set(s, probs: np.ndarray) -> tuple[str, float]:
    return sentiment_metric(s.name, s.binary, probs, s.labels)


def _proba3(clf, X) -> np.ndarray:
    """Class probabilities in the order neg, neu, pos whatever classes the model saw."""
    p = clf.predict_proba(X)
    out = np.zeros((X.shape[0], 3))
    for j, c in enumerate(clf.classes_):
        out[:, int(c)] = p[:, j]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pipeline", default=None)
    ap.add_argument(
        "--datasets",
        choices=["en", "multilingual"],
        default=None,
        help="Default: multilingual unless the encoder is English-only.",
    )
    ap.add_argument("--max-train", type=int, default=15000)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)
    t0 = time.time()
    settings = Settings()
    name = args.pipeline or settings.scorer
    reg = model_registry(settings, batch_size=64, max_tokens=128)
    spec = reg.manifest.pipelines[name]
    languages = reg.encoder_spec(spec.encoder).languages
    preset = args.datasets or ("en" if languages == ["en"] else "multilingual")
    train, dev = datasets(preset, args.max_train, args.seed)
    head = reg.sentiment_head(spec.sentiment)
    served = reg.encoder(spec.encoder)
    fp32 = reg.encoder(spec.encoder, runtime="torch")
    # "frozen encoder" means the encoder before any fine-tuning: the base of an adapted build
    frozen_name = reg.encoder_spec(spec.encoder).base or spec.encoder
    frozen_enc = reg.encoder(frozen_name, runtime="torch")
    cache = settings.model_cache_dir

    # baselines, trained once on everything
    texts = [t for s in train for t in s.texts]
    labels = np.concatenate([s.labels for s in train])
    word = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=200_000, sublinear_tf=True)
    char = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(1, 3), min_df=3, max_features=200_000, sublinear_tf=True
    )
    Xt = hstack([word.fit_transform(texts), char.fit_transform(texts)]).tocsr()
    tfidf = LogisticRegression(max_iter=2000, C=4.0).fit(Xt, labels)
    E = np.concatenate([embed_set(frozen_enc, s, cache) for s in train])
    frozen = LogisticRegression(max_iter=3000, C=4.0).fit(E, labels)

    rows = []
    for s in dev:
        e32, e8 = embed_set(fp32, s, cache), embed_set(served, s, cache)
        p8, p32 = head.predict_proba(e8), head.predict_proba(e32)
        metric, shipped = score_set(s, p8)
        Xd = hstack([word.transform(s.texts), char.transform(s.texts)]).tocsr()
        rows.append(
            {
                "set": s.name,
                "metric": metric,
                "shipped": shipped,
                "fp32": score_set(s, p32)[1],
                "int8_vs_fp32_agree": 100 * float(np.mean(p8.argmax(1) == p32.argmax(1))),
                "tfidf_lr": score_set(s, _proba3(tfidf, Xd))[1],
                "frozen_lr": score_set(s, _proba3(frozen, embed_set(frozen_enc, s, cache)))[1],
            }
        )
    umsab = [r for r in rows if r["set"].startswith("umsab-")]
    if len(umsab) > 1:
        rows.append(
            {
                "set": "umsab mean (8 languages)",
                "metric": "macro F1",
                **{
                    k: float(np.mean([r[k] for r in umsab]))
                    for k in ("shipped", "fp32", "int8_vs_fp32_agree", "tfidf_lr", "frozen_lr")
                },
            }
        )
    if spec.aspect_heads:
        rows += aspect_rows(reg, spec, served, fp32, frozen_enc, args.seed)
    print(
        table(
            rows,
            ["set", "metric", "shipped", "fp32", "int8_vs_fp32_agree", "tfidf_lr", "frozen_lr"],
        )
    )
    print(
        json.dumps(
            {
                "pipeline": name,
                "encoder_runtime": reg.encoder_runtime(spec.encoder),
                "wall_s": round(time.time() - t0, 1),
                "rows": [
                    {k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()}
                    for r in rows
                ],
            }
        )
    )


def aspect_rows(reg, spec, served, fp32, frozen_enc, seed: int) -> list[dict]:
    """Aspect sets: category detection micro-F1 and category sentiment accuracy (ACSA), for
    the shipped heads on the served and the fp32 encoder, and for the two baselines trained
    on the same sentences (one-vs-rest logistic regression for detection, one per category
    for sentiment, over TF-IDF or the frozen encoder's text embedding)."""
    from training.train_aspects import POLARITY, encode, evaluate, splits

    rows = []
    for heads, _ in reg.aspect_heads(spec.aspect_heads):
        train, report, cats = splits(heads.name, seed)
        t8, c8 = encode(served, report)
        t32, c32 = encode(fp32, report)
        out8, out32 = evaluate(heads, t8, c8, report), evaluate(heads, t32, c32, report)
        agree = [
            np.array_equal(a[0] >= heads.threshold, b[0] >= heads.threshold)
            and np.array_equal(a[2].argmax(1), b[2].argmax(1))
            for a, b in (
                (heads.predict(t8[i], c8[i]), heads.predict(t32[i], c32[i]))
                for i in range(len(report))
            )
        ]
        word = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
        char = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), min_df=2, sublinear_tf=True)
        tr_texts, rep_texts = [t for t, _ in train], [t for t, _ in report]
        feats = {
            "tfidf_lr": (
                hstack([word.fit_transform(tr_texts), char.fit_transform(tr_texts)]).tocsr(),
                hstack([word.transform(rep_texts), char.transform(rep_texts)]).tocsr(),
            ),
            "frozen_lr": (frozen_enc.encode(tr_texts), frozen_enc.encode(rep_texts)),
        }
        base = {
            k: _baseline(Xtr, Xrep, train, report, cats, POLARITY)
            for k, (Xtr, Xrep) in feats.items()
        }
        rows.append(
            {
                "set": f"{heads.name} ({len(report)} sentences)",
                "metric": "category micro-F1",
                "shipped": out8["micro_f1"],
                "fp32": out32["micro_f1"],
                "int8_vs_fp32_agree": 100 * float(np.mean(agree)),
                **{k: v[0] for k, v in base.items()},
            }
        )
        rows.append(
            {
                "set": f"{heads.name}",
                "metric": "category sentiment acc",
                "shipped": out8["sentiment_acc"],
                "fp32": out32["sentiment_acc"],
                **{k: v[1] for k, v in base.items()},
            }
        )
    return rows


def _baseline(Xtr, Xrep, train, report, cats, polarity) -> tuple[float, float]:
    tp = fp = fn = 0
    pred = np.zeros((Xrep.shape[0], len(cats)), bool)
    for j, cat in enumerate(cats):
        y = np.array([cat in g for _, g in train])
        if y.all() or not y.any():
            pred[:, j] = y.all()
            continue
        pred[:, j] = (
            LogisticRegression(max_iter=2000, C=4.0).fit(Xtr, y).predict_proba(Xrep)[:, 1] >= 0.5
        )
    for i, (_, g) in enumerate(report):
        got = {cats[j] for j in np.flatnonzero(pred[i])}
        tp += len(got & set(g))
        fp += len(got - set(g))
        fn += len(set(g) - got)
    f1 = 100 * 2 * tp / max(2 * tp + fp + fn, 1)
    right = total = 0
    for cat in cats:
        tr = [(i, polarity[g[cat]]) for i, (_, g) in enumerate(train) if g.get(cat) in polarity]
        te = [(i, polarity[g[cat]]) for i, (_, g) in enumerate(report) if g.get(cat) in polarity]
        if not te:
            continue
        ys = np.array([p for _, p in tr])
        if len(set(ys)) < 2:
            guess = np.full(len(te), ys[0] if len(ys) else 2)
        else:
            guess = (
                LogisticRegression(max_iter=2000, C=4.0)
                .fit(Xtr[[i for i, _ in tr]], ys)
                .predict(Xrep[[i for i, _ in te]])
            )
        right += int(np.sum(guess == np.array([p for _, p in te])))
        total += len(te)
    return f1, 100 * right / max(total, 1)


if __name__ == "__main__":
    main()
