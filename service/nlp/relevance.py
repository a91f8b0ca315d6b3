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
seven sets, 62 aspect definitions, restaurants, laptops, Chinese reviews, Dutch) and exported
to plain arrays (no pickle, no scikit-learn at run time); ONNX Runtime's tree-ensemble operator
evaluates them, built in memory from those arrays, with a NumPy reference beside it. Its output is a probability that the aspect is present (``confidence``), calibrated on
the training sets; an aspect is tagged at ``threshold``. Because the features are relative to
each aspect's own definition, an aspect added to the taxonomy is scored like any other (no
retraining), and nothing of the model is served under an aspect by its name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.nlp.checksums import read_weights, write_weights

FEATURES = (
    "clause_best",
    "clause_description",
    "clause_names",
    "clause_examples_top2",
    "text_best",
    "text_description",
    "text_examples",
    "n_clauses",
    "margin_to_best_other",
    "rank_in_item",
    "z_in_item",
    "log_n_aspects",
    "rule_matched",
    "any_rule_matched",
    "aspect_has_rules",
)
TREE_FIELDS = ("feature", "threshold", "left", "right", "leaf", "value", "missing_left")


@dataclass
class Prototypes:
    """Query-side embeddings of every aspect's words, with which aspect each belongs to."""

    emb: np.ndarray  # (m, d)
    aspect: np.ndarray  # (m,) aspect index
    role: np.ndarray  # (m,) 0 description, 1 name, 2 example

    @classmethod
    def of(cls, taxonomy, encoder) -> Prototypes:
        texts, aspect, role = [], [], []
        for k, a in enumerate(taxonomy.aspects):
            for r, group in (
                (0, [a.description]),
                (1, list(a.names.values())),
                (2, list(a.examples)),
            ):
                for t in group:
                    texts.append(t)
                    aspect.append(k)
                    role.append(r)
        return cls(encoder.encode_queries(texts), np.asarray(aspect), np.asarray(role))

    @property
    def n_aspects(self) -> int:
        return int(self.aspect.max()) + 1 if len(self.aspect) else 0


