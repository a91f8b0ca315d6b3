"""Trained aspect-category heads, and the tagger that combines them with the zero-shot one.

A head set is trained on one labeled dataset's own categories (``training/train_aspects.py``)
and reads the same single encoder pass as everything else: the item's text embedding ``t``
and its clause embeddings ``c_1..c_k``. For each category:

- a shared layer ``g(x) = gelu(W1·x + b1)`` and a logit ``L(x) = Wd·g(x) + bd`` score the text
  and every clause; the category's probability is ``sigmoid(max L)`` (the item mentions it
  if the text or any one clause does), its evidence clause the clause with the highest logit;
- its sentiment reads an attention-pooled view of the item: ``softmax(L)`` over the text and
  its clauses weights their embeddings into ``r``, and ``[r; t]`` plus a learned per-category
  vector goes through a small MLP to negative/neutral/positive. So "great taste but the box
  arrived crushed" is read on taste from the taste clause and on packaging from the box one.

``aspect_mapping.yaml`` (in the config folder) says which dataset category could serve which
taxonomy aspect; ``service/nlp/tagger.py`` serves it there only when it was validated on that
aspect's current definition (``training.validate_heads``), never by the aspect's name alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from service.nlp.aspects import AspectHit
from service.nlp.checksums import read_weights, write_weights
from service.nlp.sentiment import gelu

PARAMS = ("W1", "b1", "Wd", "bd", "Ws1", "bs1", "E", "Ws2", "bs2")


def _softmax(z: np.ndarray, axis: int) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


@dataclass
class AspectHeads:
    name: str
    categories: list[str]
    params: dict[str, np.ndarray]
    threshold: float = 0.5
    temperature: float = 1.0  # of the sentiment logits (calibration)

    def predict(
        self, text_emb: np.ndarray, clause_emb: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For one item: ``(probability (K,), evidence clause index (K,), sentiment (K, 3))``."""
        p = self.params
        x = np.vstack([text_emb[None, :], clause_emb]) if len(clause_emb) else text_emb[None, :]
        logits = gelu(x @ p["W1"].T + p["b1"]) @ p["Wd"].T + p["bd"]  # (1 + k, K)
        prob = 1.0 / (1.0 + np.exp(-logits.max(axis=0)))
        evidence = (
            logits[1:].argmax(axis=0) if len(clause_emb) else np.zeros(len(self.categories), int)
        )
        rep = _softmax(logits, axis=0).T @ x  # (K, d)
        s_in = np.hstack([rep, np.repeat(text_emb[None, :], len(rep), axis=0)])
        hidden = gelu(s_in @ p["Ws1"].T + p["bs1"] + p["E"])
        sent = _softmax((hidden @ p["Ws2"].T + p["bs2"]) / self.temperature, axis=1)
        return prob, evidence, sent

    def save(self, path: Path) -> None:
        write_weights(
            path,
            {k: self.params[k].astype(np.float32) for k in PARAMS},
            {
                "name": self.name,
                "categories": json.dumps(self.categories),
                "threshold": repr(float(self.threshold)),
                "temperature": repr(float(self.temperature)),
            },
        )

    @classmethod
    def load(cls, path: Path) -> AspectHeads:
        arrays, meta = read_weights(path)
        return cls(
            meta["name"],
            json.loads(meta["categories"]),
            arrays,
            float(meta["threshold"]),
            float(meta["temperature"]),
        )


def load_mapping(path: Path) -> dict[str, dict[str, str]]:
    """``{dataset: {category: taxonomy id}}``; categories mapped to nothing are left out."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return {
        ds: {cat: aid for cat, aid in (m.get("categories") or {}).items() if aid}
        for ds, m in raw.items()
    }


@dataclass(frozen=True)
class HeadHit(AspectHit):
    probabilities: tuple[float, float, float] | None = None  # the aspect's own sentiment


def _rescale(p: float, threshold: float) -> float:
    """Map ``[0, threshold, 1]`` piecewise-linearly onto ``[0, 0.5, 1]``."""
    if p < threshold:
        return 0.5 * p / max(threshold, 1e-9)
    return 0.5 + 0.5 * (p - threshold) / max(1 - threshold, 1e-9)
