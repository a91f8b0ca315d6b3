"""Is this item about that aspect? A relevance model learned across taxonomies.

The zero-shot tagger compared one cosine similarity with one global threshold; on a taxonomy
nobody here wrote that tagged the wrong aspects (the model card's table). The relevance model
instead reads *definition-relative* evidence for each (item, aspect) pair, nothing tied to an
aspect's name or to a dataset's categories:

- how close the item's best clause and the whole text are to the aspect's description, its
  display names and its example phrases (best and mean of the two best examples);
- how the aspect ranks among the item's other aspects (margin to the best other aspect, rank,
  z-score within the item) and how many aspects the taxonomy has;
- whether one of the aspect's own taxonomy rules matched, whether any rule of the taxonomy
  matched the item, and whether the aspect has rules in the item's language at all (so a
  language without rules, or an aspect without rules, is read from the similarities alone).

A gradient-boosted tree ensemble (scikit-learn's ``HistGradientBoostingClassifier``) is
trained on every labeled aspect set with its own taxonomy (``training.train_relevance``;
seven sets, 93 aspect definitions, restaurants, laptops, Chinese reviews, Dutch) and exported
to plain arrays: this module evaluates the trees with NumPy, no pickle, no scikit-learn at run
time. Its output is a probability that the aspect is present (``confidence``), calibrated on
the training sets; an aspect is tagged at ``threshold``. Because the features are relative to
each aspect's own definition, an aspect added to the taxonomy is scored like any other (no
retraining), and nothing of the model is served under an aspect by its name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

FEATURES = (
    "clause_best", "clause_description", "clause_names", "clause_examples_top2",
    "text_best", "text_description", "text_examples", "n_clauses",
    "margin_to_best_other", "rank_in_item", "z_in_item", "log_n_aspects",
    "rule_matched", "any_rule_matched", "aspect_has_rules",
)
TREE_FIELDS = ("feature", "threshold", "left", "right", "leaf", "value", "missing_left")


@dataclass
class Prototypes:
    """Query-side embeddings of every aspect's words, with which aspect each belongs to."""

    emb: np.ndarray  # (m, d)
    aspect: np.ndarray  # (m,) aspect index
    role: np.ndarray  # (m,) 0 description, 1 name, 2 example

    @classmethod
    def of(cls, taxonomy, encoder) -> "Prototypes":
        texts, aspect, role = [], [], []
        for k, a in enumerate(taxonomy.aspects):
            for r, group in ((0, [a.description]), (1, list(a.names.values())), (2, list(a.examples))):
                for t in group:
                    texts.append(t)
                    aspect.append(k)
                    role.append(r)
        return cls(encoder.encode_queries(texts), np.asarray(aspect), np.asarray(role))

    @property
    def n_aspects(self) -> int:
        return int(self.aspect.max()) + 1 if len(self.aspect) else 0


