"""Train a team model on a team's labels, and report it against the generic model.

``fit_team`` learns the corrections of ``service/nlp/team.py`` with L-BFGS on the frozen
encoder's features (seconds on a CPU for thousands of labels): the sentiment correction from
the overall sentiment labels (weight 1), the aspect-sentiment labels read on their evidence
clauses (weight 1) and rated items (``rating_weight``); one head per aspect with at least
``min_labels`` present and absent labels, kept only where its out-of-fold decisions beat the
generic tagger's on the same labeled items. The L2 strength of each is chosen by an inner
cross-validation among a few values; the aspects' tagging threshold is the one that maximises
F1 on out-of-fold predictions.

``evaluate`` cross-validates the whole recipe on the human labels (``folds``-fold, stratified
by the overall sentiment label where there is one): sentiment macro-F1, accuracy and expected
calibration error; per-aspect precision, recall and F1 and their micro average; aspect
sentiment macro-F1, each for the generic model and the team model on the same held-out items.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from service.domain import SENTIMENT_LABELS
from service.nlp.sentiment import SentimentHead
from service.nlp.team import (
    TeamAspectHeads,
    TeamModel,
    TeamSentimentHead,
    aspect_design,
    best_clauses,
    logit,
    prior_logits,
    sigmoid,
    softmax,
)
from service.teach.features import Featurized

LAMBDAS = (1e-4, 1e-3, 1e-2, 1e-1)
THRESHOLDS = np.round(np.arange(0.2, 0.71, 0.05), 2)


@dataclass
class TeamLabels:
    """Human labels aligned with a ``Featurized`` batch (``aspect_ids``: the taxonomy's order)."""

    aspect_ids: list[str]
    sentiment: np.ndarray  # (n,) class index, -1 unlabeled
    aspects: np.ndarray  # (n, K) 1 present, 0 absent, -1 unlabeled
    aspect_sentiment: np.ndarray  # (n, K) class index, -1 unlabeled
    fingerprints: dict[str, str] = field(default_factory=dict)
    trainable: set[str] = field(default_factory=set)  # topic aspects (severity ones stay on rules)

    def take(self, idx) -> TeamLabels:
        idx = np.asarray(idx, int)
        return TeamLabels(
            self.aspect_ids,
            self.sentiment[idx],
            self.aspects[idx],
            self.aspect_sentiment[idx],
            self.fingerprints,
            self.trainable,
        )

    @classmethod
    def empty(cls, n: int, aspect_ids: list[str], **kw) -> TeamLabels:
        K = len(aspect_ids)
        return cls(aspect_ids, np.full(n, -1), np.full((n, K), -1), np.full((n, K), -1), **kw)


@dataclass
class Weak:
    """Rated items: text embeddings and the class their rating maps to."""

    text: np.ndarray  # (m, d)
    label: np.ndarray  # (m,)
    weight: float


# --- the two fits ----------------------------------------------------------------------------


def _fit_sentiment(X: np.ndarray, y: np.ndarray, w: np.ndarray, Z: np.ndarray, lam: float):
    n, d = X.shape
    Y = np.eye(3)[y]
    wsum = w.sum()

    def f(theta):
        W, b = theta[: 3 * d].reshape(3, d), theta[3 * d :]
        P = softmax(Z + X @ W.T + b)
        loss = -(w * np.log(np.clip((P * Y).sum(1), 1e-12, None))).sum() / wsum + lam * (W**2).sum()
        G = (P - Y) * (w / wsum)[:, None]
        return loss, np.concatenate([(G.T @ X + 2 * lam * W).ravel(), G.sum(0)])

    res = minimize(f, np.zeros(3 * d + 3), jac=True, method="L-BFGS-B", options={"maxiter": 300})
    return res.x[: 3 * d].reshape(3, d), res.x[3 * d :]


def _fit_aspect(X: np.ndarray, z: np.ndarray, r: np.ndarray, y: np.ndarray, lam: float):
    """``sigmoid(a·z + rr·r + X·w + b)`` from ``a = 1``: the zero-shot prior, then the labels."""
    n, d = X.shape

    def f(theta):
        w, a, rr, b = theta[:d], theta[d], theta[d + 1], theta[d + 2]
        p = sigmoid(a * z + rr * r + X @ w + b)
        pc = np.clip(p, 1e-12, 1 - 1e-12)
        loss = -(y * np.log(pc) + (1 - y) * np.log(1 - pc)).mean() + lam * (
            (w**2).sum() + (a - 1) ** 2 + 0.1 * rr**2
        )
        g = (p - y) / n
        return loss, np.concatenate(
            [X.T @ g + 2 * lam * w, [g @ z + 2 * lam * (a - 1), g @ r + 0.2 * lam * rr, g.sum()]]
        )

    theta0 = np.zeros(d + 3)
    theta0[d] = 1.0
    res = minimize(f, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 300})
    t = res.x
    return t[:d], float(t[d]), float(t[d + 1]), float(t[d + 2])


