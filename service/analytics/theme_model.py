"""The theme model: facets corrected by their topic vectors, one theme per facet, sub-themes by
k-means, and HDBSCAN themes for items without an aspect (the method: ``service/analytics/themes.py``).
Pure computation over vectors: no store, no text.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np


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


def unit(x: np.ndarray) -> np.ndarray:
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
        return unit(out)


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
        from sklearn.cluster import KMeans  # slow to import: only when this analysis runs
        from sklearn.decomposition import PCA  # slow to import: only when this analysis runs
        from sklearn.metrics import silhouette_score  # slow to import: only when this analysis runs

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
        from sklearn.cluster import HDBSCAN  # slow to import: only when this analysis runs
        from sklearn.decomposition import PCA  # slow to import: only when this analysis runs

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
        cents = np.array([unit(x[labels == k].mean(axis=0)) for k in ks], np.float32).reshape(
            len(ks), x.shape[1]
        )
        raws = np.array([unit(raw[labels == k].mean(axis=0)) for k in ks], np.float32).reshape(
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
            [unit(x[f_arr == name].mean(axis=0)) for name in self.facet_names_], np.float32
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


def decode_vectors(blobs: list[bytes]) -> np.ndarray:
    return unit(np.vstack([np.frombuffer(b, dtype="<f2") for b in blobs]).astype(np.float32))
