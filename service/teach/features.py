"""One encoder pass over labeled items, read as the generic pipeline reads them.

Training and evaluating a team model need, per item, exactly what the served pipeline sees:
the text and clause embeddings, the generic tagger's probability and best clause for every
aspect, which rules matched, the generic tagger's tags and the generic sentiment. ``featurize``
produces those through the pipeline's own components, so what is trained is what is served.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.nlp.text import clause_spans


@dataclass
class Featurized:
    text: np.ndarray  # (n, d)
    clauses: list[np.ndarray]  # (k_i, d) per item
    spans: list[list[tuple[int, int]]]
    probs: np.ndarray  # (n, K) the generic tagger's model probability per aspect
    best: np.ndarray  # (n, K) its best clause per aspect
    rule: np.ndarray  # (n, K) 1.0 where one of the aspect's rules matched
    generic_tags: np.ndarray  # (n, K) bool: what the generic tagger tags
    evidence: (
        np.ndarray
    )  # (n, K) the clause an aspect's sentiment is read from (rule clause or best)

    def __len__(self) -> int:
        return len(self.text)

    def take(self, idx) -> Featurized:
        idx = np.asarray(idx, int)
        return Featurized(
            self.text[idx],
            [self.clauses[i] for i in idx],
            [self.spans[i] for i in idx],
            self.probs[idx],
            self.best[idx],
            self.rule[idx],
            self.generic_tags[idx],
            self.evidence[idx],
        )

    def clause_at(self, k: int, rows=None) -> np.ndarray:
        """``(n, d)`` the evidence clause of aspect column ``k`` of each item (the text if it has none)."""
        rows = range(len(self)) if rows is None else rows
        return (
            np.stack(
                [
                    self.clauses[i][int(self.evidence[i, k])]
                    if len(self.clauses[i])
                    else self.text[i]
                    for i in rows
                ]
            )
            if len(rows)
            else np.zeros((0, self.text.shape[1]), np.float32)
        )


def featurize(
    texts: list[str],
    languages: list[str | None],
    *,
    encoder,
    tagger,
    batch: int = 256,
    progress=None,
) -> Featurized:
    """``tagger``: the generic pipeline's ``AspectTagger`` (fitted, without a team model)."""
    parts = []
    for start in range(0, len(texts), batch):
        t = texts[start : start + batch]
        spans = [clause_spans(x) for x in t]
        temb, cembs = encoder.encode_with_spans(t, spans)
        parts.append(
            from_embeddings(t, languages[start : start + batch], spans, temb, cembs, tagger=tagger)
        )
        if progress is not None:
            progress(min(start + batch, len(texts)), len(texts))
    return concat(parts, len(tagger.taxonomy.ids), encoder.dim)


def from_embeddings(
    texts: list[str],
    languages: list[str | None],
    spans,
    temb: np.ndarray,
    cembs: list[np.ndarray],
    *,
    tagger,
) -> Featurized:
    """The same from embeddings already computed (the pipeline's clause spans and pooling)."""
    ids = tagger.taxonomy.ids
    K = len(ids)
    hits, probs = tagger.score_batch(texts, spans, languages, temb, cembs)
    rules = [tagger.rule_matches(x, lang) for x, lang in zip(texts, languages)]
    _, best = tagger.model_probabilities(temb, cembs, rules, languages)
    tags = np.zeros((len(texts), K), bool)
    ev = best.copy()
    for i, item in enumerate(hits):
        for h in item:
            tags[i, ids.index(h.aspect)] = True
            ev[i, ids.index(h.aspect)] = h.clause
    rule = np.array([[aid in r for aid in ids] for r in rules], float).reshape(len(texts), K)
    return Featurized(
        np.asarray(temb, np.float32),
        [np.asarray(c, np.float32) for c in cembs],
        list(spans),
        probs,
        best,
        rule,
        tags,
        ev,
    )


def concat(parts: list[Featurized], K: int, d: int) -> Featurized:
    if not parts:
        z = np.zeros((0, K))
        return Featurized(
            np.zeros((0, d), np.float32), [], [], z, z.astype(int), z, z.astype(bool), z.astype(int)
        )
    return Featurized(
        np.concatenate([p.text for p in parts]),
        [c for p in parts for c in p.clauses],
        [s for p in parts for s in p.spans],
        np.concatenate([p.probs for p in parts]),
        np.concatenate([p.best for p in parts]),
        np.concatenate([p.rule for p in parts]),
        np.concatenate([p.generic_tags for p in parts]),
        np.concatenate([p.evidence for p in parts]),
    )
