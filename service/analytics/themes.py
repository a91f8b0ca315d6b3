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
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from itertools import chain

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.analytics.stats import benjamini_hochberg, two_proportion
from service.store.repo import FeedbackFilter
from service.store.tables import AspectScoreRow, FeedbackRow, ScoreRow, ThemeRow, ThemeSnapshotRow

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W\d_]{2,}(?:'[a-z]+)?", re.UNICODE)
ZH_STOP = set(
    "的 了 是 我 也 很 都 就 在 和 有 还 又 吗 吧 呢 啊 哦 呀 这 那 个 一个 没有 不是 我们 你们 他们 "
    "这个 那个 就是 还是 但是 不过 而且 因为 所以 如果 感觉 真的 非常 比较 已经 一下 一点 什么 "
    "怎么 可以 自己 觉得 这次 这样 然后 还有 买 了 吃 东西 一直 之前 现在 时候".split()
)


@lru_cache(maxsize=1)
def _english_stop() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return ENGLISH_STOP_WORDS | {
        "just",
        "really",
        "got",
        "get",
        "bought",
        "buy",
        "ve",
        "im",
        "it's",
        "don't",
    }


# what is not a word of the feedback: links, e-mail addresses, @handles, HTML entities, and the
# "[redacted-…]" placeholders ingest leaves where contact details were
_NOISE = re.compile(
    r"(?:https?://|www\.)\S+|\S+@\S+\.\S+|@\w+|&[a-z]+;|&#\d+;|\[redacted[^\]]*\]", re.I
)
_WEB_WORDS = frozenset(
    {"http", "https", "www", "com", "net", "org", "html", "amp", "quot", "via", "rt"}
)


def tokenize(text: str, drop: frozenset[str] = frozenset()) -> list[str]:
    """Words for keyword extraction: jieba for Chinese runs, words elsewhere; stop words of both
    languages, links, handles and the (case-folded) words in ``drop`` (brand names) left out."""
    from service.nlp.rules import jieba_module

    stop = _english_stop()
    out = []
    for part in re.split(f"({_HAN.pattern})", _NOISE.sub(" ", text)):
        if not part:
            continue
        if _HAN.fullmatch(part):
            out += [
                w
                for w in jieba_module().lcut(part)
                if len(w) >= 2 and w not in ZH_STOP and w not in drop
            ]
        else:
            out += [
                w
                for w in (m.lower() for m in _WORD.findall(part))
                if len(w) > 2 and w not in stop and w not in _WEB_WORDS and w not in drop
            ]
    return out


def keyword_tokenizer(session: Session, competitors=None):
    """``tokenize`` for this store's keywords: brand mentions (given the brand list) blanked
    out first, then the brand words of ``brand_words`` dropped."""
    drop = brand_words(session, competitors)
    if competitors is None:
        return lambda text: tokenize(text, drop)
    return lambda text: tokenize(competitors.without_mentions(text), drop)


def brand_words(session: Session, competitors=None) -> frozenset[str]:
    """Words that name a brand: the stored brand ids and, given the brand list, every brand's
    name and aliases, whole and word by word (what ``tokenize`` leaves out)."""
    names = set(session.scalars(select(FeedbackRow.brand).distinct()))
    if competitors is not None:
        for b in competitors.brands:
            names |= {b.id, b.name, *b.aliases}
    out: set[str] = set()
    for name in names:
        key = (name or "").casefold()
        out.add(key)
        out.add(re.sub(r"[\s_\-]+", "", key))
        out |= {w for w in re.split(r"[\s_\-]+", key) if len(w) > 2}
    return frozenset(w for w in out if w)


def class_tfidf(docs: list[list[str]], top: int = 6) -> list[list[str]]:
    """Top keywords per class (class-based TF-IDF over each class's concatenated tokens)."""
    counts = [Counter(d) for d in docs]
    total = Counter()
    for c in counts:
        total.update(c)
    avg = max(np.mean([sum(c.values()) for c in counts]) if counts else 1.0, 1.0)
    out = []
    for c in counts:
        n = max(sum(c.values()), 1)
        weights = {w: (k / n) * np.log(1 + avg / total[w]) for w, k in c.items()}
        out.append([w for w, _ in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:top]])
    return out


