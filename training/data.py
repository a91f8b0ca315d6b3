"""Loaders for the labeled datasets in ``../shared/data`` (read by path, never copied).

Every loader returns a ``LabeledSet``: texts, integer labels in Radar's order (0 negative,
1 neutral, 2 positive) and whether the set is two-class (no neutral examples, so it must
not teach the model that nothing is neutral).
"""

from __future__ import annotations

import csv
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from service.config import REPO_ROOT
from service.ingest.normalize import dedup_key

NEG, NEU, POS = 0, 1, 2
UMSAB_LANGS = {
    "arabic": "ar",
    "english": "en",
    "french": "fr",
    "german": "de",
    "hindi": "hi",
    "italian": "it",
    "portuguese": "pt",
    "spanish": "es",
}


def data_dir() -> Path:
    return Path(os.environ.get("RADAR_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


@dataclass
class LabeledSet:
    name: str
    texts: list[str]
    labels: list[int]
    binary: bool
    language: str = "en"
    meta: dict = field(default_factory=dict)
    # for clause sets: (sentence, (start, end)) per example, to embed the clause in context
    spans: list[tuple[str, tuple[int, int]]] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, keep: list[int], **meta) -> LabeledSet:
        """The examples at the indices ``keep``, in that order, with ``meta`` added to the set's."""
        return LabeledSet(
            self.name,
            [self.texts[i] for i in keep],
            [self.labels[i] for i in keep],
            self.binary,
            self.language,
            {**self.meta, **meta},
            [self.spans[i] for i in keep] if self.spans is not None else None,
        )

    def without(self, keys: set[str]) -> LabeledSet:
        """A copy without texts whose duplicate key is in ``keys`` (dev texts out of train)."""
        keep = [i for i, t in enumerate(self.texts) if dedup_key(t) not in keys]
        return self.subset(keep, removed=len(self) - len(keep))


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def sst2(split: str) -> LabeledSet:
    rows = list(
        csv.reader(
            open(data_dir() / "sst2" / f"{split}.tsv", encoding="utf-8"),
            delimiter="\t",
            quoting=csv.QUOTE_NONE,
        )
    )[1:]
    return LabeledSet(
        f"sst2/{split}",
        [r[1] for r in rows],
        [POS if r[0] == "1" else NEG for r in rows],
        binary=True,
    )


def tweeteval(split: str) -> LabeledSet:
    root = data_dir() / "tweeteval_sentiment"
    if split == "train":
        rows = list(
            csv.reader(
                open(root / "train_reconstructed.tsv", encoding="utf-8"),
                delimiter="\t",
                quoting=csv.QUOTE_NONE,
            )
        )[1:]
        texts, labels = [r[1] for r in rows], [int(r[0]) for r in rows]
    else:
        texts, labels = (
            _lines(root / "val_text.txt"),
            [int(x) for x in _lines(root / "val_labels.txt")],
        )
    return LabeledSet(f"tweeteval/{split}", texts, labels, binary=False)


def umsab(lang_dir: str, split: str) -> LabeledSet:
    root = data_dir() / "umsab" / lang_dir
    texts = _lines(root / f"{split}_text.txt")
    labels = [int(x) for x in _lines(root / f"{split}_labels.txt")]
    return LabeledSet(
        f"umsab-{UMSAB_LANGS[lang_dir]}/{split}",
        texts,
        labels,
        binary=False,
        language=UMSAB_LANGS[lang_dir],
    )


def semeval_restaurant_categories() -> list[tuple[str, dict[str, str]]]:
    """``(sentence, {category: polarity})`` from the SemEval-2014 restaurants train file."""
    return aspect_categories(data_dir() / "semeval2014_absa" / "Restaurants_Train_v2.xml")


def mams_categories(split: str) -> list[tuple[str, dict[str, str]]]:
    return aspect_categories(data_dir() / "mams" / f"mams_acsa_{split}.xml")


def aspect_categories(path: Path) -> list[tuple[str, dict[str, str]]]:
    tree = ET.parse(path)
    out = []
    for s in tree.getroot().iter("sentence"):
        cats = {c.get("category"): c.get("polarity") for c in s.iter("aspectCategory")}
        out.append((s.findtext("text") or "", cats))
    return out


def dedup_keys(*sets: LabeledSet) -> set[str]:
    return {dedup_key(t) for s in sets for t in s.texts}


_POLARITY = {"negative": NEG, "neutral": NEU, "positive": POS}


def aspect_term_clauses(path: Path, name: str) -> LabeledSet:
    """Review clauses labeled by the polarity of the aspect terms inside them.

    Sentences are cut with the pipeline's own clause splitter; a clause whose aspect terms
    all share one polarity (conflict excluded) becomes an example. This gives clause-level
    review sentiment, the unit the aspect tagger attaches sentiment to.
    """
    from service.nlp.text import clause_spans

    texts, labels, spans = [], [], []
    for s in ET.parse(path).getroot().iter("sentence"):
        text = s.findtext("text") or ""
        terms = [
            (int(t.get("from")), int(t.get("to")), t.get("polarity")) for t in s.iter("aspectTerm")
        ]
        for a, b in clause_spans(text):
            pols = {p for f, e, p in terms if f < b and e > a}
            if len(pols) == 1 and (p := pols.pop()) in _POLARITY:
                texts.append(text[a:b])
                labels.append(_POLARITY[p])
                spans.append((text, (a, b)))
    return LabeledSet(name, texts, labels, binary=False, spans=spans)


def mams_clauses(split: str) -> LabeledSet:
    return aspect_term_clauses(
        data_dir() / "mams" / f"mams_atsa_{split}.xml", f"mams-clauses/{split}"
    )


def laptop_clauses() -> LabeledSet:
    return aspect_term_clauses(
        data_dir() / "semeval2014_absa" / "Laptop_Train_v2.xml", "laptop-clauses/train"
    )


def chnsenticorp(split: str) -> LabeledSet:
    path = data_dir() / "chnsenticorp" / f"{split}.tsv"
    with open(path, encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    col = 1 if split == "train" else 2
    lab = 0 if split == "train" else 1
    return LabeledSet(
        f"chnsenticorp/{split}",
        [r[col] for r in rows if len(r) > col],
        [POS if r[lab] == "1" else NEG for r in rows if len(r) > col],
        binary=True,
        language="zh",
    )


def online_shopping() -> LabeledSet:
    """62,773 e-commerce reviews in 10 categories (two-class); train only (no dev split)."""
    path = data_dir() / "online_shopping_10_cats" / "online_shopping_10_cats.csv"
    with open(path, encoding="utf-8-sig") as fh:
        rows = [r for r in csv.DictReader(fh) if (r.get("review") or "").strip()]
    return LabeledSet(
        "online_shopping/train",
        [r["review"].lstrip("\ufeff") for r in rows],
        [POS if r["label"] == "1" else NEG for r in rows],
        binary=True,
        language="zh",
    )


def sample(s: LabeledSet, n: int | None, seed: int = 13) -> LabeledSet:
    """A seeded random subset of at most ``n`` examples (all of them when ``n`` is None)."""
    if n is None or len(s) <= n:
        return s
    import random

    keep = sorted(random.Random(seed).sample(range(len(s)), n))
    return s.subset(keep, sampled_from=len(s))


def semeval16_categories(path: Path) -> list[tuple[str, dict[str, str]]]:
    """``(sentence, {ENTITY#ATTRIBUTE: polarity})`` from a SemEval-2016 SB1 file (sentences
    without opinions included, with no category)."""
    out = []
    for s in ET.parse(path).getroot().iter("sentence"):
        cats = {o.get("category"): o.get("polarity") for o in s.iter("Opinion")}
        out.append((s.findtext("text") or "", cats))
    return out


ASAP_NOT_MENTIONED = "-2"
# an aspect label's polarity as a class index (the sentiment head's order); "conflict": none
POLARITY = {"negative": 0, "neutral": 1, "positive": 2}


def asap_categories(splits: tuple[str, ...] = ("train", "dev")) -> list[tuple[str, dict[str, str]]]:
    """``(review, {column: polarity})`` from the ASAP samples (the test sample is never read)."""
    pol = {"1": "positive", "0": "neutral", "-1": "negative"}
    out = []
    for split in splits:
        if split == "test":
            raise ValueError("the ASAP test sample is held out")
        with open(data_dir() / "asap_samples" / f"{split}_sample.csv", encoding="utf-8-sig") as fh:
            for r in csv.DictReader(fh):
                cats = {
                    k: pol[v.strip()]
                    for k, v in r.items()
                    if k not in ("index", "reviewbody", "star") and (v or "").strip() in pol
                }
                out.append((r["reviewbody"], cats))
    return out


# --- row references (the hand-labeled sets under benchmarks/ store these, never texts) -------


@lru_cache(maxsize=32)
def _ref_rows(path: Path):
    csv.field_size_limit(10**9)
    if path.suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    if path.suffix == ".tsv":
        with open(path, encoding="utf-8", newline="") as fh:
            rd = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(rd)
            return header, list(rd)
    if path.suffix == ".xml":
        return list(ET.parse(path).getroot().iter("sentence"))
    return path.read_text(encoding="utf-8").split("\n")


def resolve_ref(ref_file: str, ref: str, data: Path | None = None) -> str:
    """The text a row reference points at (``benchmarks/severity/README.md`` defines the
    formats: a CSV's 0-based data row, a TSV's 0-based row after the header, a SemEval
    sentence id, a MAMS ``idx:N``)."""
    path = (data or data_dir()) / ref_file
    rows = _ref_rows(path)
    if path.suffix == ".csv":
        row = rows[int(ref)]
        return (row.get("reviewbody") if "asap" in ref_file else row.get("review") or "").lstrip(
            "\ufeff"
        )
    if path.suffix == ".tsv":
        header, body = rows
        col = header.index("text_a") if "text_a" in header else header.index("text")
        return body[int(ref)][col]
    if path.suffix == ".xml":
        if ref.startswith("idx:"):
            return rows[int(ref[4:])].findtext("text") or ""
        return next(s.findtext("text") or "" for s in rows if s.get("id") == ref)
    return rows[int(ref)]
