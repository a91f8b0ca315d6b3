"""The active labeling queue: the next items to label, chosen for what they teach.

Each candidate gets a score from six signals in [0, 1], then the queue is filled greedily
with a penalty for items close (in embedding space) to one already chosen or already
labeled, so a page of the queue is not ten copies of one complaint:

- ``sentiment_uncertainty``: the normalised entropy of the served sentiment;
- ``aspect_uncertainty``: how close the item's most borderline aspect probability is to that
  aspect's threshold;
- ``disagreement``: how far the generic and the team model's sentiment differ (once a team
  model serves; half the L1 distance of their probabilities);
- ``scarcity``: the item (probably) has an aspect with few labels: ``1 / (1 + labels)``, so
  an aspect without labels is asked about first;
- ``typicality``: how typical of the candidates the item is (its rank by similarity to their
  mean direction): uncertainty alone picks outliers, and heads fitted on outliers are skewed;
- ``recency``: newer items first, a little (they are what the team looks at).

The same function serves the API (candidates read from the store) and the learning-curve
benchmark (candidates from a labeled set), so what is measured is what is served.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WEIGHTS = {
    "sentiment_uncertainty": 0.3,
    "aspect_uncertainty": 0.3,
    "disagreement": 0.2,
    "scarcity": 0.25,
    "typicality": 0.3,
    "recency": 0.05,
}
DIVERSITY = 0.35  # penalty per unit of cosine similarity to the nearest chosen or labeled item


@dataclass
class Candidates:
    emb: np.ndarray  # (n, d) L2-normalised text embeddings
    sentiment: np.ndarray  # (n, 3) served sentiment probabilities
    aspect_probs: np.ndarray  # (n, K) served aspect probabilities (0 where unknown)
    thresholds: np.ndarray  # (K,)
    generic_sentiment: np.ndarray | None = None  # (n, 3) when a team model serves
    age: np.ndarray | None = None  # (n,) 0 for the newest … 1 for the oldest

    def __len__(self) -> int:
        return len(self.emb)


def signals(c: Candidates, label_counts: np.ndarray) -> dict[str, np.ndarray]:
    n = len(c)
    p = np.clip(c.sentiment, 1e-9, 1)
    out = {"sentiment_uncertainty": -(p * np.log(p)).sum(1) / np.log(3)}
    thr = np.clip(c.thresholds[None, :], 1e-3, 1 - 1e-3)
    span = np.maximum(thr, 1 - thr)
    close = np.where(c.aspect_probs > 0, 1 - np.abs(c.aspect_probs - thr) / span, 0.0)
    out["aspect_uncertainty"] = close.max(1) if close.shape[1] else np.zeros(n)
    out["disagreement"] = (
        0.5 * np.abs(c.sentiment - c.generic_sentiment).sum(1)
        if c.generic_sentiment is not None
        else np.zeros(n)
    )
    likely = c.aspect_probs >= 0.5 * thr
    scarce = np.where(likely, 1.0 / (1.0 + label_counts[None, :]), 0.0)
    out["scarcity"] = scarce.max(1) if scarce.shape[1] else np.zeros(n)
    # how typical of the candidates an item is (its similarity to their mean direction, as a
    # rank): uncertainty alone picks outliers, and a model fitted on outliers is skewed
    centre = c.emb.mean(0)
    typical = c.emb @ centre
    out["typicality"] = np.argsort(np.argsort(typical)) / max(n - 1, 1)
    out["recency"] = 1 - c.age if c.age is not None else np.zeros(n)
    return out


def choose(
    c: Candidates,
    *,
    k: int,
    label_counts: np.ndarray,
    labeled_emb: np.ndarray | None = None,
    weights: dict[str, float] | None = None,
    diversity: float = DIVERSITY,
) -> list[tuple[int, float, dict]]:
    """``[(index, score, signals)]`` of the ``k`` items to label next, best first."""
    if not len(c) or k <= 0:
        return []
    w = weights or WEIGHTS
    sig = signals(c, np.asarray(label_counts, float))
    base = sum(w[name] * v for name, v in sig.items())
    nearest = np.zeros(len(c))
    if labeled_emb is not None and len(labeled_emb):
        nearest = np.clip((c.emb @ labeled_emb.T).max(1), 0, 1)
    chosen: list[tuple[int, float, dict]] = []
    taken = np.zeros(len(c), bool)
    for _ in range(min(k, len(c))):
        score = np.where(taken, -np.inf, base - diversity * nearest)
        i = int(score.argmax())
        taken[i] = True
        chosen.append(
            (i, float(score[i]), {name: round(float(v[i]), 3) for name, v in sig.items()})
        )
        nearest = np.maximum(nearest, np.clip(c.emb @ c.emb[i], 0, 1))
    return chosen
