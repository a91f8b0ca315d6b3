"""Labeled aspect sets paired with the taxonomy a new team wrote for each.

Every set in ``../shared/data`` with aspect categories is read together with its taxonomy in
``benchmarks/taxonomies/`` (written before its sentences were read); the taxonomy's
``benchmark:`` block maps the set's gold categories onto its aspect ids. The same sets serve
``benchmarks/aspects_new_taxonomy.py`` (zero-shot reports, leave-one-set-out) and
``training.train_relevance`` (the relevance model learned across sets).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from service.config import REPO_ROOT
from service.domain import Taxonomy
from service.ingest.normalize import dedup_key
from training import data as D

TAXONOMIES = REPO_ROOT / "benchmarks" / "taxonomies"


@dataclass
class AspectSet:
    name: str
    language: str
    taxonomy: Taxonomy
    texts: list[str]
    gold: np.ndarray  # (n, n_aspects) bool
    # sets whose sentences overlap this one's: never trained on when this one is reported
    family: str = ""
    meta: dict = field(default_factory=dict)
    # (n, n_aspects): the gold polarity of each gold aspect (0 negative, 1 neutral, 2 positive),
    # -1 where the aspect is not gold or its categories disagree (a conflict)
    polarity: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def ids(self) -> list[str]:
        return self.taxonomy.ids

    def digest(self) -> str:
        blob = "\x1f".join(self.texts) + "\x1e" + self.taxonomy.fingerprint()
        return hashlib.sha1(blob.encode("utf-8")).hexdigest()[:12]

    def keys(self) -> set[str]:
        return {dedup_key(t) for t in self.texts}


def load_taxonomy(name: str) -> tuple[Taxonomy, dict]:
    raw = yaml.safe_load((TAXONOMIES / f"{name}.yaml").read_text(encoding="utf-8"))
    bench = raw.pop("benchmark")
    return Taxonomy.model_validate(raw), bench


def _to_set(
    name: str,
    language: str,
    taxonomy_name: str,
    rows: list[tuple[str, dict[str, str]]],
    family: str,
) -> AspectSet:
    taxonomy, bench = load_taxonomy(taxonomy_name)
    ids = taxonomy.ids
    cats, by_entity = bench.get("categories", {}), bench.get("entity_default", {})

    def aspect_of(cat: str) -> str | None:
        if cat in cats:
            return cats[cat]
        return by_entity.get(cat.split("#")[0]) if "#" in cat else None

    texts, gold, polarity, unmapped = [], [], [], set()
    for text, labels in rows:
        if not text.strip():
            continue
        g = np.zeros(len(ids), dtype=bool)
        said: dict[int, set[int]] = {}
        for cat, pol in labels.items():
            aid = aspect_of(cat)
            if aid is None:
                unmapped.add(cat)
                continue
            k = ids.index(aid)
            g[k] = True
            said.setdefault(k, set()).add(D.POLARITY.get(pol, -1))
        pol_row = np.full(len(ids), -1, dtype=np.int8)
        for k, values in said.items():
            if len(values) == 1:
                pol_row[k] = values.pop()
        texts.append(text)
        gold.append(g)
        polarity.append(pol_row)
    if unmapped:
        raise ValueError(f"{name}: categories mapped to no aspect: {sorted(unmapped)}")
    return AspectSet(
        name,
        language,
        taxonomy,
        texts,
        np.array(gold),
        family=family,
        meta={"taxonomy": taxonomy_name},
        polarity=np.array(polarity),
    )


def mams_val() -> AspectSet:
    return _to_set("mams-acsa/val", "en", "mams_acsa", D.mams_categories("val"), "mams")


def mams_train() -> AspectSet:
    return _to_set("mams-acsa/train", "en", "mams_acsa", D.mams_categories("train"), "mams")


def semeval14_restaurants() -> AspectSet:
    return _to_set(
        "semeval14-restaurants/train",
        "en",
        "semeval14_restaurants",
        D.semeval_restaurant_categories(),
        "semeval-restaurants",
    )


def semeval16_laptops() -> AspectSet:
    return _to_set(
        "semeval16-laptops/train",
        "en",
        "semeval16_laptops",
        D.semeval16_categories(
            D.data_dir() / "semeval2016_absa" / "ABSA16_Laptops_Train_SB1_v2.xml"
        ),
        "semeval-laptops",
    )


def semeval16_restaurants() -> AspectSet:
    # SemEval-2016's restaurant sentences largely repeat SemEval-2014's: one family
    return _to_set(
        "semeval16-restaurants/train",
        "en",
        "semeval16_restaurants",
        D.semeval16_categories(
            D.data_dir() / "semeval2016_absa" / "ABSA16_Restaurants_Train_SB1_v2.xml"
        ),
        "semeval-restaurants",
    )


def semeval16_dutch() -> AspectSet:
    return _to_set(
        "semeval16-restaurants-nl/train",
        "nl",
        "semeval16_restaurants",
        D.semeval16_categories(
            D.data_dir() / "semeval2016_absa" / "ABSA16NL_Restaurants_Train.xml"
        ),
        "semeval-dutch",
    )


def asap() -> AspectSet:
    return _to_set(
        "asap/train+dev samples", "zh", "asap", D.asap_categories(("train", "dev")), "asap"
    )


REPORTED = {
    "mams": mams_val,
    "semeval14": semeval14_restaurants,
    "laptops16": semeval16_laptops,
    "restaurants16": semeval16_restaurants,
    "dutch16": semeval16_dutch,
    "asap": asap,
}
TRAINING_ONLY = {"mams-train": mams_train}


def load_all(names: list[str] | None = None) -> dict[str, AspectSet]:
    table = {**REPORTED, **TRAINING_ONLY}
    return {n: table[n]() for n in (names or list(table))}


def training_sets_for(
    target: AspectSet, sets: dict[str, AspectSet]
) -> list[tuple[AspectSet, np.ndarray]]:
    """The sets a model reported on ``target`` may train on, each with a mask of its usable
    sentences: never ``target``'s own family (SemEval-2014 and -2016 restaurants share most of
    their sentences; MAMS train and val are one set), and never a sentence ``target`` also has."""
    keys = target.keys()
    out = []
    for s in sets.values():
        if s.family == target.family:
            continue
        mask = np.array([dedup_key(t) not in keys for t in s.texts])
        out.append((s, mask))
    return out


@dataclass
class Embedded:
    """One encoder pass over a set, as the pipeline runs it: text and clause embeddings."""

    text: np.ndarray  # (n, d)
    clauses: list[np.ndarray]  # per text (k_i, d)
    spans: list[list[tuple[int, int]]]


def embed(s: AspectSet, encoder) -> Embedded:
    """Cached on disk per encoder, runtime and set (the pipeline's clause spans and pooling)."""
    from service.nlp.text import clause_spans

    runtime = getattr(encoder, "runtime", "torch")
    path = (
        cache_dir()
        / f"{encoder.name}-{runtime}"
        / f"{s.name.replace('/', '_').replace(' ', '_')}-{s.digest()}.npz"
    )
    spans = [clause_spans(t) for t in s.texts]
    if path.exists():
        z = np.load(path)
        offsets = z["offsets"]
        cl = z["clauses"]
        return Embedded(z["text"], [cl[offsets[i] : offsets[i + 1]] for i in range(len(s))], spans)
    text_parts, clause_parts = [], []
    from tqdm import tqdm

    step = 256
    with tqdm(total=len(s), desc=f"embed {s.name}", unit="text", dynamic_ncols=True) as bar:
        for i in range(0, len(s), step):
            t, c = encoder.encode_with_spans(s.texts[i : i + step], spans[i : i + step])
            text_parts.append(t)
            clause_parts.extend(c)
            bar.update(len(t))
    text = np.concatenate(text_parts).astype(np.float32)
    offsets = np.cumsum([0] + [len(c) for c in clause_parts])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp, text=text, clauses=np.concatenate(clause_parts).astype(np.float32), offsets=offsets
    )
    tmp.replace(path)
    return Embedded(text, [c.astype(np.float32) for c in clause_parts], spans)


def cache_dir() -> Path:
    from service.config import Settings

    return Path(Settings().model_cache_dir) / "aspect-sets"
