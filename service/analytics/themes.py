"""Theme discovery: what a window's feedback is about, labelled, followed over time.

Measured first (2026-11-22, demo data): the whole-text embeddings group by openers, sign-offs
and language, not by what is said (HDBSCAN on them: ARI 0.015 against the generator's topics),
and the encoder's cross-lingual alignment is weak (nearest neighbour of an English phrase among
Chinese ones has the same topic 26% of the time). So themes are built from two things the
scoring pipeline stores for every item:

* its **facet**: the most confident aspect with its polarity (``taste:negative``; polarity from
  the aspect's sentiment score P(pos) − P(neg), neutral within ±0.2). The aspect models are
  what bridges languages: "too spicy" and "太辣了" share a facet.
* its **topic vector**: the embedding of that aspect's evidence clause (``score.topic_embedding``),
  free of the text around it.

``ThemeModel.fit`` first corrects the facets once: an item whose topic vector sits clearly
nearer another facet's centroid (all vectors centred per language) than its own moves there.
It then makes one top-level theme per facet holding at least ``min_cluster_size``
items (default max(5, 1% of the sample)), and splits each into **sub-themes** with k-means on
the topic vectors (each language's mean removed within the facet), k = 2..6 chosen by cosine
silhouette, kept when it reaches ``split_silhouette`` and every part holds 5% of the facet.
Items without any aspect are themes of their own kind: HDBSCAN (leaf selection, after PCA to
16 dimensions) on their language-centred vectors, members within the 5th-percentile radius.
Fitting uses a seeded sample of at most ``sample`` items; the result states it.

Labels are class-based TF-IDF keywords over the evidence texts (each theme's as one document;
weight ``tf · log(1 + A / f)`` with ``A`` the mean words per theme and ``f`` the word's
frequency over all themes; sub-themes against their siblings). Tokens: words of Latin-script
text (lower-cased, stop words out) and jieba words for Chinese; brand names and aliases (every
stored brand id, and the configured brands' names and aliases), links, e-mail addresses,
@handles and HTML entities are left out: a label says what is said, not about whom. Quotes are the items nearest
the centroid.

Theme ids are stable: a theme takes the id of the stored theme of the same facet and parent
whose centroid is most similar (cosine ≥ ``match_cosine``, one each), otherwise a new one.
A theme is *emerging* when its share of the window grew significantly against the previous
window of the same length (one-sided two-proportion test, Benjamini–Hochberg per level over the
themes with at least ``min_items`` items, and at least doubled); *new* when it was (almost)
absent before.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import chain

import numpy as np
from sqlalchemy.orm import Session

from service.analytics.keywords import class_tfidf, keyword_tokenizer
from service.analytics.stats import benjamini_hochberg, two_proportion
from service.analytics.theme_model import ThemeModel, ThemeRef, decode_vectors, facet_of
from service.store import themes as theme_store
from service.store.repo import FeedbackFilter


@dataclass
class WindowItems:
    ids: np.ndarray
    texts: list[str]
    emb: np.ndarray  # what themes cluster: the topic embedding, or the item's where it has none
    sentiment: list[str]
    languages: list[str | None] = field(default_factory=list)
    aspects: dict[int, list[str]] = field(default_factory=dict)
    facets: list[str | None] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)  # the text keywords come from


def load_items(session: Session, flt: FeedbackFilter, with_aspects: bool = True) -> WindowItems:
    """The window's canonical scored items with what themes need: the topic vector (the item's
    own embedding where no aspect was found), its facet (the most confident aspect with its
    polarity) and its evidence text."""
    rows = theme_store.window_items(session, flt=flt)
    if not rows:
        return WindowItems(np.zeros(0, np.int64), [], np.zeros((0, 0), np.float32), [])
    emb = decode_vectors([r[3] if r[3] is not None else r[2] for r in rows])
    ids = np.array([r[0] for r in rows], np.int64)
    aspects: dict[int, list[str]] = {}
    primary: dict[int, tuple[float, str, float, str]] = {}
    for fid, aspect, conf, score, evidence in theme_store.window_aspects(session, flt=flt):
        aspects.setdefault(fid, []).append(aspect)
        if fid not in primary or conf > primary[fid][0]:
            primary[fid] = (conf, aspect, score, evidence)
    facets, evidence = [], []
    for r in rows:
        p = primary.get(r[0])
        # an item scored before topic vectors existed has none: its whole-text vector would not
        # sit with the clause vectors of its facet, so it joins the aspect-less items
        facets.append(facet_of(p[1], p[2]) if p is not None and r[3] is not None else None)
        evidence.append(p[3] if p is not None and p[3] else r[1])
    return WindowItems(
        ids,
        [r[1] for r in rows],
        emb,
        [r[4] for r in rows],
        [r[5] for r in rows],
        aspects if with_aspects else {},
        facets,
        evidence,
    )


def _match(
    session: Session,
    refs: list[ThemeRef],
    match_cosine: float,
    now: datetime,
    keywords: list[list[str]],
) -> list[int]:
    """A stored theme id per fitted theme: the most similar unused stored theme of the same facet
    and the same parent (top-level themes first, so sub-themes know their parent's id), or a new one."""
    stored = theme_store.stored_themes(session)
    mat = decode_vectors([c for _, c, _, _ in stored]) if stored else np.zeros((0, 0), np.float32)
    used: set[int] = set()
    out: list[int] = []
    for i, ref in enumerate(refs):  # top-level themes come first in ``refs``
        parent = None if ref.parent is None else out[ref.parent]
        best, best_sim = None, match_cosine
        for j, (tid, _, facet, parent_id) in enumerate(stored):
            if tid in used or facet != ref.facet or parent_id != parent:
                continue
            sim = float(mat[j] @ ref.raw)
            if sim >= best_sim:
                best, best_sim = tid, sim
        best = theme_store.save_theme(
            session,
            theme_id=best,
            centroid=ref.raw.astype("<f2").tobytes(),
            facet=ref.facet,
            parent_id=parent,
            keywords=keywords[i],
            now=now,
        )
        used.add(best)
        out.append(best)
    return out


def _facet_dict(facet: str | None) -> dict | None:
    if facet is None:
        return None
    aspect, polarity = facet.rsplit(":", 1)
    return {"aspect": aspect, "polarity": polarity}


def discover(
    session: Session,
    *,
    flt: FeedbackFilter,
    since: datetime,
    until: datetime,
    scope: str,
    now: datetime,
    population: FeedbackFilter | None = None,
    model: ThemeModel | None = None,
    match_cosine: float = 0.9,
    quotes: int = 3,
    alpha: float = 0.05,
    min_items: int = 10,
    store: bool = True,
    competitors=None,
) -> dict:
    """Themes of ``[since, until)`` under ``flt`` (a segment), compared with the window before:
    top-level themes, emerging ones first, each with its sub-themes under ``children``.

    The themes are fitted on the window's ``population`` (default: ``flt`` itself; the API passes
    everything the caller may see) and then counted within ``flt``: a segment's themes are the
    same themes, under the same ids, as every other segment's, and a complaint that one small
    segment shares with the rest is found in the larger sample. Growth is tested for themes with
    at least ``min_items`` items in the window (smaller ones cannot be told from noise and would
    only dilute the correction), one Benjamini–Hochberg family per level."""
    model = model or ThemeModel()
    cur = load_items(session, replace(flt, since=since, until=until))
    prev_flt = replace(flt, since=since - (until - since), until=since)
    result = {
        "window": {"since": since.isoformat(), "until": until.isoformat()},
        "previous_window": {"since": prev_flt.since.isoformat(), "until": since.isoformat()},
        "items": len(cur.ids),
        "sample": min(len(cur.ids), model.sample),
        "themes": [],
    }
    if len(cur.ids) == 0:
        return result
    fit_on = (
        cur
        if population is None or population == flt
        else load_items(session, replace(population, since=since, until=until), with_aspects=False)
    )
    model.fit(fit_on.emb, fit_on.languages, fit_on.facets)
    labels, cos = model.assign(cur.emb, cur.languages, cur.facets)
    sub, sub_cos = model.assign_sub(cur.emb, cur.languages, cur.facets)
    prev = load_items(session, prev_flt, with_aspects=False)
    if len(prev.ids):
        prev_labels = model.assign(prev.emb, prev.languages, prev.facets)[0]
        prev_sub = model.assign_sub(prev.emb, prev.languages, prev.facets)[0]
    else:
        prev_labels = prev_sub = np.zeros(0, int)
    refs = model.themes_
    n_top = len(model.centroids_)

    def members_of(c: int, prev_window: bool = False) -> np.ndarray:
        if prev_window:
            return np.flatnonzero((prev_labels if c < n_top else prev_sub) == c)
        return np.flatnonzero((labels if c < n_top else sub) == c)

    words = keyword_tokenizer(session, competitors)
    docs = [
        list(chain.from_iterable(words(cur.evidence[i]) for i in members_of(c)))
        for c in range(len(refs))
    ]
    # sub-themes are labelled against their siblings (what tells them apart), themes against each other
    keywords = [[] for _ in refs]
    for group in [list(range(n_top))] + [
        [c for c, r in enumerate(refs) if r.parent == p] for p in range(n_top)
    ]:
        for c, words in zip(group, class_tfidf([docs[c] for c in group])):
            keywords[c] = words
    theme_ids = (
        _match(session, refs, match_cosine, now, keywords)
        if store
        else list(range(1, len(refs) + 1))
    )
    n, n_prev = len(cur.ids), len(prev.ids)
    stats = []
    for c in range(len(refs)):
        kc, kp = len(members_of(c)), len(members_of(c, True))
        z, p = two_proportion(kc, n, kp, n_prev) if n_prev and kc >= min_items else (0.0, 1.0)
        stats.append((kc, kp, p / 2 if z > 0 else 1.0))  # one-sided: growth only
    # one Benjamini–Hochberg family per level, of the themes large enough to be tested
    qs = np.ones(len(refs))
    for level in (range(n_top), range(n_top, len(refs))):
        tested = [c for c in level if stats[c][0] >= min_items and n_prev]
        for c, q in zip(tested, benjamini_hochberg([stats[c][2] for c in tested])):
            qs[c] = q
    records = []
    for c, ref in enumerate(refs):
        members = members_of(c)
        kc, kp, _ = stats[c]
        share, share_prev = kc / n, (kp / n_prev if n_prev else None)
        grew = n_prev > 0 and qs[c] < alpha and share >= 2 * (share_prev or 0)
        new = grew and kp <= max(1, 0.002 * n_prev)  # (almost) absent before
        sent = Counter(cur.sentiment[i] for i in members)
        asp = Counter(a for i in members for a in cur.aspects.get(int(cur.ids[i]), []))
        near = members[np.argsort(-(cos if c < n_top else sub_cos)[members])[:quotes]]
        facet = _facet_dict(ref.facet)
        label = ", ".join(keywords[c][:3])
        records.append(
            {
                "id": int(theme_ids[c]),
                "facet": facet,
                "parent": None if ref.parent is None else int(theme_ids[ref.parent]),
                "label": f"{facet['aspect']} · {facet['polarity']}: {label}" if facet else label,
                "keywords": keywords[c],
                "size": kc,
                "share": round(share, 4),
                "previous": {
                    "size": kp,
                    "share": None if share_prev is None else round(share_prev, 4),
                },
                "emerging": bool(grew),
                "new": bool(new),
                "q_value": round(float(qs[c]), 6),
                "sentiment": {s: sent.get(s, 0) for s in ("negative", "neutral", "positive")},
                "net_sentiment": round(
                    (sent.get("positive", 0) - sent.get("negative", 0)) / max(kc, 1), 4
                ),
                "top_aspects": [{"aspect": a, "mentions": m} for a, m in asp.most_common(3)],
                "quotes": [{"id": int(cur.ids[i]), "text": cur.texts[i]} for i in near],
            }
        )
    if store:
        theme_store.save_snapshots(
            session, themes=records, scope=scope, since=since, until=until, now=now
        )
        session.commit()
    order = lambda t: (not t["emerging"], -t["size"])  # noqa: E731
    for c in range(n_top):
        records[c]["children"] = sorted(
            (records[k] for k, r in enumerate(refs) if r.parent == c and records[k]["size"]),
            key=order,
        )
    result["themes"] = sorted((t for t in records[:n_top] if t["size"]), key=order)
    result["unassigned"] = int((labels == -1).sum())
    return result


def theme_detail(
    session: Session, theme_id: int, *, flt: FeedbackFilter | None = None, scope: str | None = None
) -> dict | None:
    """A stored theme with its history (one row per analysed window) and latest quotes
    (only quotes ``flt``, e.g. the caller's data scope, lets through). With ``scope`` (a
    scoped caller's filter key), only that scope's history, keywords from it, and None when the
    theme was never found there."""
    row = theme_store.theme(session, theme_id=theme_id)
    if row is None:
        return None
    snaps = theme_store.snapshots(session, theme_id=theme_id, scope=scope)
    if scope is not None and not snaps:
        return None
    keywords = json.loads(snaps[-1].keywords if scope is not None else row.keywords)
    quotes = []
    if snaps:
        ids = json.loads(snaps[-1].quotes)
        texts = theme_store.texts(session, ids=ids, flt=flt)
        quotes = [{"id": i, "text": texts[i]} for i in ids if i in texts]
    return {
        "id": row.id,
        "facet": _facet_dict(row.facet),
        "parent": row.parent_id,
        "keywords": keywords,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "quotes": quotes,
        "history": [
            {
                "scope": s.scope,
                "since": s.window_start.isoformat(),
                "until": s.window_end.isoformat(),
                "size": s.size,
                "share": s.share,
                "net_sentiment": s.net_sentiment,
                "emerging": s.emerging,
                "keywords": json.loads(s.keywords),
            }
            for s in snaps
        ],
    }
