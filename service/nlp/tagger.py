"""The hybrid aspect tagger: taxonomy rules + a calibrated model score, with the reason kept.

For every item and taxonomy aspect (``AspectDef.sources`` says which may tag it):

- **rule**: one of the aspect's include patterns matches the item's text in its language and
  no exclude pattern overlaps it (and, for ``kind: severity`` aspects, no negation precedes
  it). The evidence is the clause holding the match, the pattern is kept with the tag.
- **model**: the model part's calibrated probability clears its threshold. The model part is
  the relevance model (``service/nlp/relevance.py``), or the similarity-only zero-shot
  tagger for pipelines without one; a trained head (``aspect_heads.py``) takes its place only
  for an aspect whose current definition it was validated on (``validated`` below).
- ``kind: severity`` aspects (health and safety harm) are tagged by their rules only: an item
  that is merely *similar* to "food poisoning" is not one (the demo's L1 alerts on "too salty").
  Where the pipeline has a harm verifier (``service/nlp/harm.py``), a rule match of a safety
  aspect (``safety: true``) is tagged only if the verifier, reading the matched clause, finds a
  harm reported there (a player's knee injury is no harm from the product); its tag's reason is
  then ``rule+model`` and its confidence ``c + (1 - c) · p`` with ``p`` the verifier's.

``confidence`` is the model's probability that the aspect is present (the relevance model is
calibrated on labeled sets, see the model card); a rule tag's confidence is
``c + (1 - c) · p`` with ``c`` the aspect's ``rules.confidence`` (0.9 unless set): at least
``c``, ordered by the model among rule tags. ``reason`` is ``rule``, ``model`` or ``rule+model``.
Store calibration (``AspectCalibration``) may raise or lower one aspect's model threshold so
that a new aspect tags a plausible share of the team's items.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from service.domain import Taxonomy
from service.nlp.aspect_heads import AspectHeads, HeadHit, _rescale
from service.nlp.aspects import AspectHit, ZeroShotAspectTagger
from service.nlp.relevance import Prototypes, RelevanceModel, batch_features
from service.nlp.rules import TextKeys, compile_taxonomy_rules


@dataclass
class AspectCalibration:
    """Per-aspect model thresholds fitted on a team's stored items (``radar taxonomy calibrate``)."""

    thresholds: dict[str, float] = field(default_factory=dict)
    taxonomy: str = ""  # the fingerprint it was fitted for; ignored for any other taxonomy
    items: int = 0


def _clause_of(spans: list[tuple[int, int]], pos: int) -> int:
    for j, (a, b) in enumerate(spans):
        if a <= pos < b:
            return j
    # the match sits in trimmed punctuation between clauses: the clause before it
    return max(0, sum(1 for a, _ in spans if a <= pos) - 1)