def facet_of(aspect: str, sentiment_score: float, band: float = 0.2) -> str:
    """``aspect:polarity`` from an aspect's sentiment score (P(pos) − P(neg)), neutral within ±band."""
    pol = (
        "positive"
        if sentiment_score > band
        else "negative"
        if sentiment_score < -band
        else "neutral"
    )
    return f"{aspect}:{pol}"


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@dataclass
class _Part:
    """The fitted state of one facet (or of the aspect-less items, facet None): its centring,
    its themes' centroids and, for a facet, its sub-themes' centroids."""

    facet: str | None
    mean: np.ndarray
    language_means: dict[str, np.ndarray]
    centroids: np.ndarray  # in the centred space, unit rows
    raw: np.ndarray  # in the stored space: comparable across windows (theme matching)
    radius: np.ndarray | None = None  # aspect-less themes only: members lie within it
    sub: np.ndarray | None = None  # a facet's sub-themes, centred space
    sub_raw: np.ndarray | None = None

    def center(self, x: np.ndarray, languages: list[str | None]) -> np.ndarray:
        out = x - self.mean
        for lang, mean in self.language_means.items():
            sel = np.array([v == lang for v in languages])
            if sel.any():
                out[sel] = x[sel] - mean
        return _unit(out)


@dataclass(frozen=True)
class ThemeRef:
    facet: str | None
    parent: int | None  # index of the parent theme (sub-themes only)
    raw: np.ndarray