def _role_max(
    S: np.ndarray, protos: Prototypes
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row and aspect: best similarity to the description, to the names, to the examples,
    and the mean of the two best examples (names stand in for missing examples, the
    description for missing names)."""
    K = protos.n_aspects
    rows = len(S)
    sd, sn, se, top2 = (np.empty((rows, K), np.float32) for _ in range(4))
    for k in range(K):
        own = protos.aspect == k
        d = S[:, own & (protos.role == 0)]
        names = own & (protos.role == 1)
        ex = own & (protos.role == 2)
        n = S[:, names] if names.any() else d
        e = S[:, ex] if ex.any() else n
        sd[:, k] = d.max(axis=1)
        sn[:, k] = n.max(axis=1)
        se[:, k] = e.max(axis=1)
        top2[:, k] = (
            np.partition(e, e.shape[1] - 2, axis=1)[:, -2:].mean(axis=1)
            if e.shape[1] >= 2
            else e[:, 0]
        )
    return sd, sn, se, top2


def batch_features(
    protos: Prototypes,
    text_emb: np.ndarray,
    clause_embs: list[np.ndarray],
    rule_hit: np.ndarray,
    ruled: np.ndarray,
    *,
    clause_scores: list | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(n, K, len(FEATURES))`` features and ``(n, K)`` best clause of a batch of items: one
    matrix product for every clause of the batch, reductions by item. ``clause_scores``, when
    given a list, receives each item's ``(k_i, K)`` best similarity per clause and aspect."""
    n, K = len(text_emb), protos.n_aspects
    clauses = [c if len(c) else text_emb[i][None, :] for i, c in enumerate(clause_embs)]
    counts = np.array([len(c) for c in clauses])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # float64 products: float32 BLAS results depend on how many rows are multiplied at once
    # (up to 1e-5 here), and an item's features must not depend on its batch
    P = protos.emb.T.astype(np.float64)
    C = np.concatenate(clauses).astype(np.float64)
    cd, cn, ce, ct = _role_max(C @ P, protos)
    csm = np.maximum(np.maximum(cd, cn), ce)
    td, tn, te, _ = _role_max(text_emb.astype(np.float64) @ P, protos)
    tsm = np.maximum(np.maximum(td, tn), te)
    out = np.zeros((n, K, len(FEATURES)), np.float32)
    m = np.maximum.reduceat(csm, starts, axis=0)
    out[:, :, 0] = m
    out[:, :, 1] = np.maximum.reduceat(cd, starts, axis=0)
    out[:, :, 2] = np.maximum.reduceat(cn, starts, axis=0)
    out[:, :, 3] = np.maximum.reduceat(ct, starts, axis=0)
    out[:, :, 4], out[:, :, 5], out[:, :, 6] = tsm, td, te
    out[:, :, 7] = np.array([len(c) for c in clause_embs], np.float32)[:, None]
    # each aspect's best clause: the first clause of the item reaching the item's maximum
    owner = np.repeat(np.arange(n), counts)
    idx = np.where(csm >= m[owner], np.arange(len(C))[:, None], len(C))
    best = np.minimum.reduceat(idx, starts, axis=0) - starts[:, None]
    if clause_scores is not None:
        clause_scores.extend(np.split(csm, np.cumsum(counts)[:-1]))
    if K > 1:
        order = np.argsort(-m, axis=1)
        first = np.take_along_axis(m, order[:, :1], axis=1)
        second = np.take_along_axis(m, order[:, 1:2], axis=1)
        is_best = np.arange(K)[None, :] == order[:, :1]
        out[:, :, 8] = m - np.where(is_best, second, first)
    out[:, :, 9] = np.argsort(np.argsort(-m, axis=1), axis=1)
    out[:, :, 10] = (m - m.mean(axis=1, keepdims=True)) / (m.std(axis=1, keepdims=True) + 1e-6)
    out[:, :, 11] = np.log(max(K, 1))
    out[:, :, 12] = rule_hit
    out[:, :, 13] = np.any(rule_hit, axis=1, keepdims=True)
    out[:, :, 14] = ruled
    return out, best


class TreeEnsemble:
    """A binary gradient-boosted tree ensemble as arrays: ``sigmoid(baseline + Σ leaf values)``."""

    def __init__(self, trees: dict[str, np.ndarray], offsets: np.ndarray, baseline: float):
        self.t = trees
        self.offsets = offsets  # first node of each tree
        self.baseline = baseline

    @classmethod
    def from_sklearn(cls, clf) -> TreeEnsemble:
        nodes = [p[0].nodes for p in clf._predictors]
        offsets = np.cumsum([0] + [len(n) for n in nodes])[:-1]
        cat = np.concatenate(nodes)
        shift = np.concatenate([np.full(len(n), o) for n, o in zip(nodes, offsets)])
        trees = {
            "feature": cat["feature_idx"].astype(np.int32),
            "threshold": cat["num_threshold"].astype(np.float64),
            "left": (cat["left"] + shift).astype(np.int32),
            "right": (cat["right"] + shift).astype(np.int32),
            "leaf": cat["is_leaf"].astype(np.uint8),
            "value": cat["value"].astype(np.float64),
            "missing_left": cat["missing_go_to_left"].astype(np.uint8),
        }
        return cls(trees, offsets.astype(np.int32), float(np.ravel(clf._baseline_prediction)[0]))

    def _session(self):
        """The ensemble as an ONNX ``TreeEnsembleRegressor`` run by ONNX Runtime (C++; the
        arrays are the model, the graph is built in memory when first used)."""
        sess = self.__dict__.get("_sess")
        if sess is None:
            import onnxruntime as ort  # heavy: only when an ONNX model is loaded
            from onnx import TensorProto, helper  # heavy: only when a model is exported

            t = self.t
            n = len(t["feature"])
            tree = np.searchsorted(self.offsets, np.arange(n), side="right") - 1
            local = np.arange(n) - self.offsets[tree]
            leaf = t["leaf"] == 1
            node = helper.make_node(
                "TreeEnsembleRegressor",
                ["X"],
                ["Y"],
                domain="ai.onnx.ml",
                n_targets=1,
                aggregate_function="SUM",
                post_transform="NONE",
                base_values=[float(self.baseline)],
                nodes_treeids=tree.tolist(),
                nodes_nodeids=local.tolist(),
                nodes_featureids=np.where(leaf, 0, t["feature"]).astype(int).tolist(),
                nodes_values=np.where(leaf, 0.0, t["threshold"]).astype(np.float32).tolist(),
                nodes_modes=["LEAF" if x else "BRANCH_LEQ" for x in leaf],
                nodes_truenodeids=np.where(leaf, 0, t["left"] - self.offsets[tree])
                .astype(int)
                .tolist(),
                nodes_falsenodeids=np.where(leaf, 0, t["right"] - self.offsets[tree])
                .astype(int)
                .tolist(),
                nodes_missing_value_tracks_true=t["missing_left"].astype(int).tolist(),
                target_treeids=tree[leaf].tolist(),
                target_nodeids=local[leaf].tolist(),
                target_ids=[0] * int(leaf.sum()),
                target_weights=t["value"][leaf].astype(np.float32).tolist(),
            )
            graph = helper.make_graph(
                [node],
                "relevance",
                [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, None])],
                [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])],
            )
            model = helper.make_model(
                graph,
                opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
            )
            model.ir_version = 8
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            sess = ort.InferenceSession(
                model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
            )
            self.__dict__["_sess"] = sess
        return sess

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """``(n,)`` probabilities for the rows of ``X`` (ONNX Runtime's tree ensemble)."""
        if len(X) == 0:
            return np.zeros(0)
        raw = (
            self._session()
            .run(None, {"X": np.ascontiguousarray(X, np.float32)})[0][:, 0]
            .astype(np.float64)
        )
        return 1.0 / (1.0 + np.exp(-raw))

    def predict_proba_numpy(self, X: np.ndarray) -> np.ndarray:
        """The same with NumPy only (the reference the ONNX graph is tested against)."""
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
        write_weights(
            path,
            arrays,
            {
                "baseline": repr(self.trees.baseline),
                "threshold": repr(float(self.threshold)),
                "features": json.dumps(list(self.features)),
                **{k: json.dumps(v) for k, v in meta.items()},
            },
        )

    @classmethod
    def load(cls, path: Path) -> RelevanceModel:
        arrays, meta = read_weights(path)
        feats = tuple(json.loads(meta["features"]))
        if feats != FEATURES:
            raise ValueError(
                f"{path}: relevance features {feats} differ from this code's {FEATURES}; retrain it"
            )
        trees = TreeEnsemble(
            {k: arrays[f"tree.{k}"] for k in TREE_FIELDS},
            arrays["tree.offsets"],
            float(meta["baseline"]),
        )
        return cls(trees, float(meta["threshold"]), feats)