def features(protos: Prototypes, text_emb: np.ndarray, clause_emb: np.ndarray, rule_hit: np.ndarray,
             ruled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(K, len(FEATURES))`` features of one item for every aspect, and each aspect's best
    clause (by similarity). ``rule_hit`` (K,) bool: a rule of the aspect matched the item;
    ``ruled`` (K,) bool: the aspect has rules in the item's language."""
    K = protos.n_aspects
    clauses = clause_emb if len(clause_emb) else text_emb[None, :]
    S = np.vstack([text_emb[None, :], clauses]) @ protos.emb.T  # (1 + k, m)
    out = np.zeros((K, len(FEATURES)), np.float32)
    best_clause = np.zeros(K, int)
    for k in range(K):
        own = protos.aspect == k
        sd = S[:, own & (protos.role == 0)].max(axis=1)
        names = own & (protos.role == 1)
        sn = S[:, names].max(axis=1) if names.any() else sd
        ex = own & (protos.role == 2)
        se = S[:, ex] if ex.any() else S[:, names if names.any() else own & (protos.role == 0)]
        top2 = np.sort(se, axis=1)[:, -2:].mean(axis=1)
        sm = np.maximum(np.maximum(sd, sn), se.max(axis=1))
        best_clause[k] = int(sm[1:].argmax())
        out[k, :8] = (sm[1:].max(), sd[1:].max(), sn[1:].max(), top2[1:].max(), sm[0], sd[0], se.max(axis=1)[0],
                      len(clause_emb))
    m = out[:, 0]
    if K > 1:
        order = np.argsort(-m)
        best, second = m[order[0]], m[order[1]]
        out[:, 8] = m - np.where(np.arange(K) == order[0], second, best)
    out[:, 9] = np.argsort(np.argsort(-m))
    out[:, 10] = (m - m.mean()) / (m.std() + 1e-6)
    out[:, 11] = np.log(max(K, 1))
    out[:, 12] = rule_hit
    out[:, 13] = bool(np.any(rule_hit))
    out[:, 14] = ruled
    return out, best_clause


class TreeEnsemble:
    """A binary gradient-boosted tree ensemble as arrays: ``sigmoid(baseline + Σ leaf values)``."""

    def __init__(self, trees: dict[str, np.ndarray], offsets: np.ndarray, baseline: float):
        self.t = trees
        self.offsets = offsets  # first node of each tree
        self.baseline = baseline

    @classmethod
    def from_sklearn(cls, clf) -> "TreeEnsemble":
        nodes = [p[0].nodes for p in clf._predictors]
        offsets = np.cumsum([0] + [len(n) for n in nodes])[:-1]
        cat = np.concatenate(nodes)
        shift = np.concatenate([np.full(len(n), o) for n, o in zip(nodes, offsets)])
        trees = {"feature": cat["feature_idx"].astype(np.int32), "threshold": cat["num_threshold"].astype(np.float64),
                 "left": (cat["left"] + shift).astype(np.int32), "right": (cat["right"] + shift).astype(np.int32),
                 "leaf": cat["is_leaf"].astype(np.uint8), "value": cat["value"].astype(np.float64),
                 "missing_left": cat["missing_go_to_left"].astype(np.uint8)}
        return cls(trees, offsets.astype(np.int32), float(np.ravel(clf._baseline_prediction)[0]))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """``(n,)`` probabilities for the rows of ``X``."""
        X = np.asarray(X, np.float64)
        n = len(X)
        if n == 0:
            return np.zeros(0)
        t = self.t
        rows = np.arange(n)
        # every tree at once: one node index per (row, tree), descended until all are leaves
        node = np.repeat(self.offsets[None, :], n, axis=0)
        r = np.repeat(rows[:, None], len(self.offsets), axis=1)
        while True:
            inner = t["leaf"][node] == 0
            if not inner.any():
                break
            nd = node[inner]
            x = X[r[inner], t["feature"][nd]]
            go_left = np.where(np.isnan(x), t["missing_left"][nd] == 1, x <= t["threshold"][nd])
            node[inner] = np.where(go_left, t["left"][nd], t["right"][nd])
        raw = self.baseline + t["value"][node].sum(axis=1)
        return 1.0 / (1.0 + np.exp(-raw))


@dataclass
class RelevanceModel:
    trees: TreeEnsemble
    threshold: float
    features: tuple[str, ...] = FEATURES

    def save(self, path: Path, **meta) -> None:
        arrays = {f"tree.{k}": v for k, v in self.trees.t.items()}
        arrays["tree.offsets"] = self.trees.offsets
        save_file(arrays, str(path), metadata={
            "baseline": repr(self.trees.baseline), "threshold": repr(float(self.threshold)),
            "features": json.dumps(list(self.features)), **{k: json.dumps(v) for k, v in meta.items()}})

    @classmethod
    def load(cls, path: Path) -> "RelevanceModel":
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as fh:
            meta = fh.metadata()
        arrays = load_file(str(path))
        feats = tuple(json.loads(meta["features"]))
        if feats != FEATURES:
            raise ValueError(f"{path}: relevance features {feats} differ from this code's {FEATURES}; retrain it")
        trees = TreeEnsemble({k: arrays[f"tree.{k}"] for k in TREE_FIELDS}, arrays["tree.offsets"],
                             float(meta["baseline"]))
        return cls(trees, float(meta["threshold"]), feats)