@dataclass
class ThemeModel:
    """Themes of one window; see the module docstring for the method."""

    min_cluster_size: int | None = None  # default: max(5, 1% of the sample)
    sample: int = 20_000
    dims: int = 16
    max_split: int = 6
    split_silhouette: float = 0.05
    reassign_margin: float = 0.05
    seed: int = 0
    parts_: list[_Part] = field(default_factory=list, init=False)
    facet_names_: list[str] = field(default_factory=list, init=False)

    @property
    def themes_(self) -> list[ThemeRef]:
        """Every theme, top-level ones first (their index is their label), then sub-themes."""
        top = [ThemeRef(p.facet, None, r) for p in self.parts_ for r in p.raw]
        subs, offset = [], 0
        for p in self.parts_:
            if p.sub_raw is not None:
                subs += [ThemeRef(p.facet, offset, r) for r in p.sub_raw]
            offset += len(p.centroids)
        return top + subs

    @property
    def centroids_(self) -> np.ndarray:
        rows = [p.centroids for p in self.parts_]
        return np.vstack(rows) if rows else np.zeros((0, 0), np.float32)

    @staticmethod
    def _means(
        x: np.ndarray, languages: list[str | None]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        means = {
            lang: x[np.array([v == lang for v in languages])].mean(axis=0)
            for lang, n in Counter(languages).items()
            if lang is not None and n >= 5
        }
        return x.mean(axis=0), means

    def _split(self, x: np.ndarray, mcs: int) -> np.ndarray | None:
        """Sub-themes of one facet: k-means for k = 2..max_split, the k with the best silhouette
        (cosine) when it reaches ``split_silhouette`` and every part holds ``mcs`` items. Run on
        the facet's vectors reduced by PCA to ``dims`` dimensions, fitted on at most 3,000 of them
        (the rest take their nearest centre): a 100,000-item window stays well under a minute."""
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA
        from sklearn.metrics import silhouette_score

        rng = np.random.default_rng(self.seed)
        fit_idx = (
            np.sort(rng.choice(len(x), 3000, replace=False)) if len(x) > 3000 else np.arange(len(x))
        )
        pca = PCA(min(self.dims, x.shape[1], len(fit_idx) - 1), random_state=self.seed).fit(
            x[fit_idx]
        )
        z = pca.transform(x)
        best, best_s = None, self.split_silhouette
        for k in range(2, min(self.max_split, len(x) // mcs) + 1):
            km = KMeans(k, n_init=3, random_state=self.seed).fit(z[fit_idx])
            labels = km.predict(z)
            if np.bincount(labels, minlength=k).min() < mcs:
                continue
            s = silhouette_score(
                x[fit_idx],
                labels[fit_idx],
                metric="cosine",
                sample_size=min(2000, len(fit_idx)),
                random_state=self.seed,
            )
            if s >= best_s:
                best, best_s = labels, s
        return best

    def _discover(self, x: np.ndarray, mcs: int) -> np.ndarray:
        """Clusters among the items that carry no aspect: HDBSCAN (leaf selection) after PCA."""
        from sklearn.cluster import HDBSCAN
        from sklearn.decomposition import PCA

        if len(x) < 2 * mcs:
            return np.full(len(x), -1)
        z = PCA(min(self.dims, x.shape[1], len(x) - 1), random_state=self.seed).fit_transform(x)
        return HDBSCAN(
            min_cluster_size=mcs,
            min_samples=max(3, mcs // 3),
            cluster_selection_method="leaf",
            copy=True,
        ).fit_predict(z)

    @staticmethod
    def _centroids(
        x: np.ndarray, raw: np.ndarray, labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ks = sorted(set(labels.tolist()) - {-1})
        # no cluster (every item is noise, e.g. a handful of untagged items): no centroids, not a crash
        cents = np.array([_unit(x[labels == k].mean(axis=0)) for k in ks], np.float32).reshape(
            len(ks), x.shape[1]
        )
        raws = np.array([_unit(raw[labels == k].mean(axis=0)) for k in ks], np.float32).reshape(
            len(ks), raw.shape[1]
        )
        radii = np.array(
            [np.percentile(x[labels == k] @ c, 5) for k, c in zip(ks, cents)], np.float32
        )
        return cents, raws, radii

    def _fit_correction(
        self, emb: np.ndarray, languages: list[str | None], facets: list[str | None]
    ) -> None:
        """The facets' centroids in one language-centred space, for ``correct``."""
        mean, lang_means = self._means(emb, languages)
        self.global_ = _Part(
            None,
            mean,
            lang_means,
            np.zeros((0, emb.shape[1]), np.float32),
            np.zeros((0, emb.shape[1]), np.float32),
        )
        x = self.global_.center(emb, languages)
        self.facet_names_ = sorted({f for f in facets if f is not None})
        f_arr = np.array([f if f is not None else "" for f in facets], dtype=object)
        self.facet_centroids_ = np.array(
            [_unit(x[f_arr == name].mean(axis=0)) for name in self.facet_names_], np.float32
        ).reshape(len(self.facet_names_), emb.shape[1])

    def correct(
        self, emb: np.ndarray, languages: list[str | None], facets: list[str | None]
    ) -> list[str | None]:
        """One correction pass: an item whose topic vector lies clearly nearer (by more than
        ``reassign_margin`` in cosine) to another facet's centroid than to its own moves there.
        The aspect tagger errs; the evidence clause says what the item is about. (One pass, not
        k-means to convergence: measured on the demo data, ARI against the generator's topics
        0.47 → 0.54 after one pass, and back down with more.)"""
        if not self.facet_names_ or self.reassign_margin is None or not len(emb):
            return list(facets)
        pos = {name: i for i, name in enumerate(self.facet_names_)}
        sims = self.global_.center(emb, list(languages)) @ self.facet_centroids_.T
        best = sims.argmax(axis=1)
        out = []
        for i, f in enumerate(facets):
            if f is None or f not in pos:
                out.append(f)
                continue
            own = sims[i, pos[f]]
            out.append(
                self.facet_names_[best[i]] if sims[i, best[i]] > own + self.reassign_margin else f
            )
        return out

    def fit(
        self,
        emb: np.ndarray,
        languages: list[str | None] | None = None,
        facets: list[str | None] | None = None,
    ) -> ThemeModel:
        n = len(emb)
        languages = list(languages) if languages is not None else [None] * n
        facets = list(facets) if facets is not None else [None] * n
        rng = np.random.default_rng(self.seed)
        idx = (
            np.sort(rng.choice(n, self.sample, replace=False)) if n > self.sample else np.arange(n)
        )
        mcs = self.min_cluster_size or max(5, len(idx) // 100)
        self._fit_correction(emb[idx], [languages[i] for i in idx], [facets[i] for i in idx])
        facets = self.correct(emb, languages, facets)
        self.parts_ = []
        by_facet: dict[str | None, list[int]] = {}
        for i in idx:
            by_facet.setdefault(facets[i], []).append(int(i))
        for facet in sorted(by_facet, key=lambda f: (f is None, f or "")):
            members = np.asarray(by_facet[facet])
            if len(members) < mcs:
                continue  # too few to call a theme: its items stay unassigned
            raw = emb[members]
            langs = [languages[i] for i in members]
            mean, lang_means = self._means(raw, langs)
            part = _Part(
                facet,
                mean,
                lang_means,
                np.zeros((0, emb.shape[1]), np.float32),
                np.zeros((0, emb.shape[1]), np.float32),
            )
            x = part.center(raw, langs)
            if facet is None:
                part.centroids, part.raw, part.radius = self._centroids(
                    x, raw, self._discover(x, mcs)
                )
                if not len(part.centroids):
                    continue
            else:
                part.centroids, part.raw, _ = self._centroids(x, raw, np.zeros(len(x), int))
                sub = self._split(x, max(5, len(x) // 20))
                if sub is not None:
                    part.sub, part.sub_raw, _ = self._centroids(x, raw, sub)
            self.parts_.append(part)
        return self

    def assign(
        self,
        emb: np.ndarray,
        languages: list[str | None] | None = None,
        facets: list[str | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(top-level theme per item, -1 for none; cosine to its centroid)``. An item with a
        facet belongs to its facet's theme; an aspect-less item to the nearest aspect-less theme
        whose radius it lies within."""
        return self._assign(emb, languages, facets, sub=False)

    def assign_sub(
        self,
        emb: np.ndarray,
        languages: list[str | None] | None = None,
        facets: list[str | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(sub-theme per item as an index into themes_, -1 for none; cosine to it)``."""
        return self._assign(emb, languages, facets, sub=True)

    def _assign(self, emb, languages, facets, *, sub: bool) -> tuple[np.ndarray, np.ndarray]:
        n = len(emb)
        labels, cos = np.full(n, -1), np.zeros(n, np.float32)
        languages = list(languages) if languages is not None else [None] * n
        facets = self.correct(emb, languages, list(facets) if facets is not None else [None] * n)
        offset = sum(len(p.centroids) for p in self.parts_) if sub else 0
        for part in self.parts_:
            cents = part.sub if sub else part.centroids
            sel = (
                np.flatnonzero(np.array([f == part.facet for f in facets], bool))
                if n
                else np.zeros(0, int)
            )
            if cents is not None and len(sel):
                sims = part.center(emb[sel], [languages[i] for i in sel]) @ cents.T
                best = sims.argmax(axis=1)
                c = sims[np.arange(len(sel)), best]
                keep = (
                    c >= part.radius[best]
                    if part.radius is not None and not sub
                    else np.ones(len(sel), bool)
                )
                labels[sel[keep]] = best[keep] + offset
                cos[sel] = c
            offset += 0 if cents is None else len(cents)
        return labels, cos


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


def decode_vectors(blobs: list[bytes]) -> np.ndarray:
    return _unit(np.vstack([np.frombuffer(b, dtype="<f2") for b in blobs]).astype(np.float32))


def load_items(session: Session, flt: FeedbackFilter, with_aspects: bool = True) -> WindowItems:
    """The window's canonical scored items with what themes need: the topic vector (the item's
    own embedding where no aspect was found), its facet (the most confident aspect with its
    polarity) and its evidence text."""
    stmt = flt.apply(
        select(
            FeedbackRow.id,
            FeedbackRow.text,
            ScoreRow.embedding,
            ScoreRow.topic_embedding,
            ScoreRow.sentiment,
            FeedbackRow.language,
        )
        .join(ScoreRow, ScoreRow.feedback_id == FeedbackRow.id)
        .where(FeedbackRow.duplicate_of.is_(None))
    ).order_by(FeedbackRow.id)
    rows = session.execute(stmt).all()
    if not rows:
        return WindowItems(np.zeros(0, np.int64), [], np.zeros((0, 0), np.float32), [])
    emb = decode_vectors([r[3] if r[3] is not None else r[2] for r in rows])
    ids = np.array([r[0] for r in rows], np.int64)
    aspects: dict[int, list[str]] = {}
    primary: dict[int, tuple[float, str, float, str]] = {}
    a_stmt = flt.apply(
        select(
            AspectScoreRow.feedback_id,
            AspectScoreRow.aspect,
            AspectScoreRow.confidence,
            AspectScoreRow.sentiment_score,
            AspectScoreRow.evidence,
        ).join(FeedbackRow, FeedbackRow.id == AspectScoreRow.feedback_id)
    )
    for fid, aspect, conf, score, evidence in session.execute(a_stmt):
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
    stored = session.execute(
        select(ThemeRow.id, ThemeRow.centroid, ThemeRow.facet, ThemeRow.parent_id)
    ).all()
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
        blob = ref.raw.astype("<f2").tobytes()
        words = json.dumps(keywords[i], ensure_ascii=False)
        if best is None:
            row = ThemeRow(
                centroid=blob,
                facet=ref.facet,
                parent_id=parent,
                keywords=words,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            best = row.id
        else:
            row = session.get(ThemeRow, best)
            row.centroid, row.keywords, row.updated_at = blob, words, now
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
    from dataclasses import replace

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
        for t in records:
            session.merge(
                ThemeSnapshotRow(
                    theme_id=t["id"],
                    scope=scope,
                    window_start=since,
                    window_end=until,
                    size=t["size"],
                    share=t["share"],
                    net_sentiment=t["net_sentiment"],
                    emerging=t["emerging"],
                    keywords=json.dumps(t["keywords"], ensure_ascii=False),
                    quotes=json.dumps([q["id"] for q in t["quotes"]]),
                    computed_at=now,
                )
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
    row = session.get(ThemeRow, theme_id)
    if row is None:
        return None
    stmt = select(ThemeSnapshotRow).where(ThemeSnapshotRow.theme_id == theme_id)
    if scope is not None:
        stmt = stmt.where(ThemeSnapshotRow.scope == scope)
    snaps = session.scalars(stmt.order_by(ThemeSnapshotRow.window_start)).all()
    if scope is not None and not snaps:
        return None
    keywords = json.loads(snaps[-1].keywords if scope is not None else row.keywords)
    quotes = []
    if snaps:
        ids = json.loads(snaps[-1].quotes)
        stmt = (flt or FeedbackFilter()).apply(
            select(FeedbackRow.id, FeedbackRow.text).where(FeedbackRow.id.in_(ids))
        )
        texts = dict(session.execute(stmt).all())
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