def _folds(n: int, k: int, strata: np.ndarray | None, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    fold = np.empty(n, int)
    groups = (
        [np.arange(n)] if strata is None else [np.where(strata == v)[0] for v in np.unique(strata)]
    )
    offset = 0
    for g in groups:
        g = rng.permutation(g)
        fold[g] = (np.arange(len(g)) + offset) % k
        offset += len(g)
    return [np.where(fold == j)[0] for j in range(k)]


# --- the recipe ------------------------------------------------------------------------------


@dataclass
class Recipe:
    min_labels: int = 3
    folds: int = 5
    seed: int = 13


def _sentiment_rows(feats: Featurized, labels: TeamLabels, weak: Weak | None):
    """Training rows of the sentiment correction: items, aspect clauses, rated items."""
    Xs, ys, ws = [], [], []
    m = labels.sentiment >= 0
    if m.any():
        Xs.append(feats.text[m])
        ys.append(labels.sentiment[m])
        ws.append(np.ones(int(m.sum())))
    rows, cols = np.where(labels.aspect_sentiment >= 0)
    if len(rows):
        Xs.append(
            np.stack(
                [
                    feats.clauses[i][int(feats.evidence[i, k])]
                    if len(feats.clauses[i])
                    else feats.text[i]
                    for i, k in zip(rows, cols)
                ]
            )
        )
        ys.append(labels.aspect_sentiment[rows, cols])
        ws.append(np.ones(len(rows)))
    if weak is not None and len(weak.label) and weak.weight > 0:
        Xs.append(weak.text)
        ys.append(weak.label)
        ws.append(np.full(len(weak.label), weak.weight))
    if not Xs:
        return None
    return np.concatenate(Xs).astype(np.float64), np.concatenate(ys).astype(int), np.concatenate(ws)


def fit_sentiment(
    base: SentimentHead, feats: Featurized, labels: TeamLabels, weak: Weak | None, recipe: Recipe
) -> tuple[TeamSentimentHead | None, dict]:
    rows = _sentiment_rows(feats, labels, weak)
    if rows is None or len(np.unique(rows[1])) < 2:
        return None, {"trained": False, "reason": "fewer than two sentiment classes labeled"}
    X, y, w = rows
    Z = prior_logits(base, X)
    lam = LAMBDAS[-1]
    if len(y) >= 2 * 3:
        k = min(3, int(np.bincount(y).max()))
        losses = {}
        folds = _folds(len(y), max(2, k), y, recipe.seed)
        for lam_ in LAMBDAS:
            total = 0.0
            for f in folds:
                tr = np.setdiff1d(np.arange(len(y)), f)
                W, b = _fit_sentiment(X[tr], y[tr], w[tr], Z[tr], lam_)
                P = softmax(Z[f] + X[f] @ W.T + b)
                total += -(w[f] * np.log(np.clip(P[np.arange(len(f)), y[f]], 1e-12, None))).sum()
            losses[lam_] = total
        lam = min(losses, key=losses.get)
    W, b = _fit_sentiment(X, y, w, Z, lam)
    return TeamSentimentHead(base, W.astype(np.float32), b.astype(np.float32)), {
        "trained": True,
        "lambda": lam,
        "rows": int(len(y)),
        "weak_rows": int(0 if weak is None else len(weak.label)),
    }


def _aspect_inputs(feats: Featurized, k: int, rows: np.ndarray):
    X = aspect_design(
        feats.text[rows],
        best_clauses([feats.clauses[i] for i in rows], feats.best[rows], k, feats.text[rows]),
    ).astype(np.float64)
    return X, logit(feats.probs[rows, k]), feats.rule[rows, k]


def fit_aspects(
    feats: Featurized, labels: TeamLabels, recipe: Recipe
) -> tuple[TeamAspectHeads | None, dict]:
    ids = labels.aspect_ids
    chosen = []
    for k, aid in enumerate(ids):
        y = labels.aspects[:, k]
        if (
            aid in labels.trainable
            and (y == 1).sum() >= recipe.min_labels
            and (y == 0).sum() >= recipe.min_labels
        ):
            chosen.append(k)
    if not chosen:
        return None, {"trained": []}
    # one L2 strength and one threshold for every head, from out-of-fold predictions pooled
    # over the aspects (per-aspect choices on a few labels would be noise)
    oof = {lam: [] for lam in LAMBDAS}
    gold, evaluated = [], []
    for k in chosen:
        rows = np.where(labels.aspects[:, k] >= 0)[0]
        y = labels.aspects[rows, k].astype(float)
        X, z, r = _aspect_inputs(feats, k, rows)
        nfold = int(min(3, (y == 1).sum(), (y == 0).sum()))
        if nfold < 2:
            continue
        folds = _folds(len(rows), nfold, y.astype(int), recipe.seed + k)
        pred = {lam: np.zeros(len(rows)) for lam in LAMBDAS}
        for f in folds:
            tr = np.setdiff1d(np.arange(len(rows)), f)
            for lam in LAMBDAS:
                w, a, rr, b = _fit_aspect(X[tr], z[tr], r[tr], y[tr], lam)
                pred[lam][f] = sigmoid(a * z[f] + rr * r[f] + X[f] @ w + b)
        for lam in LAMBDAS:
            oof[lam].append(pred[lam])
        gold.append(y)
        evaluated.append(k)
    lam, thr = LAMBDAS[1], 0.5
    if gold:
        g = np.concatenate(gold).astype(bool)
        best_f1 = -1.0
        for lam_ in LAMBDAS:
            p = np.concatenate(oof[lam_])
            for t in THRESHOLDS:
                pr = p >= t
                tp = (pr & g).sum()
                f1 = 2 * tp / max(pr.sum() + g.sum(), 1)
                if f1 > best_f1 + 1e-9:
                    best_f1, lam, thr = f1, lam_, float(t)
    # a head serves only where its out-of-fold decisions beat the generic tagger's on the same
    # labeled items: on a handful of labels, or a sample the queue skewed, it may not
    kept, dropped = [], {}
    at = {k: i for i, k in enumerate(evaluated)}
    for k in chosen:
        if k not in at:
            dropped[ids[k]] = "too few labels to validate"
            continue
        rows = np.where(labels.aspects[:, k] >= 0)[0]
        y = gold[at[k]].astype(bool)
        team_f1 = _f1(oof[lam][at[k]] >= thr, y)
        generic_f1 = _f1(feats.generic_tags[rows, k], y)
        if team_f1 >= generic_f1:
            kept.append(k)
        else:
            dropped[ids[k]] = f"out-of-fold F1 {100 * team_f1:.1f} < generic {100 * generic_f1:.1f}"
    chosen = kept
    if not chosen:
        return None, {"trained": [], "dropped": dropped}
    Ws, A, R, B = [], [], [], []
    for k in chosen:
        rows = np.where(labels.aspects[:, k] >= 0)[0]
        X, z, r = _aspect_inputs(feats, k, rows)
        w, a, rr, b = _fit_aspect(X, z, r, labels.aspects[rows, k].astype(float), lam)
        Ws.append(w)
        A.append(a)
        R.append(rr)
        B.append(b)
    served = [ids[k] for k in chosen]
    heads = TeamAspectHeads(
        served,
        {aid: labels.fingerprints.get(aid, "") for aid in served},
        np.array(Ws, np.float32),
        np.array(A, np.float32),
        np.array(R, np.float32),
        np.array(B, np.float32),
        np.full(len(chosen), thr, np.float32),
    )
    return heads, {"trained": served, "lambda": lam, "threshold": thr, "dropped": dropped}


def _f1(pred: np.ndarray, gold: np.ndarray) -> float:
    return 2 * float((pred & gold).sum()) / max(int(pred.sum() + gold.sum()), 1)


def fit_team(
    base: SentimentHead,
    feats: Featurized,
    labels: TeamLabels,
    weak: Weak | None = None,
    recipe: Recipe | None = None,
    meta: dict | None = None,
) -> tuple[TeamModel, dict]:
    recipe = recipe or Recipe()
    sent, s_info = fit_sentiment(base, feats, labels, weak, recipe)
    aspects, a_info = fit_aspects(feats, labels, recipe)
    return TeamModel(sent, aspects, dict(meta or {})), {"sentiment": s_info, "aspects": a_info}


# --- applying a team model to featurized items (the same arithmetic as the served tagger) ----


def team_tags(
    model: TeamModel, feats: Featurized, aspect_ids: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """``(tags (n, K) bool, probabilities (n, K))``: team heads where trained, generic elsewhere."""
    tags = feats.generic_tags.copy()
    probs = feats.probs.copy()
    a = model.aspects
    if a is None or not len(feats):
        return tags, probs
    served = [aid for aid in a.aspects if aid in aspect_ids]
    k_of = {aid: aspect_ids.index(aid) for aid in served}
    p = a.probabilities(
        k_of, feats.probs, feats.best, feats.text, feats.clauses, feats.rule, served
    )
    for j, aid in enumerate(served):
        k = k_of[aid]
        probs[:, k] = p[:, j]
        tags[:, k] = p[:, j] >= a.threshold[a.aspects.index(aid)]
    return tags, probs


def sentiment_probs(head, X: np.ndarray) -> np.ndarray:
    return head.predict_proba(X) if len(X) else np.zeros((0, 3))


# --- evaluation ------------------------------------------------------------------------------


def _macro_f1(y: np.ndarray, pred: np.ndarray, classes: int = 3) -> float:
    f1s = []
    for c in range(classes):
        if not ((y == c).any() or (pred == c).any()):
            continue
        tp = ((pred == c) & (y == c)).sum()
        f1s.append(2 * tp / max((pred == c).sum() + (y == c).sum(), 1))
    return float(np.mean(f1s)) if f1s else 0.0


def _ece(P: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    conf, pred = P.max(1), P.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    e = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            e += m.mean() * abs((pred[m] == y[m]).mean() - conf[m].mean())
    return float(e)


def _prf(pred: np.ndarray, gold: np.ndarray) -> dict:
    tp = int((pred & gold).sum())
    p = tp / max(int(pred.sum()), 1)
    r = tp / max(int(gold.sum()), 1)
    return {
        "precision": round(100 * p, 1),
        "recall": round(100 * r, 1),
        "f1": round(100 * 2 * p * r / max(p + r, 1e-9), 1) if (pred.any() or gold.any()) else None,
        "false_positives": int(pred.sum()) - tp,
    }


def sentiment_figures(P: np.ndarray, y: np.ndarray) -> dict:
    pred = P.argmax(1)
    return {
        "macro_f1": round(100 * _macro_f1(y, pred), 1),
        "accuracy": round(100 * float((pred == y).mean()), 1),
        "ece": round(_ece(P, y), 4),
    }


def evaluate(
    base: SentimentHead,
    feats: Featurized,
    labels: TeamLabels,
    weak: Weak | None = None,
    recipe: Recipe | None = None,
    progress=None,
) -> dict:
    """Cross-validated figures of the recipe against the generic model on the same items."""
    recipe = recipe or Recipe()
    n = len(feats)
    ids = labels.aspect_ids
    t0 = time.perf_counter()
    strata = labels.sentiment if (labels.sentiment >= 0).all() else None
    k = max(2, min(recipe.folds, n // 2)) if n >= 4 else 0
    team_P = np.zeros((n, 3))
    team_tag = np.zeros((n, len(ids)), bool)
    team_asp_P: dict[tuple[int, int], np.ndarray] = {}
    heads_per_fold = []
    if k:
        for j, f in enumerate(_folds(n, k, strata, recipe.seed)):
            tr = np.setdiff1d(np.arange(n), f)
            model, info = fit_team(base, feats.take(tr), labels.take(tr), weak, recipe)
            heads_per_fold.append(len(info["aspects"].get("trained", [])))
            held = feats.take(f)
            head = model.sentiment or base
            team_P[f] = sentiment_probs(head, held.text)
            team_tag[f] = team_tags(model, held, ids)[0]
            for i_local, i in enumerate(f):
                for kk in np.where(labels.aspect_sentiment[i] >= 0)[0]:
                    team_asp_P[(i, kk)] = sentiment_probs(head, held.clause_at(kk, [i_local]))[0]
            if progress is not None:
                progress(j + 1, k)
    gen_P = sentiment_probs(base, feats.text)
    report: dict = {"items": n, "folds": k, "seconds": None}
    m = labels.sentiment >= 0
    if k and m.sum() >= 2:
        y = labels.sentiment[m]
        report["sentiment"] = {
            "n": int(m.sum()),
            "generic": sentiment_figures(gen_P[m], y),
            "team": sentiment_figures(team_P[m], y),
        }
    per, G, T, Gold = {}, [], [], []
    for kk, aid in enumerate(ids):
        rows = np.where(labels.aspects[:, kk] >= 0)[0]
        if not len(rows):
            continue
        gold = labels.aspects[rows, kk] == 1
        g, t = (
            feats.generic_tags[rows, kk],
            team_tag[rows, kk] if k else feats.generic_tags[rows, kk],
        )
        per[aid] = {
            "labels": int(len(rows)),
            "present": int(gold.sum()),
            "generic": _prf(g, gold),
            "team": _prf(t, gold),
        }
        G.append(g)
        T.append(t)
        Gold.append(gold)
    if Gold and k:
        gold = np.concatenate(Gold)
        report["aspects"] = {
            "pairs": int(len(gold)),
            "generic": _prf(np.concatenate(G), gold),
            "team": _prf(np.concatenate(T), gold),
            "per_aspect": per,
        }
    if team_asp_P:
        keys = sorted(team_asp_P)
        y = np.array([labels.aspect_sentiment[i, kk] for i, kk in keys])
        gP = np.stack([sentiment_probs(base, feats.clause_at(kk, [i]))[0] for i, kk in keys])
        tP = np.stack([team_asp_P[key] for key in keys])
        report["aspect_sentiment"] = {
            "n": len(keys),
            "generic": sentiment_figures(gP, y),
            "team": sentiment_figures(tP, y),
        }
    report["seconds"] = round(time.perf_counter() - t0, 2)
    return report


def sentiment_index(value: str) -> int:
    return SENTIMENT_LABELS.index(value)
