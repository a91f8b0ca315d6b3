"""Batch in, scores out: one encoder pass serves sentiment, aspects and the embedding.

preprocess  split every text into clauses and collect the distinct segments to encode
forward     encode texts and clauses together in length-sorted batches (once)
postprocess sentiment from the text embedding, aspects from the clause embeddings, the
            sentiment of each aspect from its evidence clause
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.domain import AspectScore, Score
from service.nlp.aspects import ZeroShotAspectTagger
from service.nlp.encoder import Encoder
from service.nlp.sentiment import SentimentHead, sentiment_score
from service.nlp.text import split_clauses

LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class ScoredText:
    score: Score
    embedding: np.ndarray  # float32, L2-normalised


class Scorer:
    """What the jobs and the API need from a scoring pipeline (a fake can stand in)."""

    version: str

    def score(self, texts: list[str]) -> list[ScoredText]:  # pragma: no cover - protocol
        raise NotImplementedError


class ScoringPipeline(Scorer):
    def __init__(self, *, encoder: Encoder, sentiment: SentimentHead,
                 aspects: ZeroShotAspectTagger, version: str):
        self.encoder = encoder
        self.sentiment = sentiment
        self.aspects = aspects
        self.version = version

    def preprocess(self, texts: list[str]) -> tuple[list[str], list[list[int]], list[int]]:
        segments: dict[str, int] = {}
        text_idx, clause_idx = [], []
        for t in texts:
            text_idx.append(segments.setdefault(t, len(segments)))
            clauses = split_clauses(t)
            clause_idx.append([segments.setdefault(c, len(segments)) for c in clauses])
        return list(segments), clause_idx, text_idx

    def score(self, texts: list[str]) -> list[ScoredText]:
        if not texts:
            return []
        segments, clause_idx, text_idx = self.preprocess(texts)
        emb = self.encoder.encode(segments)
        probs = self.sentiment.predict_proba(emb)
        polarity = sentiment_score(probs)
        out = []
        for t, (ti, ci) in enumerate(zip(text_idx, clause_idx)):
            aspects = []
            for hit in self.aspects.tag(emb[ci]):
                seg = ci[hit.clause]
                aspects.append(AspectScore(
                    aspect=hit.aspect, confidence=round(hit.confidence, 4),
                    sentiment=LABELS[int(probs[seg].argmax())],
                    sentiment_score=round(float(polarity[seg]), 4), evidence=segments[seg]))
            p = probs[ti]
            out.append(ScoredText(
                Score(sentiment=LABELS[int(p.argmax())], sentiment_score=round(float(polarity[ti]), 4),
                      probabilities={k: round(float(v), 4) for k, v in zip(LABELS, p)},
                      aspects=aspects, model_version=self.version),
                emb[ti]))
        return out
