"""The alert benchmark: feeds built from real labeled sentences, effects of known size injected,
the real model and the shipped rules run as cron would. Prints JSON.

    python benchmarks/alert_benchmark.py [--seeds 20] [--weeks 26] [--out PATH] [--fresh]

Why: the demo generator was written next to the rules and agrees with them; a feed whose texts
nobody here wrote says whether an alert means something. Each seed builds one feed:

- **Texts** are real sentences sampled from ``../shared/data`` with their gold labels: SemEval-2014
  and -2016 restaurant categories and MAMS ACSA (English; food → ``taste``, service and staff →
  ``customer_service``, prices → ``price_value``), the ASAP samples (Chinese restaurant reviews,
  train and dev), the Chinese aspect-term set (camera, car, notebook, phone; price and quality
  terms → ``price_value`` and ``product_quality``) and online_shopping_10_cats (Chinese product
  reviews, sentiment only). The stored benchmark results hold row references, never texts.
- **Brands, segments, time**: our brand and two rivals (``configs/competitors.yaml``), four
  regions × four age groups (16 cells) each with its own weekly volume (5, 10, 20 or 50 items),
  English and Chinese (40%), review, social and complaint channels, 26 weeks; every item has
  an author, and 3% are the same author cross-posting the same text a few hours later (one
  voice, counted once).
- **Effects** (positions and sizes drawn per seed; the rest of the feed is drawn from the same
  pools, so an aspect's complaint rate is its natural rate in real reviews):
  two preference shifts on our brand (one cell; the share of items that are gold complaints
  about one aspect × 1.5 to 4 from a week between 10 and 20); one brand-wide surge of a rival's
  complaints on an aspect (× 2 or × 3); one competitor gap opening (a rival's praise of an aspect
  × 3); one crisis burst (10 to 100 negative social posts about us within 1 to 6 hours); a slow
  trend (one cell's complaints × 1.3 over the 26 weeks) and two seasonal weeks (volume × 1.6
  everywhere) that must not alert; and 8 hand-labeled texts of the severity set's dev split
  (``benchmarks/severity/labels.csv``: 2 real health/safety harms, 6 near misses).
- **Runs**: the shipped ``configs/alerts.yaml`` as cron would run it: every rule each Monday
  from week 6; the crisis and severe-complaint rules hourly from two hours before the burst to
  a day after it, and the severe-complaint rule every two days over the whole feed (the
  series rules see only complete weeks, so hourly runs would change nothing for them).

Scored: each alert is matched to the effect behind it (rule, brand, cell or brand-wide, aspect,
raised after its onset); alerts on the same cell and time under another aspect are **echoes**
(the tagger filing injected complaints elsewhere); any other alert is **false**. Reported:
recall by effect size and cell size within 3 periods (preference shifts) or 2 (surges), the
delay, crisis recall, minutes from the 20th post to the alert and incidents per burst, L1 alerts
that are neither a crisis nor a labeled harm, and false alerts per 26 weeks of a 16-cell brand
and per 100 series-periods the rules tested. A severe-complaint L1 on a background review is
judged by ``benchmarks/severity/alert_pool_labels.csv`` (every pool sentence the harm rules tag,
labeled by reading without the detector): a review that reports no harm is a false L1; one the
file does not hold (after the rules change) is counted unjudged.

The pool's sentences are scored once by the real pipeline and cached under the model cache
(``alert-bench/``); each seed's result is appended to ``--out`` as it finishes, and a rerun
skips the seeds already there (interrupt and resume at will).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import pickle
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
REGIONS = ("North", "South", "East", "West")
AGES = ("18-24", "25-34", "35-49", "50+")
CELL_SIZES = (5, 10, 20, 50)
EFFECT_ASPECTS = ("taste", "customer_service", "price_value")
ZH_SHARE = 0.4
CROSS_POST = 0.03


@dataclass(frozen=True)
class Sentence:
    text: str
    language: str
    aspects: dict  # taxonomy aspect → gold polarity
    sentiment: str | None  # gold sentence polarity (None: mixed)
    ref: str  # dataset file and row, for the results
    severe: int | None = None  # the severity set's label, where it has one


# --- the pool of real sentences ----------------------------------------------------------------

SEMEVAL16_MAP = {
    "FOOD#QUALITY": "taste",
    "FOOD#STYLE_OPTIONS": "taste",
    "DRINKS#QUALITY": "taste",
    "FOOD#PRICES": "price_value",
    "RESTAURANT#PRICES": "price_value",
    "DRINKS#PRICES": "price_value",
    "SERVICE#GENERAL": "customer_service",
}
CATEGORY_MAP = {
    "food": "taste",
    "service": "customer_service",
    "staff": "customer_service",
    "price": "price_value",
}
ASAP_MAP = {
    "dish_taste": "taste",
    "service_waiters_attitude": "customer_service",
    "service_serving_speed": "customer_service",
    "service_wait_time": "customer_service",
    "price_level": "price_value",
    "price_cost_effective": "price_value",
    "dish_portion": "quantity_size",
}
ZH_TERMS = {
    "price_value": ("价格", "性价比", "便宜", "划算", "贵", "价钱", "价位", "实惠", "超值"),
    "product_quality": ("做工", "质量", "效果", "画质", "成像", "音质", "品质", "材质", "性能"),
}


def _sentence_polarity(pols) -> str | None:
    pols = {p for p in pols if p in ("negative", "neutral", "positive")}
    return pols.pop() if len(pols) == 1 else None


def _mapped(cats: dict, mapping: dict) -> dict:
    out: dict[str, set] = {}
    for cat, pol in cats.items():
        if cat in mapping and pol in ("negative", "neutral", "positive"):
            out.setdefault(mapping[cat], set()).add(pol)
    return {a: next(iter(p)) for a, p in out.items() if len(p) == 1}


@dataclass(frozen=True)
class AbsaFile:
    """An English ABSA XML file of the pool: the element that holds a category and its polarity,
    the categories' map to the taxonomy, the gold polarity of a sentence without any, and
    whether a sentence is referenced by its position (the file's sentences have no ids)."""

    path: str  # under the data folder
    opinion: str
    mapping: dict
    without_opinions: str | None = None
    ref_by_index: bool = False

    def sentences(self, root: Path):
        import xml.etree.ElementTree as ET

        for i, s in enumerate(ET.parse(root / self.path).getroot().iter("sentence")):
            cats = {c.get("category"): c.get("polarity") for c in s.iter(self.opinion)}
            yield Sentence(
                s.findtext("text") or "",
                "en",
                _mapped(cats, self.mapping),
                _sentence_polarity(cats.values()) if cats else self.without_opinions,
                f"{self.path}#idx:{i}" if self.ref_by_index else f"{self.path}#{s.get('id')}",
            )


ABSA_FILES = (
    AbsaFile("semeval2014_absa/Restaurants_Train_v2.xml", "aspectCategory", CATEGORY_MAP),
    AbsaFile(
        "semeval2016_absa/ABSA16_Restaurants_Train_SB1_v2.xml",
        "Opinion",
        SEMEVAL16_MAP,
        without_opinions="neutral",
    ),
    *(
        AbsaFile(f"mams/mams_acsa_{split}.xml", "aspectCategory", CATEGORY_MAP, ref_by_index=True)
        for split in ("train", "val")
    ),
)


def load_pool(max_zh_shopping: int = 6000, seed: int = 7) -> list[Sentence]:
    """Every sentence the feeds draw from, with gold labels mapped to the shipped taxonomy."""
    from training import data as D

    root = D.data_dir()
    pool: list[Sentence] = []
    seen: set[str] = set()

    def add(s: Sentence) -> None:
        key = " ".join(s.text.split()).casefold()
        if len(key) >= 8 and key not in seen:
            seen.add(key)
            pool.append(s)

    for absa in ABSA_FILES:
        for s in absa.sentences(root):
            add(s)
    pol = {"1": "positive", "0": "neutral", "-1": "negative"}
    for split in ("train", "dev"):
        with open(root / "asap_samples" / f"{split}_sample.csv", encoding="utf-8-sig") as fh:
            for i, r in enumerate(csv.DictReader(fh)):
                cats = {
                    k: pol[v.strip()]
                    for k, v in r.items()
                    if k in ASAP_MAP and (v or "").strip() in pol
                }
                allc = [
                    pol[v.strip()]
                    for k, v in r.items()
                    if k not in ("index", "reviewbody", "star") and (v or "").strip() in pol
                ]
                add(
                    Sentence(
                        r["reviewbody"],
                        "zh",
                        _mapped(cats, ASAP_MAP),
                        _sentence_polarity(allc),
                        f"asap_samples/{split}_sample.csv#{i}",
                    )
                )
    by_text: dict[str, dict] = {}
    with open(root / "chinese_aspect_polarity" / "train.tsv", encoding="utf-8") as fh:
        for i, r in enumerate(csv.DictReader(fh, delimiter="\t")):
            if r["domain"] not in ("camera", "car", "notebook", "phone"):
                continue
            entry = by_text.setdefault(
                r["text"],
                {"ref": f"chinese_aspect_polarity/train.tsv#{i}", "pols": set(), "aspects": {}},
            )
            p = r["polarity"].lower()
            entry["pols"].add(p)
            for aspect, terms in ZH_TERMS.items():
                if any(t in r["aspect"] for t in terms):
                    entry["aspects"].setdefault(aspect, set()).add(p)
    for text, e in by_text.items():
        add(
            Sentence(
                text,
                "zh",
                {a: next(iter(p)) for a, p in e["aspects"].items() if len(p) == 1},
                _sentence_polarity(e["pols"]),
                e["ref"],
            )
        )
    shop = []
    with open(
        root / "online_shopping_10_cats" / "online_shopping_10_cats.csv", encoding="utf-8-sig"
    ) as fh:
        for i, r in enumerate(csv.DictReader(fh)):
            text = (r.get("review") or "").lstrip("\ufeff").strip()
            if 8 <= len(text) <= 200:
                shop.append(
                    Sentence(
                        text,
                        "zh",
                        {},
                        "positive" if r["label"] == "1" else "negative",
                        f"online_shopping_10_cats/online_shopping_10_cats.csv#{i}",
                    )
                )
    for s in random.Random(seed).sample(shop, min(max_zh_shopping, len(shop))):
        add(s)
    return pool


def load_severity(split: str = "dev") -> list[Sentence]:
    """The hand-labeled severity texts of ``split`` (the test split is held out)."""
    from training.data import resolve_ref

    if split != "dev":
        raise ValueError("only the dev split of the severity set is read here")
    labels = Path(__file__).resolve().parent / "severity" / "labels.csv"
    out = []
    with open(labels, encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["split"] != split:
                continue
            text = resolve_ref(r["ref_file"], r["ref"]).lstrip("\ufeff")
            if text:
                out.append(
                    Sentence(
                        text,
                        r["language"],
                        {},
                        "negative",
                        f"{r['ref_file']}#{r['ref']}",
                        severe=int(r["label"]),
                    )
                )
    return out


def load_background_harm_labels() -> dict[str, int]:
    """Every pool sentence the shipped harm rules tag, labeled by reading (1: reports a harm;
    ``severity/alert_pool_labels.csv``, the severity set's guideline, labeled without the
    detector): what judges a severe-complaint L1 on a background review. ``{ref: label}``."""
    path = Path(__file__).resolve().parent / "severity" / "alert_pool_labels.csv"
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as fh:
        return {f"{r['ref_file']}#{r['ref']}": int(r["label"]) for r in csv.DictReader(fh)}


# --- feeds ----------------------------------------------------------------------------------


@dataclass
class Effect:
    kind: str  # preference_shift | negative_surge | competitor_gap | crisis | trend
    brand: str
    aspect: str | None = None
    cell: tuple[str, str] | None = None
    cell_size: int | None = None
    multiplier: float | None = None
    onset_week: int | None = None
    start: datetime | None = None  # crisis: the first post
    posts: int | None = None
    hours: float | None = None
    rival: str | None = None
    post_times: list = field(default_factory=list)

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if v is not None and k != "post_times"}
        if self.start is not None:
            d["start"] = self.start.isoformat()
        return d


class Pools:
    """The pool split by what an effect draws: per language, everything (the background), and
    per aspect its gold complaints and gold praise."""

    def __init__(self, pool: list[Sentence]):
        self.all = {lang: [s for s in pool if s.language == lang] for lang in ("en", "zh")}
        self.neg = {
            lang: [s for s in self.all[lang] if s.sentiment == "negative"] for lang in ("en", "zh")
        }
        self.by = {
            (lang, a, p): [s for s in self.all[lang] if s.aspects.get(a) == p]
            for lang in ("en", "zh")
            for a in EFFECT_ASPECTS + ("product_quality", "quantity_size")
            for p in ("negative", "positive")
        }

    def share(self, lang: str, aspect: str, polarity: str) -> float:
        return len(self.by[(lang, aspect, polarity)]) / max(len(self.all[lang]), 1)

    def draw(self, rng: random.Random, lang: str, boost: list[tuple[str, str, float]]) -> Sentence:
        """A background sentence, except that for each ``(aspect, polarity, m)`` the share of
        gold ``polarity`` sentences about ``aspect`` is ``m`` times its natural share."""
        for aspect, polarity, m in boost:
            cands = self.by[(lang, aspect, polarity)]
            p0 = self.share(lang, aspect, polarity)
            if not cands or m <= 1 or p0 <= 0:
                continue
            q = min((m - 1) * p0 / (1 - p0), 0.95)
            if rng.random() < q:
                return rng.choice(cands)
        return rng.choice(self.all[lang])


def build_feed(
    pools: Pools,
    severity: list[Sentence],
    *,
    seed: int,
    weeks: int = 26,
    our_brand: str = "spicewell",
    rivals: tuple[str, str] = ("noodleking", "goldenbowl"),
    cell_sizes: tuple[int, ...] = CELL_SIZES,
) -> tuple[list[dict], list[Effect], dict]:
    """One seed's items (``radar ingest`` records), its effects and the refs of its texts."""
    rng = random.Random(f"alert-benchmark:{seed}")
    brands = (our_brand, *rivals)
    cells = [(r, a) for r in REGIONS for a in AGES]
    sizes = {(b, c): rng.choice(cell_sizes) for b in brands for c in cells}
    effects: list[Effect] = []
    # two preference shifts on our brand. Effect sizes, cell sizes and aspects cycle with the
    # seed (a balanced design: every multiplier meets every cell size over 20 seeds); the cell,
    # the onset and everything else are drawn
    multipliers = (1.5, 2.0, 2.5, 3.0, 4.0)
    used: set = set()
    for k in range(2):
        size = cell_sizes[(seed // 5 + 2 * k) % len(cell_sizes)]
        cell = rng.choice([c for c in cells if c not in used])
        used.add(cell)
        sizes[(our_brand, cell)] = size
        effects.append(
            Effect(
                "preference_shift",
                our_brand,
                EFFECT_ASPECTS[(seed + k) % len(EFFECT_ASPECTS)],
                cell,
                size,
                multipliers[(seed + 2 * k) % len(multipliers)],
                rng.randint(10, min(20, weeks - 4)),
            )
        )
    surge_rival, gap_rival = rng.sample(
        rivals, 2
    )  # never the same rival: a surge would hide the gap
    effects.append(
        Effect(
            "negative_surge",
            surge_rival,
            EFFECT_ASPECTS[(seed + 2) % len(EFFECT_ASPECTS)],
            multiplier=(2.0, 3.0)[seed % 2],
            onset_week=rng.randint(10, min(20, weeks - 4)),
        )
    )
    effects.append(
        Effect(
            "competitor_gap",
            gap_rival,
            rng.choice(EFFECT_ASPECTS),
            multiplier=3.0,
            onset_week=rng.randint(10, min(20, weeks - 4)),
            rival=gap_rival,
        )
    )
    trend_cell = rng.choice([c for c in cells if c not in used])
    effects.append(
        Effect(
            "trend",
            our_brand,
            rng.choice(EFFECT_ASPECTS),
            trend_cell,
            sizes[(our_brand, trend_cell)],
            1.3,
            0,
        )
    )
    posts, hours = (10, 20, 50, 100)[seed % 4], (1.0, 3.0, 6.0)[(seed // 4) % 3]
    crisis_start = START + timedelta(
        weeks=rng.randint(14, min(22, weeks - 2)),
        hours=rng.randint(0, 6 * 24 - 1),
        minutes=rng.randint(0, 59),
    )
    crisis = Effect("crisis", our_brand, start=crisis_start, posts=posts, hours=hours)
    effects.append(crisis)
    seasonal = set(rng.sample(range(2, weeks), 2))

    items: list[dict] = []
    n = 0

    def item(s: Sentence, brand: str, cell, when: datetime, channel: str, author: str) -> dict:
        nonlocal n
        n += 1
        return {
            "source": {"review": "shop", "social": "weibo", "complaint": "hotline"}[channel],
            "channel": channel,
            "external_id": f"s{seed}-{n}",
            "text": s.text,
            "language": s.language,
            "brand": brand,
            "region": cell[0],
            "attributes": {"age_group": cell[1]},
            "author": author,
            "created_at": when.isoformat(),
            "_ref": s.ref,
        }

    for week in range(weeks):
        for brand in brands:
            for cell in cells:
                size = sizes[(brand, cell)] * (1.6 if week in seasonal else 1.0)
                count = int(size) + (rng.random() < size - int(size))
                for _ in range(count):
                    lang = "zh" if rng.random() < ZH_SHARE else "en"
                    boost = []
                    for e in effects:
                        if e.brand != brand or e.kind == "crisis":
                            continue
                        if e.kind == "preference_shift" and e.cell == cell and week >= e.onset_week:
                            boost.append((e.aspect, "negative", e.multiplier))
                        elif e.kind == "negative_surge" and week >= e.onset_week:
                            boost.append((e.aspect, "negative", e.multiplier))
                        elif e.kind == "competitor_gap" and week >= e.onset_week:
                            boost.append((e.aspect, "positive", e.multiplier))
                        elif e.kind == "trend" and e.cell == cell:
                            boost.append(
                                (
                                    e.aspect,
                                    "negative",
                                    1 + (e.multiplier - 1) * week / max(weeks - 1, 1),
                                )
                            )
                    s = pools.draw(rng, lang, boost)
                    when = START + timedelta(weeks=week, seconds=rng.randrange(7 * 86400))
                    channel = rng.choices(("review", "social", "complaint"), (0.7, 0.2, 0.1))[0]
                    author = f"a{seed}-{n}"
                    items.append(item(s, brand, cell, when, channel, author))
                    if rng.random() < CROSS_POST:  # the same customer posting it again elsewhere
                        other = rng.choice(
                            [c for c in ("review", "social", "complaint") if c != channel]
                        )
                        items.append(
                            item(
                                s,
                                brand,
                                cell,
                                when + timedelta(hours=rng.uniform(0.5, 12)),
                                other,
                                author,
                            )
                        )
    # the crisis burst: negative social posts about us
    for i in range(posts):
        lang = "zh" if rng.random() < ZH_SHARE else "en"
        when = crisis_start + timedelta(hours=hours * (i / max(posts - 1, 1)) if posts > 1 else 0)
        crisis.post_times.append(when)
        items.append(
            item(
                rng.choice(pools.neg[lang]),
                our_brand,
                rng.choice(cells),
                when,
                "social",
                f"c{seed}-{i}",
            )
        )
    # hand-labeled severity texts: 2 real harms and 6 near misses, as complaints about us
    harms = [s for s in severity if s.severe == 1]
    misses = [s for s in severity if s.severe == 0]
    for s in rng.sample(harms, min(2, len(harms))) + rng.sample(misses, min(6, len(misses))):
        when = START + timedelta(weeks=rng.randint(6, weeks - 1), seconds=rng.randrange(7 * 86400))
        items.append(item(s, our_brand, rng.choice(cells), when, "complaint", f"h{seed}-{s.ref}"))
    items.sort(key=lambda r: r["created_at"])
    refs = {r["external_id"]: r.pop("_ref") for r in items}
    return (
        items,
        effects,
        {
            "refs": refs,
            "sizes": {f"{b}|{c[0]}|{c[1]}": v for (b, c), v in sizes.items()},
            "seasonal_weeks": sorted(seasonal),
        },
    )


# --- scoring, once per sentence --------------------------------------------------------------------


class CachedScorer:
    """The real pipeline's scores, computed once per distinct text and kept on disk."""

    def __init__(self, scorer, path: Path | None):
        self.scorer, self.path = scorer, path
        self.version = scorer.version
        self.cache: dict[str, object] = {}
        if path is not None and path.exists():
            with open(path, "rb") as fh:
                saved = pickle.load(fh)
            if saved.get("version") == self.version:
                self.cache = saved["scores"]

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def warm(
        self, texts: list[str], languages: list[str | None], batch: int = 256, progress=None
    ) -> None:
        todo = [
            (t, lang)
            for t, lang in dict(zip(texts, languages)).items()
            if self.key(t) not in self.cache
        ]
        for lo in range(0, len(todo), batch):
            part = todo[lo : lo + batch]
            for (t, _), scored in zip(
                part, self.scorer.score([t for t, _ in part], [lang for _, lang in part])
            ):
                self.cache[self.key(t)] = scored
            if progress:
                progress(len(part))
            if self.path is not None and (lo // batch) % 20 == 19:
                self.save()
        self.save()

    def save(self) -> None:
        if self.path is None:
            return
        # one temporary file per process: two benchmarks sharing the cache never write one file
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            pickle.dump({"version": self.version, "scores": self.cache}, fh)
        tmp.replace(self.path)

    def score(self, texts, languages=None):
        missing = [i for i, t in enumerate(texts) if self.key(t) not in self.cache]
        if missing:
            langs = languages or [None] * len(texts)
            for i, scored in zip(
                missing, self.scorer.score([texts[i] for i in missing], [langs[i] for i in missing])
            ):
                self.cache[self.key(texts[i])] = scored
        return [self.cache[self.key(t)] for t in texts]


def bench_cache(settings) -> Path:
    """The benchmarks' folder under the model cache (``alert-bench/``): pool scores, results."""
    cache = Path(settings.model_cache_dir).expanduser() / "alert-bench"
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def pool_scorer(settings, texts: list[str], languages: list[str]) -> CachedScorer:
    """The default pipeline's scores, kept per model version under ``bench_cache``, with
    ``texts`` scored now where they are not yet (a progress bar on stderr)."""
    from tqdm import tqdm

    from service.runtime import Runtime

    base = Runtime(settings).registry.pipeline("default")
    scorer = CachedScorer(
        base,
        bench_cache(settings)
        / f"scores-{hashlib.sha1(base.version.encode()).hexdigest()[:10]}.pkl",
    )
    with tqdm(
        total=sum(1 for t in dict.fromkeys(texts) if scorer.key(t) not in scorer.cache),
        desc="score the pool (once)",
        unit="text",
        file=sys.stderr,
    ) as bar:
        scorer.warm(texts, languages, progress=bar.update)
    return scorer


class GoldTags:
    """The same scores with the aspects replaced by the sentence's gold labels (severity tags
    kept as the model made them): what the rules would do with a perfect tagger. Run next to
    the model's tags, it tells the engine's misses from the tagger's."""

    def __init__(self, scored: CachedScorer, pool: list[Sentence], severity_aspects: set[str]):
        self.scored, self.severity_aspects = scored, severity_aspects
        self.gold = {s.text: s for s in pool}
        self.version = scored.version + ":gold-tags"

    def score(self, texts, languages=None):
        from dataclasses import replace

        from service.domain import AspectScore

        out = []
        for t, st in zip(texts, self.scored.score(texts, languages)):
            s = self.gold.get(t)
            kept = [a for a in st.score.aspects if a.aspect in self.severity_aspects]
            gold = [
                AspectScore(
                    aspect=a,
                    confidence=0.95,
                    sentiment=p,
                    sentiment_score={"negative": -0.8, "neutral": 0.0, "positive": 0.8}[p],
                    evidence=t,
                )
                for a, p in (s.aspects.items() if s is not None else [])
            ]
            out.append(
                replace(
                    st,
                    score=st.score.model_copy(
                        update={"aspects": kept + gold, "model_version": self.version}
                    ),
                )
            )
        return out


# --- one seed --------------------------------------------------------------------------------


def run_seed(
    seed: int,
    pools: Pools,
    severity: list[Sentence],
    scorer,
    *,
    weeks: int = 26,
    workdir: Path,
    alert_config=None,
    cell_sizes: tuple[int, ...] = CELL_SIZES,
) -> dict:
    from service.alerts.engine import AlertEngine
    from service.alerts.rules import AlertConfig
    from service.config import Settings
    from service.runtime import Runtime
    from service.store import alerts as alerts_repo

    items, effects, meta = build_feed(
        pools, severity, seed=seed, weeks=weeks, cell_sizes=cell_sizes
    )
    db = workdir / f"seed{seed}.db"
    if db.exists():
        db.unlink()
    settings = Settings(database_url=f"sqlite:///{db}")
    rt = Runtime(settings, scorer=scorer)
    t0 = time.perf_counter()
    report = rt.ingest_service().ingest(list(enumerate(items, start=1)), keep_results=True)
    ingest_s = time.perf_counter() - t0
    by_ext = {r.external_id: r.id for r in report.results if r.id is not None}
    ref_of = {by_ext[e]: ref for e, ref in meta["refs"].items() if e in by_ext}
    config = alert_config or AlertConfig.from_yaml(settings.alerts_path)
    aspects = [a.id for a in settings.taxonomy.aspects]
    ours = settings.competitors.our_brand

    def engine(types: tuple[str, ...] | None = None) -> AlertEngine:
        cfg = (
            config
            if types is None
            else AlertConfig(
                severities=config.severities,
                cooldown_hours=config.cooldown_hours,
                rules=[r for r in config.rules if r.type in types],
            )
        )
        return AlertEngine(cfg, aspects=aspects, our_brand=ours, competitors=settings.competitors)

    crisis = next(e for e in effects if e.kind == "crisis")
    runs: list[tuple[datetime, AlertEngine]] = []
    full, fast, severe_only = (
        engine(),
        engine(("crisis_spike", "severe_complaint")),
        engine(("severe_complaint",)),
    )
    runs += [(START + timedelta(weeks=w), full) for w in range(6, weeks + 1)]
    h0 = crisis.start.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    runs += [(h0 + timedelta(hours=h), fast) for h in range(int(crisis.hours) + 27)]
    runs += [(START + timedelta(days=d), severe_only) for d in range(6 * 7 + 1, weeks * 7, 2)]
    runs.sort(key=lambda r: r[0])
    t1 = time.perf_counter()
    skipped: set[str] = set()
    with rt.sessions() as s:
        for at, eng in runs:
            rep = eng.run(s, at, actor="bench")
            skipped |= {x["rule"] + ": " + x["reason"] for x in rep.skipped}
        alerts = [alerts_repo.alert_dict(a) for a in alerts_repo.list_alerts(s, oldest_first=True)]
    alerts_s = time.perf_counter() - t1
    rt.close()
    cells = len(REGIONS) * len(AGES)
    oracle = {
        str(i): round(oracle_recall(pools, e, n_series=cells * len(aspects), runs=weeks - 5), 4)
        for i, e in enumerate(effects)
        if e.kind == "preference_shift"
    }
    out = {
        "seed": seed,
        "items": len(items),
        "stored": report.stored,
        "linked": report.linked,
        "oracle_recall_within_3": oracle,
        "ingest_s": round(ingest_s, 1),
        "alert_runs": len(runs),
        "alerts_s": round(alerts_s, 1),
        "effects": [e.to_dict() for e in effects],
        "skipped": sorted(skipped),
        **score_alerts(
            alerts, effects, ref_of=ref_of, severity=severity, weeks=weeks, aspects=aspects
        ),
    }
    db.unlink(missing_ok=True)
    return out


def oracle_recall(pools: Pools, e: Effect, *, n_series: int, runs: int, periods: int = 3) -> float:
    """The best recall any rule could have on this cell shift within ``periods`` periods at the
    false-alert budget of one alert per feed: an oracle that knows the onset and the cell's true
    base rate (the pool's real share of gold complaints about the aspect, 60% en / 40% zh) and
    tests the complaints of the ``periods`` weeks after the onset alone, at the per-test level
    that leaves one false alert over ``n_series`` series × ``runs`` weekly runs. What no
    detector can beat: a gap between it and a rule's recall is the rule's; below it, the data's."""
    from scipy import stats

    p0 = (1 - ZH_SHARE) * pools.share("en", e.aspect, "negative") + ZH_SHARE * pools.share(
        "zh", e.aspect, "negative"
    )
    trials = periods * e.cell_size
    level = 1.0 / max(n_series * runs, 1)
    need = int(stats.binom.isf(level, trials, p0)) + 1
    return float(stats.binom.sf(need - 1, trials, min(e.multiplier * p0, 1.0)))


def _week_of(iso: str) -> int:
    return int((datetime.fromisoformat(iso) - START).total_seconds() // (7 * 86400))


def score_alerts(
    alerts: list[dict],
    effects: list[Effect],
    *,
    ref_of: dict,
    severity: list[Sentence],
    weeks: int,
    aspects: list[str],
) -> dict:
    """Each alert matched to the effect behind it, an echo of one, or false."""
    harm_refs = {s.ref for s in severity if s.severe == 1}
    judged_refs = {s.ref for s in severity}
    hits: dict[int, dict] = {}
    verdicts = []
    for a in alerts:
        detected_week = _week_of(a["first_detected_at"])
        a_aspects = set(a["details"].get("aspects") or []) | (
            {a["aspect"]} if a["aspect"] else set()
        )
        verdict, effect = "false", None
        for i, e in enumerate(effects):
            if e.kind == "crisis":
                if a["type"] == "crisis_spike" and a["brand"] == e.brand:
                    first, last = e.post_times[0], e.post_times[-1] + timedelta(hours=12)
                    if (
                        first - timedelta(hours=1)
                        <= datetime.fromisoformat(a["first_detected_at"])
                        <= last
                    ):
                        verdict, effect = "hit", i
                continue
            if e.kind == "trend":
                continue  # a slow trend must not alert: an alert on it stays false
            if detected_week <= e.onset_week:
                continue
            if a["type"] == "competitor_gap":  # our gap to a rival: about the rival's effects
                rival = a["segment"].get("competitor")
                if rival not in (e.brand, "(competitors)") or e.aspect not in a_aspects:
                    continue
                if e.kind == "competitor_gap":
                    verdict, effect = "hit", i
                    break
                if e.kind == "negative_surge":  # a rival's surge moves the gap too: a true change
                    verdict, effect = "echo", i
                continue
            if a["brand"] != e.brand:
                continue
            if e.kind == "preference_shift":
                same_cell = a["segment"] == {"region": e.cell[0], "age_group": e.cell[1]}
                if a["type"] == "preference_shift" and same_cell:
                    verdict, effect = ("hit", i) if e.aspect in a_aspects else ("echo", i)
                elif a["type"] == "negative_surge" and e.aspect in a_aspects:
                    verdict, effect = "echo", i
            elif e.kind == "negative_surge":
                if a["type"] == "negative_surge":
                    verdict, effect = ("hit", i) if e.aspect in a_aspects else ("echo", i)
                elif a["type"] == "preference_shift" and e.aspect in a_aspects:
                    verdict, effect = "echo", i
            if verdict == "hit":
                break
        if a["type"] == "severe_complaint":
            ref = ref_of.get(a["segment"].get("item"))
            # judged only on the hand-labeled texts; a background review that reports a harm
            # (rotten fruit, a stomach upset) may well be one: unjudged, listed apart
            verdict = (
                "true_severe"
                if ref in harm_refs
                else "false"
                if ref in judged_refs
                else "unjudged_severe"
            )
        elif a["type"] == "crisis_spike" and verdict != "hit":
            verdict = "false"
        if verdict == "hit" and effect not in hits:
            hits[effect] = a
        verdicts.append(
            {
                "id": a["id"],
                "type": a["type"],
                "severity": a["severity"],
                "brand": a["brand"],
                "aspect": a["aspect"],
                "segment": a["segment"],
                "status": a["status"],
                "week": detected_week,
                "verdict": verdict,
                "effect": effect,
                "ref": ref_of.get(a["segment"].get("item"))
                if a["type"] == "severe_complaint"
                else None,
            }
        )
    per_effect = []
    for i, e in enumerate(effects):
        a = hits.get(i)
        row = {"effect": i, "kind": e.kind, "detected": a is not None}
        if a is not None and e.kind != "crisis":
            row["delay_periods"] = _week_of(a["first_detected_at"]) - e.onset_week
        if e.kind == "crisis":
            incidents = [v for v in verdicts if v["type"] == "crisis_spike" and v["effect"] == i]
            row["incidents"] = len(incidents)
            if a is not None and len(e.post_times) >= 20:
                row["minutes_after_20th_post"] = round(
                    (
                        datetime.fromisoformat(a["first_detected_at"]) - e.post_times[19]
                    ).total_seconds()
                    / 60,
                    1,
                )
            if a is not None:
                row["minutes_after_first_post"] = round(
                    (
                        datetime.fromisoformat(a["first_detected_at"]) - e.post_times[0]
                    ).total_seconds()
                    / 60,
                    1,
                )
                row["onset_is_first_post"] = a["onset"] == e.post_times[0].isoformat()
                # the onset is the first post the model scored negative: a few minutes later
                # when the burst's first posts read neutral to it, never before the burst
                row["onset_minutes_after_first_post"] = round(
                    (datetime.fromisoformat(a["onset"]) - e.post_times[0]).total_seconds() / 60, 1
                )
        per_effect.append(row)
    l1_wrong = [v for v in verdicts if v["severity"] == "L1" and v["verdict"] == "false"]
    return {
        "alerts": verdicts,
        "per_effect": per_effect,
        "counts": dict(Counter(v["verdict"] for v in verdicts)),
        "false_by_rule": dict(Counter(v["type"] for v in verdicts if v["verdict"] == "false")),
        "l1_not_crisis_or_harm": len(l1_wrong),
    }


def tagger_recall(pools: Pools, scorer: CachedScorer) -> dict:
    """Of the pool's gold complaints about each effect aspect, the share the model tags as a
    negative mention of that aspect (what a series rule can see of an injected effect), and the
    share of all the pool's sentences it tags so (the noise the effect must rise above)."""
    out = {}
    for lang in ("en", "zh"):
        everything = pools.all[lang]
        for aspect in EFFECT_ASPECTS:
            gold = pools.by[(lang, aspect, "negative")]

            def tagged(s: Sentence) -> bool:
                st = scorer.cache.get(scorer.key(s.text))
                return st is not None and any(
                    a.aspect == aspect and a.sentiment == "negative" for a in st.score.aspects
                )

            out[f"{lang}/{aspect}"] = {
                "gold_complaints": len(gold),
                "tagged_negative_of_gold": round(sum(map(tagged, gold)) / len(gold), 3)
                if gold
                else None,
                "tagged_negative_of_all": round(sum(map(tagged, everything)) / len(everything), 3)
                if everything
                else None,
                "gold_share_of_all": round(len(gold) / len(everything), 3) if everything else None,
            }
    return out


# --- the summary -------------------------------------------------------------------------------


def summarise(
    results: list[dict], weeks: int = 26, background: dict[str, int] | None = None
) -> dict:
    """The targets and the breakdowns over ``results`` (one per seed). A severe-complaint L1 on
    a background review is judged by ``background`` (``{ref: label}``; default the labeled
    pool texts) where it holds the review, and counted unjudged where it does not."""
    background = load_background_harm_labels() if background is None else background

    def rate(rows):
        return {
            "n": len(rows),
            "recall": round(sum(r["ok"] for r in rows) / len(rows), 3) if rows else None,
        }

    pref, surge, gap, crisis = defaultdict(list), defaultdict(list), [], defaultdict(list)
    oracle = defaultdict(list)
    false_alerts = echoes = l1_wrong = trend_alerts = seeds = 0
    background_l1: Counter = Counter()  # L1 severe complaints on background reviews, by verdict
    delays = defaultdict(list)
    crisis_minutes, incidents = [], []
    for res in results:
        seeds += 1
        effects = res["effects"]
        for pe in res["per_effect"]:
            e = effects[pe["effect"]]
            if e["kind"] == "preference_shift":
                ok = pe["detected"] and pe.get("delay_periods", 99) <= 3
                pref[(e["multiplier"], e["cell_size"])].append({"ok": ok})
                if str(pe["effect"]) in res.get("oracle_recall_within_3", {}):
                    oracle[(e["multiplier"], e["cell_size"])].append(
                        res["oracle_recall_within_3"][str(pe["effect"])]
                    )
                if pe["detected"]:
                    delays["preference_shift"].append(pe["delay_periods"])
            elif e["kind"] == "negative_surge":
                surge[e["multiplier"]].append(
                    {"ok": pe["detected"] and pe.get("delay_periods", 99) <= 2}
                )
                if pe["detected"]:
                    delays["negative_surge"].append(pe["delay_periods"])
            elif e["kind"] == "competitor_gap":
                gap.append({"ok": pe["detected"] and pe.get("delay_periods", 99) <= 3})
            elif e["kind"] == "crisis":
                ok = pe["detected"] and (pe.get("minutes_after_20th_post", 0) <= 60)
                crisis[(e["posts"], e["hours"])].append({"ok": ok})
                if e["posts"] >= 20 and pe["detected"]:
                    crisis_minutes.append(pe.get("minutes_after_20th_post"))
                    incidents.append(pe["incidents"])
        false_alerts += res["counts"].get("false", 0)
        echoes += res["counts"].get("echo", 0)
        l1_wrong += res["l1_not_crisis_or_harm"]
        for a in res["alerts"]:
            if a["verdict"] == "unjudged_severe":
                label = background.get(a.get("ref"))
                background_l1["unjudged" if label is None else "true" if label else "false"] += 1
        trend_alerts += sum(
            1 for a in res["alerts"] if a["verdict"] == "false" and a["type"] == "preference_shift"
        )
    big = [r for (m, size), rows in pref.items() if m >= 2.5 and size >= 10 for r in rows]
    big_oracle = [v for (m, size), vs in oracle.items() if m >= 2.5 and size >= 10 for v in vs]
    big_surges = [r for m, rows in surge.items() if m >= 2 for r in rows]
    big_crises = [
        r for (posts, hours), rows in crisis.items() if posts >= 20 and hours <= 6 for r in rows
    ]
    brand_periods = seeds * 3  # three brands, 26 weeks each
    # a background review that reports no harm is a false L1 and a false alert like any other
    l1_wrong += background_l1["false"]
    false_alerts += background_l1["false"]
    return {
        "seeds": seeds,
        "targets": {
            "recall_shifts_x2.5_cells_ge10_within_3": {
                **rate(big),
                "oracle_bound": round(sum(big_oracle) / len(big_oracle), 3) if big_oracle else None,
            },
            "recall_surges_x2_within_2": rate(big_surges),
            "crisis_ge20_posts_le6h": {
                **rate(big_crises),
                "max_minutes_after_20th_post": max(
                    (m for m in crisis_minutes if m is not None), default=None
                ),
                "incidents_per_burst": dict(Counter(incidents)),
            },
            "false_alerts_per_26_weeks_of_a_16_cell_brand": round(
                false_alerts / max(brand_periods, 1) * 26 / weeks, 3
            ),
            "l1_not_crisis_or_harm": l1_wrong,
        },
        # the same without the severe-complaint rule (whose false L1s are the harm detector's
        # precision, issue 17): what the series and crisis rules alone raise falsely
        "false_alerts_per_26_weeks_of_a_16_cell_brand_series_and_crisis_rules": round(
            (
                false_alerts
                - sum(r["false_by_rule"].get("severe_complaint", 0) for r in results)
                - background_l1["false"]
            )
            / max(brand_periods, 1)
            * 26
            / weeks,
            3,
        ),
        "preference_shift_recall_by_multiplier_and_cell_size": {
            f"x{m} / {size} a week": {
                **rate(rows),
                "oracle_bound": round(sum(oracle[(m, size)]) / len(oracle[(m, size)]), 3)
                if oracle.get((m, size))
                else None,
            }
            for (m, size), rows in sorted(pref.items())
        },
        "surge_recall_by_multiplier": {f"x{m}": rate(rows) for m, rows in sorted(surge.items())},
        "competitor_gap_recall_x3_within_3": rate(gap),
        "crisis_recall_by_posts_and_hours": {
            f"{p} posts / {h:g} h": rate(rows) for (p, h), rows in sorted(crisis.items())
        },
        "delay_periods": {k: dict(Counter(v)) for k, v in delays.items()},
        "false_alerts": false_alerts,
        "echo_alerts": echoes,
        "severe_l1_on_background_reviews": {
            "true_harm": background_l1["true"],
            "no_harm": background_l1["false"],
            "unjudged": background_l1["unjudged"],
        },
        "false_by_rule": dict(sum((Counter(r["false_by_rule"]) for r in results), Counter())),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--weeks", type=int, default=26)
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="Per-seed results (JSON lines); default under the model cache.",
    )
    ap.add_argument("--fresh", action="store_true", help="Forget the seeds already in --out.")
    ap.add_argument(
        "--tags",
        choices=("model", "gold", "both"),
        default="both",
        help="Aspect tags from the model, from the gold labels (a perfect tagger), or both runs.",
    )
    args = ap.parse_args()

    from tqdm import tqdm

    from service.config import Settings

    settings = Settings()
    out = args.out or bench_cache(settings) / "results.jsonl"
    done: dict[tuple[str, int], dict] = {}
    if out.exists() and not args.fresh:
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done[(r.get("tags", "model"), r["seed"])] = r
    elif args.fresh and out.exists():
        out.unlink()
    pool = load_pool()
    severity = load_severity("dev")
    pools = Pools(pool)
    scorer = pool_scorer(
        settings,
        [s.text for s in pool] + [s.text for s in severity],
        [s.language for s in pool] + [s.language for s in severity],
    )
    severity_aspects = {a.id for a in settings.taxonomy.aspects if a.kind == "severity"}
    scorers = {"model": scorer, "gold": GoldTags(scorer, pool, severity_aspects)}
    modes = ["model", "gold"] if args.tags == "both" else [args.tags]
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    with tempfile.TemporaryDirectory() as tmp:
        todo = [(m, s) for m in modes for s in seeds if (m, s) not in done]
        for mode, seed in tqdm(todo, desc="seeds", unit="seed", file=sys.stderr):
            res = {
                "tags": mode,
                **run_seed(
                    seed, pools, severity, scorers[mode], weeks=args.weeks, workdir=Path(tmp)
                ),
            }
            done[(mode, seed)] = res
            with open(out, "a") as fh:
                fh.write(json.dumps(res, default=str) + "\n")
    print(
        json.dumps(
            {
                "pool": {
                    "sentences": len(pool),
                    "en": len(pools.all["en"]),
                    "zh": len(pools.all["zh"]),
                    "severity_dev_texts": len(severity),
                },
                "model_version": scorer.version,
                "results_file": str(out),
                "tagger_on_the_pool": tagger_recall(pools, scorer),
                "summary": {
                    m: summarise([done[(m, s)] for s in seeds if (m, s) in done], args.weeks)
                    for m in modes
                },
            },
            indent=2,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