class AspectTagger:
    """Rules and a model part for every aspect; trained heads only where validated."""

    def __init__(
        self,
        taxonomy: Taxonomy,
        *,
        relevance: RelevanceModel | None = None,
        zero_shot: ZeroShotAspectTagger | None = None,
        heads: list[tuple[AspectHeads, dict[str, str]]] = (),
        validated: dict[str, str] | None = None,
        calibration: AspectCalibration | None = None,
        team=None,
        verifier=None,
        max_aspects: int = 6,
    ):
        if relevance is None and zero_shot is None:
            raise ValueError("the tagger needs a relevance model or a zero-shot tagger")
        self.taxonomy = taxonomy
        self.relevance = relevance
        self.zero_shot = zero_shot
        self.verifier = verifier  # a HarmVerifier for the safety aspects' rule matches, or None
        self.max_aspects = max_aspects
        ids = taxonomy.ids
        # a head serves a taxonomy aspect only when it was validated on that aspect's current
        # definition (``validated``: aspect id -> definition fingerprint); never by name alone
        validated = validated or {}
        current = {a.id: definition_fingerprint(a) for a in taxonomy.aspects}
        self.heads = [
            (
                h,
                {
                    c: a
                    for c, a in m.items()
                    if a in ids and c in h.categories and validated.get(a) == current[a]
                },
            )
            for h, m in heads
        ]
        self.covered = {a for _, m in self.heads for a in m.values()}
        self.rules = compile_taxonomy_rules(taxonomy)
        self.calibration = (
            calibration if calibration and calibration.taxonomy == taxonomy.fingerprint() else None
        )
        # a team model's aspect heads (``service/nlp/team.py``), each serving only the aspect
        # definition it was trained on; they decide their aspects (the rules are their input)
        self.team = team
        self.team_served = [
            aid
            for aid in (team.aspects if team is not None else [])
            if aid in current
            and team.fingerprints.get(aid) == current[aid]
            and taxonomy.get(aid).kind == "topic"
            and relevance is not None
        ]
        self._team_threshold = {
            aid: float(team.threshold[team.aspects.index(aid)]) for aid in self.team_served
        }

    # --- set-up ---------------------------------------------------------------------------

    def fit(self, encoder) -> AspectTagger:
        if self.relevance is not None:
            self.prototypes_ = Prototypes.of(self.taxonomy, encoder)
        if self.zero_shot is not None:
            self.zero_shot.fit(encoder)
        return self

    def threshold(self, aspect: str) -> float:
        if aspect in self._team_threshold:
            return self._team_threshold[aspect]
        base = self.relevance.threshold if self.relevance is not None else 0.5
        if self.calibration is not None:
            return self.calibration.thresholds.get(aspect, base)
        return base

    # --- scoring --------------------------------------------------------------------------

    def rule_matches(self, text: str, language: str | None):
        """``{aspect id: [RuleMatch]}`` for the aspects whose rules match ``text``."""
        out = {}
        keys = TextKeys(text)
        for aid, r in self.rules.items():
            m = r.match(text, language, keys)
            if m:
                out[aid] = m
        return out

    def model_probabilities(
        self,
        text_emb: np.ndarray,
        clause_embs: list[np.ndarray],
        rule_hits: list[dict],
        languages: list[str | None],
        *,
        clause_scores: list | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(n, K)`` probability of each aspect and ``(n, K)`` its best clause, for a batch
        (``clause_scores``: a list that receives each item's per-clause similarities)."""
        ids = self.taxonomy.ids
        K, n = len(ids), len(clause_embs)
        if self.relevance is None:
            probs, best = np.zeros((n, K)), np.zeros((n, K), int)
            for i, c in enumerate(clause_embs):
                raw = self.zero_shot.clause_scores(c) if len(c) else np.zeros((0, K))
                if len(c):
                    conf = self.zero_shot.confidence(raw)
                    probs[i], best[i] = conf.max(axis=0), conf.argmax(axis=0)
                if clause_scores is not None:
                    clause_scores.append(raw)
            return probs, best
        if n == 0:
            return np.zeros((0, K)), np.zeros((0, K), int)
        hit = np.array([[aid in rule_hits[i] for aid in ids] for i in range(n)], bool)
        ruled = np.array([self._ruled(lang) for lang in languages], bool)
        X, best = batch_features(
            self.prototypes_, text_emb, clause_embs, hit, ruled, clause_scores=clause_scores
        )
        return self.relevance.trees.predict_proba(X.reshape(n * K, -1)).reshape(n, K), best

    def _ruled(self, language: str | None) -> np.ndarray:
        """(K,) which aspects have include rules in ``language`` (cached per language)."""
        cache = self.__dict__.setdefault("_ruled_cache", {})
        if language not in cache:
            cache[language] = np.array(
                [
                    aid in self.rules and self.rules[aid].applies(language)
                    for aid in self.taxonomy.ids
                ],
                bool,
            )
        return cache[language]

    def tag_batch(self, *batch) -> list[list[AspectHit]]:
        """The hits of each item: ``score_batch``'s, with the same arguments."""
        return self.score_batch(*batch)[0]

    def score_batch(
        self,
        texts: list[str],
        spans: list[list[tuple[int, int]]],
        languages: list[str | None],
        text_emb: np.ndarray,
        clause_embs: list[np.ndarray],
        *,
        dropped: list | None = None,
    ) -> tuple[list[list[AspectHit]], np.ndarray]:
        """The hits of each item and the ``(n, K)`` model probabilities they were decided on.
        ``dropped``, when given a list, receives per item the safety rule matches the harm
        verifier dropped, as ``AspectHit`` with the verifier's probability as confidence."""
        rule_hits = [self.rule_matches(t, lang) for t, lang in zip(texts, languages)]
        sims: list[np.ndarray] = []
        probs, best = self.model_probabilities(
            text_emb, clause_embs, rule_hits, languages, clause_scores=sims
        )
        if self.team_served and len(texts):
            ids = self.taxonomy.ids
            hit = np.array([[aid in rule_hits[i] for aid in ids] for i in range(len(texts))], float)
            k_of = {aid: ids.index(aid) for aid in self.team_served}
            team = self.team.probabilities(
                k_of, probs, best, text_emb, clause_embs, hit, self.team_served
            )
            probs = probs.copy()
            for j, aid in enumerate(self.team_served):
                probs[:, k_of[aid]] = team[:, j]
        out = []
        for i in range(len(texts)):
            gone: list[AspectHit] = []
            out.append(
                self._combine(
                    i,
                    spans[i],
                    rule_hits[i],
                    probs[i],
                    best[i],
                    text_emb[i],
                    clause_embs[i],
                    sims[i] if i < len(sims) else None,
                    gone,
                )
            )
            if dropped is not None:
                dropped.append(gone)
        return out, probs

    def tag(
        self,
        text_emb: np.ndarray,
        clause_emb: np.ndarray,
        *,
        text: str = "",
        spans: list[tuple[int, int]] | None = None,
        language: str | None = None,
    ) -> list[AspectHit]:
        """One item (the batch form is ``tag_batch``)."""
        if len(clause_emb) == 0:
            return []
        spans = spans if spans is not None else [(0, len(text))] * len(clause_emb)
        return self.tag_batch([text], [spans], [language], text_emb[None, :], [clause_emb])[0]

    def _combine(
        self, i, spans, rule_hits, prob, best, text_emb, clause_emb, sims=None, dropped=None
    ) -> list[AspectHit]:
        if len(clause_emb) == 0:
            return []
        hits: dict[str, AspectHit] = {}
        for k, a in enumerate(self.taxonomy.aspects):
            sources = a.sources
            p = float(prob[k])
            model_ok = "model" in sources and a.id not in self.covered and p >= self.threshold(a.id)
            matches = rule_hits.get(a.id) if "rule" in sources else None
            if a.id in self._team_threshold:  # a team head weighed the rules: it alone decides
                model_ok = p >= self._team_threshold[a.id]
                if not model_ok:
                    continue
                if not matches:
                    hits[a.id] = AspectHit(a.id, p, int(best[k]), "model")
                    continue
            if matches:
                # several clauses may match: the evidence is the matched clause most about the
                # aspect (its similarity to the aspect's words), so "great taste but far too
                # spicy" reads its taste from the clause the rules and the model agree on
                at = [(_clause_of(spans, m.start), m) for m in matches]
                if sims is not None and len(sims) == len(spans):
                    clause, m = max(at, key=lambda cm: (float(sims[cm[0], k]), -cm[1].start))
                else:
                    clause, m = at[0]
                c = a.rules.confidence
                reason = "rule+model" if model_ok else "rule"
                if (
                    a.kind == "severity"
                    and a.safety
                    and a.rules.verify is not False
                    and self.verifier is not None
                ):
                    p = float(self.verifier.probability(clause_emb[clause])[0])
                    if p < self.verifier.threshold:
                        # the rules matched words of a harm, the clause reports none
                        if dropped is not None:
                            dropped.append(AspectHit(a.id, p, clause, "rule", m.pattern))
                        continue
                    reason = "rule+model"
                hits[a.id] = AspectHit(a.id, rule_tag_confidence(c, p), clause, reason, m.pattern)
            elif model_ok:
                hits[a.id] = AspectHit(a.id, p, int(best[k]), "model")
        for heads, mapping in self.heads:
            if not mapping:
                continue
            hprob, evidence, sent = heads.predict(text_emb, clause_emb)
            for cat, aid in mapping.items():
                j = heads.categories.index(cat)
                conf = _rescale(float(hprob[j]), heads.threshold)
                prev = hits.get(aid)
                if conf >= 0.5 or prev is not None:
                    reason = (
                        "rule+model"
                        if prev is not None and conf >= 0.5
                        else (prev.reason if prev else "model")
                    )
                    hits[aid] = HeadHit(
                        aid,
                        max(conf, prev.confidence if prev else 0.0),
                        prev.clause if prev else int(evidence[j]),
                        reason,
                        prev.rule if prev else None,
                        tuple(float(v) for v in sent[j]),
                    )
        ranked = sorted(hits.values(), key=lambda h: -h.confidence)
        return ranked[: self.max_aspects]


def rule_tag_confidence(rule_confidence: float, p: float) -> float:
    """A rule tag's confidence: at least the rule's, raised by the model's (or the harm
    verifier's) probability ``p``. Alert rules cut on it (``configs/alerts.yaml``)."""
    return rule_confidence + (1 - rule_confidence) * p


def definition_fingerprint(aspect) -> str:
    """What a head is validated against: the aspect's names, description, examples and rules."""

    payload = json.dumps(
        aspect.model_dump(
            include={"names", "description", "examples", "rules", "kind"}, exclude_none=True
        ),
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]
