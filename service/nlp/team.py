"""A team model: small heads over the generic pipeline, learned from one team's labels.

Both heads start from the generic model and learn only a correction, so that ten labels
cannot undo what the generic model knows and a few hundred can move it far:

- **sentiment**: ``softmax(z_g(x) + W·x + b)`` where ``z_g`` are the generic head's
  (temperature-scaled) logits and ``x`` the text or clause embedding. With ``W = 0, b = 0`` it is
  the generic head. Because the pipeline reads every aspect's sentiment from its evidence
  clause through the same head, a team's sentiment labels (and its aspect-sentiment labels,
  trained on the clauses) move aspect sentiment too.
- **aspects**: for each aspect with enough labels, ``sigmoid(a·logit(p_g) + r·rule + w·[t; c] + b)``
  where ``p_g`` is the generic tagger's probability (relevance model), ``rule`` whether one of
  the aspect's taxonomy rules matched, ``t`` the text and ``c`` the aspect's best clause
  embedding. Training starts at ``a = 1`` and everything else 0: the zero-shot prior. A team
  aspect is tagged when its probability clears its own threshold; its rules are evidence the
  head has weighed, not a tag on their own.

Each aspect head carries the fingerprint of the definition it was trained on: an edited
aspect falls back to the generic tagger until it is trained again. The artifact is one
safetensors file (a few hundred KB) with the base encoder and the base sentiment head's
checksum in its metadata; the registry refuses it over any other base.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from service.nlp.sentiment import SentimentHead

EPS = 1e-4


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def prior_logits(base: SentimentHead, emb: np.ndarray) -> np.ndarray:
    """The generic head's logits as it serves them (divided by its temperature)."""
    return base.logits(emb) / base.temperature


@dataclass
class TeamSentimentHead:
    """The generic head plus a learned correction; the pipeline calls it like the generic one."""

    base: SentimentHead
    weight: np.ndarray  # (3, d)
    bias: np.ndarray  # (3,)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.base.labels

    def predict_proba(self, emb: np.ndarray) -> np.ndarray:
        emb = np.asarray(emb, np.float64)  # batch-independent products (see SentimentHead.logits)
        return softmax(
            prior_logits(self.base, emb) + emb @ self.weight.T.astype(np.float64) + self.bias
        )


def aspect_design(text_emb: np.ndarray, clause_best: np.ndarray) -> np.ndarray:
    """``(n, 2d)`` the embedding part of an aspect head's input: text and best clause."""
    return np.hstack([text_emb, clause_best]).astype(np.float64)  # batch-independent products


def best_clauses(
    clause_embs: list[np.ndarray], best: np.ndarray, k: int, text_emb: np.ndarray
) -> np.ndarray:
    """``(n, d)`` each item's best clause for aspect column ``k`` (the text when it has none)."""
    out = np.empty_like(text_emb)
    for i, c in enumerate(clause_embs):
        out[i] = c[int(best[i, k])] if len(c) else text_emb[i]
    return out


@dataclass
class TeamAspectHeads:
    aspects: list[str]  # taxonomy ids with a head
    fingerprints: dict[str, str]  # aspect -> definition fingerprint it was trained on
    weight: np.ndarray  # (m, 2d)
    prior: np.ndarray  # (m,) a
    rule: np.ndarray  # (m,) r
    bias: np.ndarray  # (m,)
    threshold: np.ndarray  # (m,)

    def probabilities(
        self,
        k_of: dict[str, int],
        probs: np.ndarray,
        best: np.ndarray,
        text_emb: np.ndarray,
        clause_embs: list[np.ndarray],
        rule_hit: np.ndarray,
        served: list[str],
    ) -> np.ndarray:
        """``(n, len(served))`` the team probability of each served aspect (ids in ``served``)."""
        out = np.zeros((len(text_emb), len(served)))
        for j, aid in enumerate(served):
            m, k = self.aspects.index(aid), k_of[aid]
            x = aspect_design(text_emb, best_clauses(clause_embs, best, k, text_emb))
            z = (
                self.prior[m] * logit(probs[:, k])
                + self.rule[m] * rule_hit[:, k]
                + x @ self.weight[m]
                + self.bias[m]
            )
            out[:, j] = sigmoid(z)
        return out


@dataclass
class TeamModel:
    """What ``radar train`` produces and the registry serves."""

    sentiment: TeamSentimentHead | None
    aspects: TeamAspectHeads | None
    meta: dict = field(default_factory=dict)  # base_encoder, base_sentiment_sha256, dim, taxonomy

    def to_bytes(self) -> bytes:
        from safetensors.numpy import save  # only when weights are read or written

        t: dict[str, np.ndarray] = {}
        if self.sentiment is not None:
            t["sentiment.weight"] = self.sentiment.weight.astype(np.float32)
            t["sentiment.bias"] = self.sentiment.bias.astype(np.float32)
        a = self.aspects
        if a is not None and a.aspects:
            for name in ("weight", "prior", "rule", "bias", "threshold"):
                t[f"aspects.{name}"] = getattr(a, name).astype(np.float32)
        meta = dict(self.meta)
        meta["aspects"] = a.aspects if a is not None else []
        meta["fingerprints"] = a.fingerprints if a is not None else {}
        return save(t, metadata={"team": json.dumps(meta, sort_keys=True)})

    @classmethod
    def from_bytes(cls, blob: bytes, base: SentimentHead) -> TeamModel:
        from safetensors.numpy import load  # only when weights are read or written

        t = load(blob)
        # the metadata sits in the header: 8 bytes of length (little-endian), then JSON
        n = int.from_bytes(blob[:8], "little")
        meta = json.loads(json.loads(blob[8 : 8 + n])["__metadata__"]["team"])
        sent = (
            TeamSentimentHead(base, t["sentiment.weight"], t["sentiment.bias"])
            if "sentiment.weight" in t
            else None
        )
        aspects = None
        if meta.get("aspects"):
            aspects = TeamAspectHeads(
                list(meta["aspects"]),
                dict(meta["fingerprints"]),
                t["aspects.weight"],
                t["aspects.prior"],
                t["aspects.rule"],
                t["aspects.bias"],
                t["aspects.threshold"],
            )
        meta = {k: v for k, v in meta.items() if k not in ("aspects", "fingerprints")}
        return cls(sent, aspects, meta)
