"""A team's taxonomy against its own stored items: preview a draft, calibrate thresholds.

**Preview.** What a draft taxonomy would do to the stored items, before anyone saves it.

``radar taxonomy test FILE`` and ``POST /v1/taxonomy/preview`` run the draft's tagger (its
rules and the served relevance model) and the current taxonomy's on the same sample of stored
items (the newest ``sample`` within the caller's scope, re-encoded once), and report per
aspect of the draft:

- how many sampled items it tags, the share, and the estimate for the whole scope; how many by
  a rule, by the model, by both;
- matches: items it tags, most confident first, with the evidence clause, the reason and the
  rule that fired;
- borderline items on both sides of the model threshold (just tagged, just missed), where a
  definition or an example phrase decides most;
- overlap: how many of its items the draft's other aspects also tag;
- for safety aspects, the rule matches the harm verifier dropped (``service/nlp/harm.py``),
  with the verifier's probability, so a team sees what its rules match that is not tagged;
- the change against the current taxonomy on the same items (gained, lost; for a new aspect
  everything is gained).

The result is a plain dict (the API's schema in ``api/schemas.py``).

**Calibration** (``calibrate``, ``radar taxonomy calibrate``): per-aspect model thresholds
from the distribution of the model's probabilities over the stored items, without labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import yaml
from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.domain import Taxonomy
from service.nlp.rules import RuleError, compile_taxonomy_rules
from service.nlp.tagger import AspectCalibration
from service.nlp.text import clause_spans
from service.store import repo
from service.store.repo import FeedbackFilter

SNIPPET = 240
BORDER = 0.12  # probability band around the threshold counted as borderline


@dataclass
class _Tagged:
    hits: list[list]  # per item: AspectHit list
    probs: np.ndarray  # (n, K) model probabilities
    dropped: list[list]  # per item: safety rule matches the harm verifier dropped


def _run(tagger, texts, langs, spans, text_emb, clause_emb) -> _Tagged:
    if not texts:
        return _Tagged([], np.zeros((0, len(tagger.taxonomy.ids))), [])
    dropped: list = []
    hits, probs = tagger.score_batch(texts, spans, langs, text_emb, clause_emb, dropped=dropped)
    return _Tagged(hits, probs, dropped)


def preview(
    session: Session,
    *,
    flt: FeedbackFilter,
    draft: Taxonomy,
    current: Taxonomy,
    tagger_for,
    encoder,
    sample: int = 1000,
    aspect: str | None = None,
    examples: int = 5,
) -> dict:
    """``tagger_for(taxonomy)`` gives a fitted tagger for a taxonomy (the served pipeline's)."""

    if aspect is not None and aspect not in draft.ids:
        raise KeyError(aspect)
    rows = repo.recent_texts(session, flt=flt, limit=sample)
    total = repo.count_feedback(session, flt=flt)
    ids = [r[0] for r in rows]
    texts = [r[1] for r in rows]
    langs = [r[2] for r in rows]
    spans = [clause_spans(t) for t in texts]
    new_tagger, old_tagger = tagger_for(draft), tagger_for(current)
    text_emb, clause_emb = encoder.encode_with_spans(
        texts, spans
    )  # one pass serves both taxonomies
    new = _run(new_tagger, texts, langs, spans, text_emb, clause_emb)
    old_hits = old_tagger.tag_batch(texts, spans, langs, text_emb, clause_emb) if texts else []
    n = len(rows)
    tagged = {a: set() for a in draft.ids}
    hit_of: dict[tuple[int, str], object] = {}
    for i, hs in enumerate(new.hits):
        for h in hs:
            tagged[h.aspect].add(i)
            hit_of[(i, h.aspect)] = h
    old = {
        a: {i for i, hs in enumerate(old_hits) for h in hs if h.aspect == a} for a in current.ids
    }

    def item(i: int, a: str) -> dict:
        h = hit_of.get((i, a))
        k = draft.ids.index(a)
        out = {
            "id": ids[i],
            "text": texts[i][:SNIPPET],
            "model_probability": round(float(new.probs[i, k]), 4),
        }
        if h is not None:
            x, y = spans[i][h.clause]
            out.update(
                evidence=texts[i][x:y][:SNIPPET],
                reason=h.reason,
                rule=h.rule,
                confidence=round(float(h.confidence), 4),
            )
        return out

    report = []
    for k, a in enumerate(draft.aspects):
        if aspect is not None and a.id != aspect:
            continue
        mine = tagged[a.id]
        reasons = {"rule": 0, "model": 0, "rule+model": 0}
        for i in mine:
            reasons[hit_of[(i, a.id)].reason] += 1
        thr = new_tagger.threshold(a.id)
        p = new.probs[:, k]
        ranked = sorted(mine, key=lambda i: -hit_of[(i, a.id)].confidence)
        above = [i for i in np.argsort(p) if thr <= p[i] < thr + BORDER and i in mine][:examples]
        below = [i for i in np.argsort(-p) if thr - BORDER <= p[i] < thr and i not in mine][
            :examples
        ]
        before = old.get(a.id, set())
        gone = [(i, h) for i, hs in enumerate(new.dropped) for h in hs if h.aspect == a.id]
        report.append(
            {
                "aspect": a.id,
                "name": a.name("en"),
                "kind": a.kind,
                "sources": list(a.sources),
                "threshold": round(thr, 4),
                "tagged": len(mine),
                "share": round(len(mine) / n, 4) if n else 0.0,
                "estimated_in_scope": round(len(mine) / n * total) if n else 0,
                "by_reason": reasons,
                "matches": [item(i, a.id) for i in ranked[:examples]],
                "borderline": {
                    "just_tagged": [item(int(i), a.id) for i in above],
                    "just_missed": [item(int(i), a.id) for i in below],
                },
                "overlap": {
                    b: len(mine & tagged[b]) for b in draft.ids if b != a.id and mine & tagged[b]
                },
                # safety aspects: what the rules matched and the harm verifier did not tag
                "dropped_by_verifier": {
                    "count": len(gone),
                    "items": [
                        {
                            "id": ids[i],
                            "text": texts[i][:SNIPPET],
                            "evidence": texts[i][slice(*spans[i][h.clause])][:SNIPPET],
                            "rule": h.rule,
                            "verifier_probability": round(float(h.confidence), 4),
                        }
                        for i, h in sorted(gone, key=lambda ih: -ih[1].confidence)[:examples]
                    ],
                },
                "change": {
                    "new_aspect": a.id not in current.ids,
                    "before": len(before),
                    "gained": len(mine - before),
                    "lost": len(before - mine),
                },
            }
        )
    removed = [a for a in current.ids if a not in draft.ids]
    return {
        "sample": n,
        "in_scope": total,
        "taxonomy": draft.fingerprint(),
        "current_taxonomy": current.fingerprint(),
        "aspects": report,
        "removed_aspects": [{"aspect": a, "before": len(old[a])} for a in removed],
        "untagged": sum(1 for hs in new.hits if not hs),
    }


def parse_draft(text: str) -> Taxonomy:
    """A draft taxonomy from YAML text; every mistake names its field or its pattern
    (``TaxonomyError``), so a team sees what to fix before anything runs."""

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise TaxonomyError("expected a mapping with `aspects:` at the top level")
    raw.pop("benchmark", None)  # benchmark taxonomies carry their gold mapping
    try:
        draft = Taxonomy.model_validate(raw)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        raise TaxonomyError(
            "; ".join(f"{d['field']}: {d['message']}" for d in details), details
        ) from None
    try:
        compile_taxonomy_rules(draft)
    except RuleError as exc:
        raise TaxonomyError(str(exc)) from None
    return draft


class TaxonomyError(ValueError):
    def __init__(self, message: str, details: list[dict] | None = None):
        super().__init__(message)
        self.details = details or []


def calibrate(
    session: Session,
    *,
    flt: FeedbackFilter,
    taxonomy: Taxonomy,
    tagger,
    encoder,
    sample: int = 5000,
    max_share: float = 0.35,
    min_share: float = 0.002,
    floor: float = 0.2,
    ceiling: float = 0.95,
    progress=None,
):
    """Per-aspect model thresholds from how the model's probabilities are distributed over the
    team's own stored items (no labels): an aspect whose model tags would reach more than
    ``max_share`` of the items (together with its rule tags) gets the threshold at which they
    reach exactly that share; one the model would tag on fewer than ``min_share`` of them (and
    no rule tags) gets the threshold at which it reaches that share, never below ``floor``.
    Every other aspect keeps the model's calibrated threshold. Returns the calibration and a
    per-aspect report."""

    rows = repo.recent_texts(session, flt=flt, limit=sample)
    texts = [r[1] for r in rows]
    langs = [r[2] for r in rows]
    probs, rule_any = [], []
    step = 256
    for i in range(0, len(texts), step):
        t, la = texts[i : i + step], langs[i : i + step]
        sp = [clause_spans(x) for x in t]
        te, ce = encoder.encode_with_spans(t, sp)
        rh = [tagger.rule_matches(x, lang) for x, lang in zip(t, la)]
        p, _ = tagger.model_probabilities(te, ce, rh, la)
        probs.append(p)
        rule_any.append(
            np.array([[a.id in r for a in taxonomy.aspects] for r in rh], bool).reshape(len(t), -1)
        )
        if progress:
            progress(len(t))
    n = len(texts)
    P = np.concatenate(probs) if probs else np.zeros((0, len(taxonomy.ids)))
    R = np.concatenate(rule_any) if rule_any else np.zeros_like(P, bool)
    thresholds, report = {}, []
    base = tagger.relevance.threshold if tagger.relevance is not None else 0.5
    for k, a in enumerate(taxonomy.aspects):
        entry = {
            "aspect": a.id,
            "threshold": base,
            "model_share": None,
            "rule_share": None,
            "change": "kept",
        }
        if n == 0 or "model" not in a.sources:
            entry["change"] = "no model tags" if n else "no items"
            report.append(entry)
            continue
        rules_k = R[:, k] if "rule" in a.sources else np.zeros(n, bool)
        share = float(((P[:, k] >= base) | rules_k).mean())
        thr = base
        if share > max_share:
            free = P[~rules_k, k]
            room = max(int(max_share * n) - int(rules_k.sum()), 0)
            thr = (
                ceiling
                if room == 0 or room >= len(free)
                else float(min(ceiling, np.sort(free)[::-1][room - 1] + 1e-6))
            )
            thr = max(thr, base)
            entry["change"] = "raised"
        elif (P[:, k] >= base).mean() < min_share and not rules_k.any():
            want = max(int(np.ceil(min_share * n)), 1)
            thr = float(max(floor, np.sort(P[:, k])[::-1][min(want, n) - 1]))
            thr = min(thr, base)
            entry["change"] = "lowered" if thr < base else "kept"
        thresholds[a.id] = round(thr, 4)
        entry.update(
            threshold=round(thr, 4),
            model_share=round(float((P[:, k] >= base).mean()), 4),
            rule_share=round(float(rules_k.mean()), 4),
            share_after=round(float(((P[:, k] >= thr) | rules_k).mean()), 4),
        )
        report.append(entry)
    return AspectCalibration(
        thresholds=thresholds, taxonomy=taxonomy.fingerprint(), items=n
    ), report
