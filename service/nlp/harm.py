"""The harm verifier: a learned check on what the health-and-safety rules matched.

The ``kind: severity`` aspects that guard health and safety (``safety: true``) are found by
their phrase rules (``service/nlp/rules.py``). Phrases cannot tell a customer's injury from a
player's ("injur*"), an expired carton of milk from an expired coupon, or "烂" as "rotten" from
"烂" as "lousy". The verifier reads the clause the rules matched: its embedding comes from the
pipeline's encoder, so nothing extra is encoded. It gives the probability that the clause
reports a harm under the labeling guideline of ``benchmarks/severity/README.md``. A rule match
below the verifier's threshold is not tagged. The verifier is a standardised logistic regression
trained by ``python -m training.train_harm_verifier`` on hand-labeled real texts, with its
threshold chosen by cross-validation. What it catches and what it misses (figures of speech,
hearsay) are in the model card.

A verifier belongs to one encoder (the manifest's ``base``); the registry never serves it
over another, and a pipeline without one tags safety aspects by their rules alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from service.nlp.checksums import read_weights, write_weights


@dataclass
class HarmVerifier:
    mean: np.ndarray  # (d,) feature standardisation
    scale: np.ndarray  # (d,)
    coef: np.ndarray  # (d,)
    intercept: float
    threshold: float
    meta: dict = field(default_factory=dict)

    def probability(self, clause_emb: np.ndarray) -> np.ndarray:
        """``(n,)`` probability that each evidence clause (``(n, d)`` embeddings) reports a harm."""
        x = (np.atleast_2d(np.asarray(clause_emb, np.float64)) - self.mean) / self.scale
        z = x @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def save(self, path: Path) -> None:
        write_weights(
            path,
            {
                "mean": self.mean.astype(np.float32),
                "scale": self.scale.astype(np.float32),
                "coef": self.coef.astype(np.float32),
            },
            {
                "intercept": repr(float(self.intercept)),
                "threshold": repr(float(self.threshold)),
                "meta": json.dumps(self.meta, ensure_ascii=False),
            },
        )

    @classmethod
    def load(cls, path: Path) -> HarmVerifier:
        t, meta = read_weights(path)
        return cls(
            t["mean"].astype(np.float64),
            t["scale"].astype(np.float64),
            t["coef"].astype(np.float64),
            float(meta["intercept"]),
            float(meta["threshold"]),
            json.loads(meta.get("meta", "{}")),
        )
