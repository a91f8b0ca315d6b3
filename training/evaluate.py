"""Evaluate the shipped scoring model against two baselines on every dev set, in one run.

    python -m training.evaluate [--pipeline default] [--max-train 15000]

Rows: each dev set (SST-2, TweetEval, UMSAB × 8, ChnSentiCorp, MAMS clauses). Columns:
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
from service.nlp.registry import ModelRegistry
from training.embed_cache import embed_set
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
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pipeline", default=None)
    ap.add_argument("--datasets", choices=["en", "multilingual"], default=None,
                    help="Default: multilingual unless the encoder is English-only.")
    ap.add_argument("--max-train", type=int, default=15000)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)
    t0 = time.time()
    settings = Settings()
    name = args.pipeline or settings.scorer
    reg = ModelRegistry(settings.models_dir, taxonomy=settings.taxonomy, cache_dir=settings.model_cache_dir,
                        batch_size=64, max_tokens=128)
    spec = reg.manifest.pipelines[name]
    languages = reg.encoder_spec(spec.encoder).languages
    preset = args.datasets or ("en" if languages == ["en"] else "multilingual")
    train, dev = datasets(preset, args.max_train, args.seed)
    head = reg.sentiment_head(spec.sentiment)
    served = reg.encoder(spec.encoder)
    fp32 = reg.encoder(spec.encoder, runtime="torch")
    cache = settings.model_cache_dir

    # baselines, trained once on everything
    texts = [t for s in train for t in s.texts]
    labels = np.concatenate([s.labels for s in train])
    word = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=200_000, sublinear_tf=True)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), min_df=3, max_features=200_000, sublinear_tf=True)
    Xt = hstack([word.fit_transform(texts), char.fit_transform(texts)]).tocsr()
    tfidf = LogisticRegression(max_iter=2000, C=4.0).fit(Xt, labels)
    E = np.concatenate([embed_set(fp32, s, cache) for s in train])
    frozen = LogisticRegression(max_iter=3000, C=4.0).fit(E, labels)

    rows = []
    for s in dev:
        e32, e8 = embed_set(fp32, s, cache), embed_set(served, s, cache)
        p8, p32 = head.predict_proba(e8), head.predict_proba(e32)
        metric, shipped = score_set(s, p8)
        Xd = hstack([word.transform(s.texts), char.transform(s.texts)]).tocsr()
        rows.append({"set": s.name, "metric": metric, "shipped": shipped, "fp32": score_set(s, p32)[1],
                     "int8_vs_fp32_agree": 100 * float(np.mean(p8.argmax(1) == p32.argmax(1))),
                     "tfidf_lr": score_set(s, _proba3(tfidf, Xd))[1],
                     "frozen_lr": score_set(s, _proba3(frozen, e32))[1]})
    umsab = [r for r in rows if r["set"].startswith("umsab-")]
    if len(umsab) > 1:
        rows.append({"set": "umsab mean (8 languages)", "metric": "macro F1",
                     **{k: float(np.mean([r[k] for r in umsab])) for k in
                        ("shipped", "fp32", "int8_vs_fp32_agree", "tfidf_lr", "frozen_lr")}})
    print(table(rows, ["set", "metric", "shipped", "fp32", "int8_vs_fp32_agree", "tfidf_lr", "frozen_lr"]))
    print(json.dumps({"pipeline": name, "encoder_runtime": reg.encoder_runtime(spec.encoder),
                      "wall_s": round(time.time() - t0, 1),
                      "rows": [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]}))


if __name__ == "__main__":
    main()
