"""Theme discovery: clusters of stored embeddings, labelled, followed over time.

``ThemeModel.fit`` removes each language's mean direction from the window's item embeddings
(multilingual embeddings otherwise group by language before topic), reduces them with PCA
and clusters a seeded sample of at most ``sample`` items with scikit-learn's HDBSCAN (leaf
cluster selection: many specific themes rather than a few broad ones);
every item of the window is then assigned to the nearest cluster centroid in the full
embedding space when it lies within that cluster's radius (the 5th percentile of its own
members' cosine to the centroid), otherwise it is noise. "Fit once and slice afterwards":
the same fitted model assigns the previous window's items, which is how growth is measured.

Labels are class-based TF-IDF keywords (each cluster's texts as one document; weight
``tf · log(1 + A / f)`` with ``A`` the mean words per cluster and ``f`` the word's frequency
over all clusters). Tokens: words of Latin-script text (lower-cased, stop words out) and
jieba words for Chinese. Quotes are the items nearest the centroid.

Theme ids are stable: a cluster takes the id of the stored theme whose centroid is most
similar (cosine ≥ ``match_cosine``, one cluster per theme), otherwise a new theme is stored.
A theme is *emerging* when its share of the window grew significantly against the previous
window of the same length (one-sided two-proportion test, Benjamini–Hochberg over all
themes, and at least doubled) or when it had (almost) no items before.
"""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.analytics.stats import benjamini_hochberg, two_proportion
from service.store.repo import FeedbackFilter
from service.store.tables import AspectScoreRow, FeedbackRow, ScoreRow, ThemeRow, ThemeSnapshotRow

