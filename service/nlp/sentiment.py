"""The sentiment head: a small MLP (or linear layer) over sentence embeddings, with
temperature scaling for calibrated probabilities.

``sentiment_score = p(positive) - p(negative)``: the expected polarity when negative,
neutral and positive count -1, 0 and +1. It lies in [-1, 1], is 0 for a neutral or an
evenly torn item, and moves smoothly with the model's confidence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import erf

from service.domain import SENTIMENT_LABELS
from service.nlp.checksums import read_weights, write_weights


def gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


@dataclass(frozen=True)
class SentimentHead:
    weight: np.ndarray  # (classes, hidden or dim)
    bias: np.ndarray  # (classes,)
    temperature: float
    labels: tuple[str, ...] = SENTIMENT_LABELS
    hidden_weight: np.ndarray | None = None  # (hidden, dim); None for a linear head
    hidden_bias: np.ndarray | None = None

    def __post_init__(self):
        if tuple(self.labels) != SENTIMENT_LABELS:
            raise ValueError(f"head labels {self.labels} differ from {SENTIMENT_LABELS}")
        # the float64 copies the products run on, made once (not on every call: the pipeline
        # calls the head once per text for its clauses)
        f64 = lambda a: None if a is None else a.T.astype(np.float64)  # noqa: E731
        object.__setattr__(self, "_w64", f64(self.weight))
        object.__setattr__(self, "_h64", f64(self.hidden_weight))

    def logits(self, emb: np.ndarray) -> np.ndarray:
        # float64: float32 BLAS results depend on how many rows go in at once, and a text's
        # probabilities must not depend on its batch (one score per text)
        x = np.asarray(emb, np.float64)
        if self.hidden_weight is not None:
            x = gelu(x @ self._h64 + self.hidden_bias)
        return x @ self._w64 + self.bias

    def predict_proba(self, emb: np.ndarray) -> np.ndarray:
        z = self.logits(emb) / self.temperature
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def save(self, path: Path) -> None:
        tensors = {"weight": self.weight.astype(np.float32), "bias": self.bias.astype(np.float32)}
        if self.hidden_weight is not None:
            tensors["hidden_weight"] = self.hidden_weight.astype(np.float32)
            tensors["hidden_bias"] = self.hidden_bias.astype(np.float32)
        write_weights(
            path,
            tensors,
            {
                "labels": json.dumps(list(self.labels)),
                "temperature": repr(float(self.temperature)),
            },
        )

    @classmethod
    def load(cls, path: Path) -> SentimentHead:
        t, meta = read_weights(path)
        return cls(
            t["weight"],
            t["bias"],
            float(meta["temperature"]),
            tuple(json.loads(meta["labels"])),
            t.get("hidden_weight"),
            t.get("hidden_bias"),
        )


def sentiment_score(probs: np.ndarray) -> np.ndarray:
    """Expected polarity in [-1, 1] from ``(n, 3)`` probabilities ordered neg, neu, pos."""
    return np.clip(probs[:, 2] - probs[:, 0], -1.0, 1.0)
