"""Zero-shot aspect tagging from the taxonomy's own words.

Every aspect is represented by the embeddings of its description, display names and
example phrases (any language the encoder knows). A clause's score for an aspect is its
best cosine similarity to those prototypes. An aspect is tagged in a clause when its score
clears ``threshold`` and lies within ``margin`` of the clause's best aspect (similarities
are relative: a clause about delivery is also somewhat close to "packaging"), with
``confidence = sigmoid(slope * (score - threshold))``. The calibration lives in the model
artifact, so an aspect added to ``configs/taxonomy.yaml`` is tagged without retraining.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.domain import Taxonomy
from service.nlp.encoder import Encoder


@dataclass(frozen=True)
class AspectHit:
    aspect: str
    confidence: float
    clause: int  # index of the evidence clause within the item
    reason: str = "model"  # rule | model | rule+model
    rule: str | None = None  # the taxonomy pattern that matched, for rule tags


class ZeroShotAspectTagger:
    def __init__(
        self,
        taxonomy: Taxonomy,
        *,
        threshold: float,
        slope: float,
        margin: float = 1.0,
        max_aspects: int = 6,
    ):
        self.taxonomy = taxonomy
        self.threshold = threshold
        self.slope = slope
        self.margin = margin
        self.max_aspects = max_aspects

    def prototype_texts(self) -> tuple[list[str], list[int]]:
        texts, owner = [], []
        for k, a in enumerate(self.taxonomy.aspects):
            for t in [a.description, *a.names.values(), *a.examples]:
                texts.append(t)
                owner.append(k)
        return texts, owner

    def fit(self, encoder: Encoder) -> ZeroShotAspectTagger:
        texts, owner = self.prototype_texts()
        # the taxonomy's words are the query side, feedback clauses the passage side
        self.prototypes_ = encoder.encode_queries(texts)
        self.owner_ = np.asarray(owner)
        return self

    def clause_scores(self, clause_emb: np.ndarray) -> np.ndarray:
        """``(n_clauses, n_aspects)`` best similarity of each clause to each aspect."""
        sims = clause_emb.astype(np.float64) @ self.prototypes_.T.astype(
            np.float64
        )  # batch-independent
        n_aspects = len(self.taxonomy.aspects)
        out = np.full((len(clause_emb), n_aspects), -1.0, dtype=np.float32)
        for k in range(n_aspects):
            out[:, k] = sims[:, self.owner_ == k].max(axis=1)
        return out

    def confidence(self, scores: np.ndarray) -> np.ndarray:
        """Per clause and aspect; 0 where the aspect is not within ``margin`` of the best."""
        conf = 1.0 / (1.0 + np.exp(-self.slope * (scores - self.threshold)))
        return np.where(scores >= scores.max(axis=1, keepdims=True) - self.margin, conf, 0.0)

    def decide(self, scores: np.ndarray) -> np.ndarray:
        """Boolean ``(n_clauses, n_aspects)``: which aspects each clause is tagged with."""
        return self.confidence(scores) >= 0.5

    def tag(self, clause_emb: np.ndarray) -> list[AspectHit]:
        """Aspects of one item from the embeddings of its clauses, most confident first."""
        if len(clause_emb) == 0:
            return []
        conf = self.confidence(self.clause_scores(clause_emb))
        best_clause = conf.argmax(axis=0)
        best = conf.max(axis=0)
        hits = [
            AspectHit(self.taxonomy.aspects[k].id, float(best[k]), int(best_clause[k]))
            for k in np.argsort(-best)
            if best[k] >= 0.5
        ]
        return hits[: self.max_aspects]