logging.getLogger("jieba").setLevel(logging.WARNING)  # its dictionary-loading chatter
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W\d_]{2,}(?:'[a-z]+)?", re.UNICODE)
ZH_STOP = set("的 了 是 我 也 很 都 就 在 和 有 还 又 吗 吧 呢 啊 哦 呀 这 那 个 一个 没有 不是 我们 你们 他们 "
              "这个 那个 就是 还是 但是 不过 而且 因为 所以 如果 感觉 真的 非常 比较 已经 一下 一点 什么 "
              "怎么 可以 自己 觉得 这次 这样 然后 还有 买 了 吃 东西 一直 之前 现在 时候".split())


@lru_cache(maxsize=1)
def _english_stop() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return ENGLISH_STOP_WORDS | {"just", "really", "got", "get", "bought", "buy", "ve", "im", "it's", "don't"}


def tokenize(text: str) -> list[str]:
    """Words for keyword extraction: jieba for Chinese runs, words elsewhere."""
    import jieba

    stop = _english_stop()
    out = []
    for part in re.split(f"({_HAN.pattern})", text):
        if not part:
            continue
        if _HAN.fullmatch(part):
            out += [w for w in jieba.lcut(part) if len(w) >= 2 and w not in ZH_STOP]
        else:
            out += [w for w in (m.lower() for m in _WORD.findall(part)) if w not in stop and len(w) > 2]
    return out


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


@dataclass
class ThemeModel:
    min_cluster_size: int | None = None  # default: max(8, 1% of the sample)
    sample: int = 20_000
    dims: int = 16
    seed: int = 0

    def _center(self, emb: np.ndarray, languages: list[str | None] | None) -> np.ndarray:
        """Remove each language's mean direction (multilingual embeddings otherwise cluster by
        language before topic), then re-normalise."""
        x = emb - self.global_mean_
        if languages is not None:
            for lang, mean in self.language_means_.items():
                sel = np.array([v == lang for v in languages])
                if sel.any():
                    x[sel] = emb[sel] - mean
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    def fit(self, emb: np.ndarray, languages: list[str | None] | None = None) -> "ThemeModel":
        from sklearn.cluster import HDBSCAN
        from sklearn.decomposition import PCA

        self.global_mean_ = emb.mean(axis=0) if len(emb) else np.zeros(emb.shape[1], np.float32)
        self.language_means_ = {}
        if languages is not None:
            for lang, n in Counter(languages).items():
                if n >= 20:
                    self.language_means_[lang] = emb[np.array([v == lang for v in languages])].mean(axis=0)
        rng = np.random.default_rng(self.seed)
        idx = np.sort(rng.choice(len(emb), self.sample, replace=False)) if len(emb) > self.sample else np.arange(len(emb))
        x = self._center(emb, languages)[idx]
        self.centroids_ = np.zeros((0, emb.shape[1]), np.float32)
        self.raw_centroids_ = self.centroids_
        self.radius_ = np.zeros(0, np.float32)
        mcs = self.min_cluster_size or max(10, len(idx) // 150)
        if len(idx) < 2 * mcs:
            return self
        dims = min(self.dims, x.shape[1], len(idx) - 1)
        z = PCA(dims, random_state=self.seed).fit_transform(x)
        labels = HDBSCAN(min_cluster_size=mcs, min_samples=max(3, mcs // 3), cluster_selection_method="leaf",
                         copy=True).fit_predict(z)
        cents, radii, raw = [], [], []
        for k in sorted(set(labels) - {-1}):
            members = x[labels == k]
            c = members.mean(axis=0)
            c /= max(np.linalg.norm(c), 1e-12)
            cents.append(c)
            radii.append(float(np.percentile(members @ c, 5)))
            r = emb[idx][labels == k].mean(axis=0)  # in the stored space: comparable across windows
            raw.append(r / max(np.linalg.norm(r), 1e-12))
        if cents:
            self.centroids_, self.radius_ = np.vstack(cents).astype(np.float32), np.asarray(radii, np.float32)
            self.raw_centroids_ = np.vstack(raw).astype(np.float32)
        return self

    def assign(self, emb: np.ndarray, languages: list[str | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(cluster per item, -1 for noise; cosine to that centroid)``."""
        if len(self.centroids_) == 0 or len(emb) == 0:
            return np.full(len(emb), -1), np.zeros(len(emb), np.float32)
        sims = self._center(emb, languages) @ self.centroids_.T
        best = sims.argmax(axis=1)
        cos = sims[np.arange(len(emb)), best]
        return np.where(cos >= self.radius_[best], best, -1), cos


@dataclass
class WindowItems:
    ids: np.ndarray
    texts: list[str]
    emb: np.ndarray
    sentiment: list[str]
    languages: list[str | None] = field(default_factory=list)
    aspects: dict[int, list[str]] = field(default_factory=dict)


def load_items(session: Session, flt: FeedbackFilter, with_aspects: bool = True) -> WindowItems:
    stmt = flt.apply(select(FeedbackRow.id, FeedbackRow.text, ScoreRow.embedding, ScoreRow.sentiment,
                            FeedbackRow.language)
                     .join(ScoreRow, ScoreRow.feedback_id == FeedbackRow.id)
                     .where(FeedbackRow.duplicate_of.is_(None))).order_by(FeedbackRow.id)
    rows = session.execute(stmt).all()
    if not rows:
        return WindowItems(np.zeros(0, np.int64), [], np.zeros((0, 0), np.float32), [])
    emb = np.vstack([np.frombuffer(r[2], dtype="<f2") for r in rows]).astype(np.float32)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    ids = np.array([r[0] for r in rows], np.int64)
    aspects: dict[int, list[str]] = {}
    if with_aspects:
        a_stmt = flt.apply(select(AspectScoreRow.feedback_id, AspectScoreRow.aspect)
                           .join(FeedbackRow, FeedbackRow.id == AspectScoreRow.feedback_id))
        for fid, aspect in session.execute(a_stmt):
            aspects.setdefault(fid, []).append(aspect)
    return WindowItems(ids, [r[1] for r in rows], emb, [r[3] for r in rows], [r[4] for r in rows], aspects)


def _match(session: Session, centroids: np.ndarray, match_cosine: float, now: datetime,
           keywords: list[list[str]]) -> list[int]:
    """A stored theme id per cluster: the most similar unused stored theme, or a new one."""
    stored = session.execute(select(ThemeRow.id, ThemeRow.centroid)).all()
    ids: list[int | None] = [None] * len(centroids)
    if stored:
        mat = np.vstack([np.frombuffer(c, dtype="<f2") for _, c in stored]).astype(np.float32)
        mat /= np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)
        sims = centroids @ mat.T
        used: set[int] = set()
        for flat in np.argsort(-sims, axis=None):
            i, j = divmod(int(flat), len(stored))
            if sims[i, j] < match_cosine:
                break
            if ids[i] is None and j not in used:
                ids[i] = stored[j][0]
                used.add(j)
    out = []
    for i, tid in enumerate(ids):
        blob = centroids[i].astype("<f2").tobytes()
        if tid is None:
            row = ThemeRow(centroid=blob, keywords=json.dumps(keywords[i], ensure_ascii=False),
                           created_at=now, updated_at=now)
            session.add(row)
            session.flush()
            tid = row.id
        else:
            row = session.get(ThemeRow, tid)
            row.centroid, row.keywords, row.updated_at = blob, json.dumps(keywords[i], ensure_ascii=False), now
        out.append(tid)
    return out


def discover(session: Session, *, flt: FeedbackFilter, since: datetime, until: datetime, scope: str,
             now: datetime, model: ThemeModel | None = None, match_cosine: float = 0.9, quotes: int = 3,
             alpha: float = 0.05, store: bool = True) -> dict:
    """Themes of ``[since, until)`` under ``flt`` (a segment), compared with the window before."""
    from dataclasses import replace

    model = model or ThemeModel()
    cur = load_items(session, replace(flt, since=since, until=until))
    prev_flt = replace(flt, since=since - (until - since), until=since)
    result = {"window": {"since": since.isoformat(), "until": until.isoformat()},
              "previous_window": {"since": prev_flt.since.isoformat(), "until": since.isoformat()},
              "items": len(cur.ids), "themes": []}
    if len(cur.ids) == 0:
        return result
    model.fit(cur.emb, cur.languages)
    labels, cos = model.assign(cur.emb, cur.languages)
    prev = load_items(session, prev_flt, with_aspects=False)
    prev_labels = model.assign(prev.emb, prev.languages)[0] if len(prev.ids) else np.zeros(0, int)
    k = len(model.centroids_)
    docs = [list(chain.from_iterable(tokenize(cur.texts[i]) for i in np.flatnonzero(labels == c))) for c in range(k)]
    keywords = class_tfidf(docs)
    theme_ids = _match(session, model.raw_centroids_, match_cosine, now, keywords) if store else list(range(1, k + 1))
    n, n_prev = len(cur.ids), len(prev.ids)
    stats = []
    for c in range(k):
        kc, kp = int((labels == c).sum()), int((prev_labels == c).sum())
        z, p = two_proportion(kc, n, kp, n_prev) if n_prev else (0.0, 1.0)
        stats.append((kc, kp, z, p / 2 if z > 0 else 1.0))  # one-sided: growth only
    qs = benjamini_hochberg([s[3] for s in stats])
    themes = []
    for c in range(k):
        members = np.flatnonzero(labels == c)
        kc, kp, z, _ = stats[c]
        share, share_prev = kc / n, (kp / n_prev if n_prev else None)
        new = n_prev >= 20 and kp <= max(1, 0.002 * n_prev)
        grew = n_prev > 0 and qs[c] < alpha and share >= 2 * (share_prev or 0)
        sent = Counter(cur.sentiment[i] for i in members)
        asp = Counter(a for i in members for a in cur.aspects.get(int(cur.ids[i]), []))
        near = members[np.argsort(-cos[members])[:quotes]]
        themes.append({
            "id": int(theme_ids[c]), "keywords": keywords[c], "size": kc, "share": round(share, 4),
            "previous": {"size": kp, "share": None if share_prev is None else round(share_prev, 4)},
            "emerging": bool(new or grew), "new": bool(new), "q_value": round(float(qs[c]), 6),
            "sentiment": {s: sent.get(s, 0) for s in ("negative", "neutral", "positive")},
            "net_sentiment": round((sent.get("positive", 0) - sent.get("negative", 0)) / kc, 4),
            "top_aspects": [{"aspect": a, "mentions": m} for a, m in asp.most_common(3)],
            "quotes": [{"id": int(cur.ids[i]), "text": cur.texts[i]} for i in near]})
    themes.sort(key=lambda t: (not t["emerging"], -t["size"]))
    if store:
        for t in themes:
            session.merge(ThemeSnapshotRow(
                theme_id=t["id"], scope=scope, window_start=since, window_end=until, size=t["size"],
                share=t["share"], net_sentiment=t["net_sentiment"], emerging=t["emerging"],
                keywords=json.dumps(t["keywords"], ensure_ascii=False),
                quotes=json.dumps([q["id"] for q in t["quotes"]]), computed_at=now))
        session.commit()
    result["themes"] = themes
    result["noise"] = int((labels == -1).sum())
    return result


def theme_detail(session: Session, theme_id: int, *, flt: FeedbackFilter | None = None,
                 scope: str | None = None) -> dict | None:
    """A stored theme with its history (one row per analysed window) and latest quotes
    (only quotes ``flt``, e.g. the caller's data scope, lets through)."""
    row = session.get(ThemeRow, theme_id)
    if row is None:
        return None
    stmt = select(ThemeSnapshotRow).where(ThemeSnapshotRow.theme_id == theme_id)
    if scope is not None:
        stmt = stmt.where(ThemeSnapshotRow.scope == scope)
    snaps = session.scalars(stmt.order_by(ThemeSnapshotRow.window_start)).all()
    quotes = []
    if snaps:
        ids = json.loads(snaps[-1].quotes)
        stmt = (flt or FeedbackFilter()).apply(select(FeedbackRow.id, FeedbackRow.text).where(FeedbackRow.id.in_(ids)))
        texts = dict(session.execute(stmt).all())
        quotes = [{"id": i, "text": texts[i]} for i in ids if i in texts]
    return {"id": row.id, "keywords": json.loads(row.keywords), "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat(), "quotes": quotes,
            "history": [{"scope": s.scope, "since": s.window_start.isoformat(), "until": s.window_end.isoformat(),
                         "size": s.size, "share": s.share, "net_sentiment": s.net_sentiment,
                         "emerging": s.emerging, "keywords": json.loads(s.keywords)} for s in snaps]}
