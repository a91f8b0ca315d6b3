"""Batch in, scores out: one encoder pass serves sentiment, aspects and the embedding.

preprocess  find the clause spans of every text
forward     encode the texts once, in length-sorted batches; each clause's embedding is the
            mean of its contextual token states from that same pass
postprocess sentiment from the text embedding; aspects from the text and clause embeddings
            (trained heads where the mapping covers an aspect, zero-shot otherwise); each
            aspect's sentiment from its head, or from its evidence clause for zero-shot ones
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.domain import AspectScore, Score
from service.nlp.aspect_heads import HeadHit
from service.nlp.encoder import Encoder
from service.nlp.sentiment import SentimentHead, sentiment_score
from service.nlp.tagger import AspectTagger
from service.nlp.text import clause_spans


@dataclass(frozen=True)
class ScoredText:
    score: Score
    embedding: np.ndarray  # float32, L2-normalised
    # the evidence clause of the item's most confident aspect, in the same space: what the item
    # is about without its openers and sign-offs (themes cluster these); None without aspects
    topic_embedding: np.ndarray | None = None


class Scorer:
    """What the jobs and the API need from a scoring pipeline (a fake can stand in).

    ``languages`` (ISO codes, one per text) lets a scorer skip what its encoder cannot do.
    """

    version: str

    def score(
        self, texts: list[str], languages: list[str] | None = None
    ) -> list[ScoredText]:  # pragma: no cover
        raise NotImplementedError


class ScoringPipeline(Scorer):
    def __init__(
        self,
        *,
        encoder: Encoder,
        sentiment: SentimentHead,
        aspects: AspectTagger,
        version: str,
        languages: tuple[str, ...] = (),
        max_item_tokens: int | None = None,
    ):
        self.encoder = encoder
        self.max_item_tokens = (
            max_item_tokens  # longer texts: scored on their first tokens (recorded)
        )
        self.sentiment = sentiment
        self.aspects = aspects
        self.version = version
        self.languages = languages  # what the encoder was trained on; empty: any

    def supports(self, language: str | None) -> bool:
        return (
            not self.languages
            or language is None
            or language in self.languages
            or language == "und"
        )

    def preprocess(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        return [clause_spans(t) for t in texts]

    def score(self, texts: list[str], languages: list[str] | None = None) -> list[ScoredText]:
        """Aspects are only tagged for languages the encoder knows (a monolingual encoder's
        similarities on other scripts are noise); sentiment and the embedding always come."""
        if not texts:
            return []
        langs = languages or [None] * len(texts)
        cut = [0] * len(texts)
        if (
            self.max_item_tokens
        ):  # one item's cost is bounded: the rest of a very long text is not read
            texts, cut = map(list, zip(*self.encoder.budget(list(texts), self.max_item_tokens)))
        spans = self.preprocess(texts)
        text_emb, clause_emb = self.encoder.encode_with_spans(texts, spans)
        probs = self.sentiment.predict_proba(text_emb)
        polarity = sentiment_score(probs)
        out = []
        taggable = [t for t in range(len(texts)) if self.supports(langs[t]) and len(clause_emb[t])]
        tagged = dict(
            zip(
                taggable,
                self.aspects.tag_batch(
                    [texts[t] for t in taggable],
                    [spans[t] for t in taggable],
                    [langs[t] for t in taggable],
                    text_emb[taggable] if taggable else text_emb[:0],
                    [clause_emb[t] for t in taggable],
                ),
            )
        )
        # the evidence clauses' sentiment, in one call of the head for the whole batch (a call per
        # text cost a fifth of the pipeline; the head's float64 rows do not depend on their batch)
        wanted = sorted({(t, h.clause) for t, hits in tagged.items() for h in hits})
        row = {tc: i for i, tc in enumerate(wanted)}
        c_probs = (
            self.sentiment.predict_proba(np.stack([clause_emb[t][c] for t, c in wanted]))
            if wanted
            else None
        )
        labels = self.sentiment.labels  # the head's own, from its artifact
        for t, text in enumerate(texts):
            aspects = []
            hits = tagged.get(t, [])
            for hit in hits:
                a, b = spans[t][hit.clause]
                # a trained head reads the aspect's own sentiment; zero-shot ones its evidence clause's
                ap = (
                    np.asarray(hit.probabilities)
                    if isinstance(hit, HeadHit) and hit.probabilities
                    else c_probs[row[(t, hit.clause)]]
                )
                aspects.append(
                    AspectScore(
                        aspect=hit.aspect,
                        confidence=round(hit.confidence, 4),
                        sentiment=labels[int(ap.argmax())],
                        sentiment_score=round(float(sentiment_score(ap[None, :])[0]), 4),
                        evidence=text[a:b],
                        reason=hit.reason,
                        rule=hit.rule,
                    )
                )
            p = probs[t]
            top = max(hits, key=lambda h: round(h.confidence, 4), default=None)
            out.append(
                ScoredText(
                    Score(
                        sentiment=labels[int(p.argmax())],
                        sentiment_score=round(float(polarity[t]), 4),
                        probabilities={k: round(float(v), 4) for k, v in zip(labels, p)},
                        aspects=aspects,
                        model_version=self.version,
                        truncated_tokens=cut[t] or None,
                    ),
                    text_emb[t],
                    None if top is None else clause_emb[t][top.clause],
                )
            )
        return out
