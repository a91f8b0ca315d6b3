"""Seeded generator of realistic demo feedback with injected, documented effects.

Three brands (ours and two competitors), five regions, three channels, four age groups,
English and Chinese, over ``weeks`` weeks. Each item is built from one to four topic
fragments (an aspect with a polarity) with openers, connectors, closers, emoji, typos,
contact details (to be redacted) and occasional cross-posts (near duplicates).

Injected effects, recorded in the ground truth:
- ``spicy_shift``: from week ``shift_week`` our brand's 18-24 buyers in the East complain
  that the taste became too spicy (a preference shift in one region and age group);
- ``spicy_rollback``: from week ``rollback_week`` (a week after the shift alert is raised) the
  recipe is rolled back in that segment and the extra complaints stop: the action the demo
  records, whose effect Radar measures against the segments it did not touch (the ground
  truth keeps the injected size, ``rollback_effect``);
- ``packaging_surge``: from week ``surge_week`` one competitor's packaging arrives damaged;
- ``delivery_improvement``: the share of negative delivery mentions falls steadily over
  the whole period for every brand (a slow trend, not an alarm).
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from service.demo.phrases import AGREE, CLOSERS, CONTACT, CONTRAST, EMOJI, OPENERS, STORIES, TOPICS
from service.domain import FeedbackIn

BRANDS = {
    "spicewell": ("SpiceWell", "辣之源", ("Fire Noodles", "Sesame Cup", "Mild Broth")),
    "noodleking": ("NoodleKing", "面大王", ("King Ramen", "Beef Bowl", "Veggie Pack")),
    "goldenbowl": ("GoldenBowl", "金碗", ("Golden Udon", "Tom Yum Cup", "Classic Chicken")),
}
BRAND_SHARE = {"spicewell": 0.5, "noodleking": 0.3, "goldenbowl": 0.2}
REGIONS = ("North", "South", "East", "West", "Central")
AGE_GROUPS = ("18-24", "25-34", "35-44", "45+")
AGE_SHARE = (0.25, 0.3, 0.25, 0.2)
TIERS = ("standard", "plus", "vip")
CHANNELS = {"review": 0.6, "social": 0.25, "complaint": 0.15}
SOURCES = {
    ("review", "en"): ("amazon", "walmart"),
    ("review", "zh"): ("tmall", "jd"),
    ("social", "en"): ("twitter", "instagram"),
    ("social", "zh"): ("weibo", "xiaohongshu"),
    ("complaint", "en"): ("hotline", "email"),
    ("complaint", "zh"): ("hotline", "wechat"),
}

BASE_WEIGHTS = {
    "taste_good": 0.16,
    "too_spicy": 0.03,
    "bland": 0.04,
    "packaging_damage": 0.04,
    "packaging_nice": 0.05,
    "delivery": 0.14,
    "price_high": 0.06,
    "value_good": 0.06,
    "service_bad": 0.05,
    "service_good": 0.04,
    "health_issue": 0.015,
    "portion_small": 0.04,
    "out_of_stock": 0.03,
    "easy_prep": 0.06,
    "neutral_note": 0.07,
}


# What the demo's insight team follows by name (POST /v1/tracked-phrases): the complaint the
# product team worried about when the recipe changed, in both languages.
TRACKED_PHRASES = ("too spicy", "太辣")


@dataclass(frozen=True)
class DemoConfig:
    weeks: int = 26
    per_week: int = 1000
    seed: int = 7
    start: datetime = datetime(2026, 5, 4, tzinfo=UTC)  # a Monday
    zh_share: float = 0.5
    shift_week: int = 18
    shift_region: str = "East"
    shift_age_group: str = "18-24"
    shift_brand: str = "spicewell"
    shift_rate: float = 0.6
    rollback_week: int | None = 21  # a week after the shift alert is raised (week 20); None: never
    surge_week: int = 15
    surge_brand: str = "noodleking"
    surge_rate: float = 0.35
    delivery_negative_start: float = 0.7
    delivery_negative_end: float = 0.25
    crosspost_rate: float = 0.04


@dataclass
class Truth:
    external_id: str
    week: int
    primary_topic: str
    topics: list[str]
    aspects: dict[str, int]
    effects: list[str] = field(default_factory=list)
    duplicate_of: str | None = None
    brand: str = ""
    region: str = ""
    age_group: str = ""


class DemoGenerator:
    def __init__(self, config: DemoConfig = DemoConfig()):
        self.config = config

    # --- pieces ---------------------------------------------------------------------------

    def _delivery_negative(self, week: int) -> float:
        c = self.config
        frac = week / max(c.weeks - 1, 1)
        return (
            c.delivery_negative_start + (c.delivery_negative_end - c.delivery_negative_start) * frac
        )

    def _pick_topic(self, rng: random.Random, week: int, channel: str, brand: str) -> str:
        weights = dict(BASE_WEIGHTS)
        if brand == self.config.surge_brand:
            weights["packaging_damage"] = 0.0  # drawn separately at the (surging) rate
        if channel == "complaint":
            weights = {
                k: v
                for k, v in weights.items()
                if TOPICS.get(k, TOPICS["bland"]).polarity < 0 or k == "delivery"
            }
        names, w = zip(*weights.items())
        topic = rng.choices(names, w)[0]
        if topic == "delivery":
            neg = self._delivery_negative(week) if channel != "complaint" else 1.0
            topic = "delivery_slow" if rng.random() < neg else "delivery_fast"
        return topic

    def _phrase(self, rng: random.Random, topic: str, lang: str) -> str:
        t = TOPICS[topic]
        text = rng.choice(t.en if lang == "en" else t.zh)
        return text.replace("{n}", str(rng.randint(3, 9)))

    @staticmethod
    def _typos(rng: random.Random, text: str) -> str:
        words = text.split(" ")
        for _ in range(rng.randint(1, 2)):
            i = rng.randrange(len(words))
            w = words[i]
            if len(w) < 4 or not w.isalpha():
                continue
            j = rng.randrange(1, len(w) - 1)
            op = rng.random()
            if op < 0.4:
                w = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
            elif op < 0.7:
                w = w[:j] + w[j + 1 :]
            else:
                w = w[:j] + w[j] + w[j:]
            words[i] = w
        return " ".join(words)

    def _compose(
        self,
        rng: random.Random,
        topics: list[str],
        lang: str,
        channel: str,
        brand: str,
        product: str,
    ) -> str:
        brand_name = BRANDS[brand][0] if lang == "en" else BRANDS[brand][1]
        parts = [self._phrase(rng, topics[0], lang)]
        for prev, cur in zip(topics, topics[1:]):
            p1, p2 = TOPICS[prev].polarity, TOPICS[cur].polarity
            joiner = rng.choice(CONTRAST[lang] if p1 * p2 < 0 else AGREE[lang])
            parts.append(joiner + self._phrase(rng, cur, lang))
        body = "".join(parts)
        if lang == "en":
            body = body[0].upper() + body[1:]
            body += rng.choice((".", ".", "!", "!!", "...", ""))
        else:
            body += rng.choice(("。", "。", "！", "！！", "。。。", ""))
        overall = sum(TOPICS[t].polarity for t in topics)
        tone = (overall > 0) - (overall < 0)
        opener = rng.choice(OPENERS[lang]).format(product=product, brand_name=brand_name)
        pieces = [opener] if opener else []
        if rng.random() < 0.1:
            pieces.append(rng.choice(STORIES[lang]))
        pieces.append(body)
        if rng.random() < 0.45:
            pieces.append(rng.choice(CLOSERS[lang][tone]))
        if channel == "complaint" and rng.random() < 0.2:
            phone = f"1{rng.choice('3589')}{rng.randint(0, 9)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"
            email = f"customer{rng.randint(100, 999)}@example.com"
            pieces.append(rng.choice(CONTACT[lang]).format(phone=phone, email=email))
        sep = " " if lang == "en" else ""
        text = sep.join(pieces)
        if channel == "social":
            mention = f"@{BRANDS[brand][0]}" if lang == "en" else f"#{BRANDS[brand][1]}#"
            text = f"{mention} {text}" if rng.random() < 0.5 else f"{text} {mention}"
            if rng.random() < 0.7:
                text += " " + rng.choice(EMOJI[tone]) * rng.randint(1, 3)
        if lang == "en" and rng.random() < 0.15:
            text = self._typos(rng, text)
        if lang == "en" and rng.random() < 0.08:
            text = text.lower()
        return text.strip()

    # --- items ----------------------------------------------------------------------------

    def items(self) -> Iterator[tuple[dict, Truth]]:
        c = self.config
        rng = random.Random(c.seed)
        n = 0
        for week in range(c.weeks):
            week_start = c.start + timedelta(weeks=week)
            for _ in range(c.per_week):
                n += 1
                brand = rng.choices(list(BRAND_SHARE), list(BRAND_SHARE.values()))[0]
                region = rng.choice(REGIONS)
                age = rng.choices(AGE_GROUPS, AGE_SHARE)[0]
                channel = rng.choices(list(CHANNELS), list(CHANNELS.values()))[0]
                lang = "zh" if rng.random() < c.zh_share else "en"
                product = rng.choice(BRANDS[brand][2])
                k = rng.choices((1, 2, 3, 4), (0.4, 0.4, 0.15, 0.05))[0]
                topics: list[str] = []
                effects: list[str] = []
                shifted = (
                    brand == c.shift_brand
                    and region == c.shift_region
                    and age == c.shift_age_group
                    and week >= c.shift_week
                    and (c.rollback_week is None or week < c.rollback_week)
                )
                if shifted:
                    ramp = 0.6 if week == c.shift_week else 1.0
                    if rng.random() < c.shift_rate * ramp:
                        topics.append("too_spicy")
                        effects.append("spicy_shift")
                if brand == c.surge_brand:
                    base = BASE_WEIGHTS["packaging_damage"]
                    rate = c.surge_rate if week >= c.surge_week else base
                    if rng.random() < rate and "packaging_damage" not in topics:
                        topics.append("packaging_damage")
                        if week >= c.surge_week:
                            effects.append("packaging_surge")
                while len(topics) < k:
                    t = self._pick_topic(rng, week, channel, brand)
                    if t not in topics:
                        topics.append(t)
                if any(t.startswith("delivery") for t in topics):
                    effects.append("delivery_improvement")
                created = week_start + timedelta(
                    days=rng.randrange(7),
                    hours=rng.choice(range(7, 24)),
                    minutes=rng.randrange(60),
                    seconds=rng.randrange(60),
                )
                source = rng.choice(SOURCES[(channel, lang)])
                ext = f"{source}-{n:07d}"
                text = self._compose(rng, topics, lang, channel, brand, product)
                polarity = sum(TOPICS[t].polarity for t in topics) / len(topics)
                rating = None
                if channel == "review":
                    rating = float(min(5, max(1, round(3 + 1.7 * polarity + rng.gauss(0, 0.6)))))
                author = f"cust-{rng.randrange(40_000):05d}"
                row = {
                    "source": source,
                    "channel": channel,
                    "external_id": ext,
                    "text": text,
                    "created_at": created.isoformat().replace("+00:00", "Z"),
                    "brand": brand,
                    "product": product,
                    "region": region,
                    "rating": rating,
                    "rating_scale": 5 if rating is not None else None,
                    "author": author,
                    "age_group": age,
                    "customer_tier": rng.choices(TIERS, (0.6, 0.3, 0.1))[0],
                }
                aspects: dict[str, int] = {}
                for t in topics:
                    a = TOPICS[t].aspect
                    if a:
                        aspects[a] = TOPICS[t].polarity if a not in aspects else aspects[a]
                truth = Truth(
                    ext,
                    week,
                    topics[0],
                    topics,
                    aspects,
                    effects,
                    brand=brand,
                    region=region,
                    age_group=age,
                )
                yield row, truth
                if channel == "complaint" and rng.random() < c.crosspost_rate:
                    n += 1
                    social_src = rng.choice(SOURCES[("social", lang)])
                    dup = dict(
                        row,
                        source=social_src,
                        channel="social",
                        external_id=f"{social_src}-{n:07d}",
                        text=(f"@{BRANDS[brand][0]} " if lang == "en" else f"#{BRANDS[brand][1]}# ")
                        + text,
                        created_at=(created + timedelta(hours=rng.randint(1, 20)))
                        .isoformat()
                        .replace("+00:00", "Z"),
                        rating=None,
                        rating_scale=None,
                    )
                    yield (
                        dup,
                        Truth(
                            dup["external_id"],
                            week,
                            topics[0],
                            topics,
                            aspects,
                            effects,
                            duplicate_of=ext,
                            brand=brand,
                            region=region,
                            age_group=age,
                        ),
                    )


def gold_did(
    truths,
    *,
    brand: str,
    treated: tuple[str, str],
    controls: list[tuple[str, str]] | None,
    aspect: str,
    pre_weeks: range,
    post_weeks: range,
) -> dict | None:
    """The difference in differences of the share of items with a negative ``aspect`` topic, on
    the generator's own labels (one voice counted once): ``treated`` (region, age group) against
    ``controls`` (every other cell of the brand when None), ``post_weeks`` against ``pre_weeks``.
    What the demo's action truly did, to compare Radar's estimate with."""
    cells: dict[str, list[int]] = {}

    def add(side: str, period: str, hit: bool) -> None:
        c = cells.setdefault(f"{side}:{period}", [0, 0])
        c[0] += 1
        c[1] += hit

    for t in truths:
        t = t if isinstance(t, Truth) else Truth(**t)
        if t.brand != brand or t.duplicate_of is not None:
            continue
        period = "pre" if t.week in pre_weeks else "post" if t.week in post_weeks else None
        cell = (t.region, t.age_group)
        side = (
            "treated"
            if cell == treated
            else "control"
            if (controls is None or cell in controls)
            else None
        )
        if period and side:
            add(side, period, t.aspects.get(aspect, 0) < 0)
    share = {k: v[1] / v[0] for k, v in cells.items() if v[0]}
    if len(share) < 4:  # a side or a period without items (a small or short data set)
        return None
    did = (share["treated:post"] - share["treated:pre"]) - (
        share["control:post"] - share["control:pre"]
    )
    return {
        "treated": {"before": share["treated:pre"], "after": share["treated:post"]},
        "control": {"before": share["control:pre"], "after": share["control:post"]},
        "did": did,
    }


# the fields of the unified dictionary a demo row fills (the language is left to detection),
# then its free segment fields, which a column mapping takes as attributes
COLUMNS = [
    *(f for f in FeedbackIn.model_fields if f not in ("attributes", "language")),
    "age_group",
    "customer_tier",
]


def write_demo(
    path: Path, config: DemoConfig = DemoConfig(), truth_path: Path | None = None
) -> dict:
    """Write the data set (format from the extension) and its ground truth; returns a summary."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    truth_path = Path(truth_path) if truth_path else path.with_name(path.name + ".truth.json")
    gen = DemoGenerator(config)
    truths: list[dict] = []
    rows_iter = ((row, truths.append(asdict(t)))[0] for row, t in gen.items())
    suffix = path.suffix.lower()
    count = 0
    if suffix == ".csv":
        with open(path, "w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=COLUMNS)
            w.writeheader()
            for row in rows_iter:
                w.writerow({k: ("" if v is None else v) for k, v in row.items()})
                count += 1
    elif suffix in (".jsonl", ".ndjson"):
        with open(path, "w", encoding="utf-8") as fh:
            for row in rows_iter:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
    elif suffix == ".parquet":
        import pyarrow as pa  # Parquet only: slow to import
        import pyarrow.parquet as pq  # Parquet only: slow to import

        rows = list(rows_iter)
        count = len(rows)
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        raise ValueError(f"cannot write {suffix!r}; use .csv, .jsonl or .parquet")
    cfg = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(config).items()}
    effects = {}
    gold = None
    if config.rollback_week is not None and config.shift_week < config.rollback_week < config.weeks:
        gold = gold_did(
            truths,
            brand=config.shift_brand,
            treated=(config.shift_region, config.shift_age_group),
            controls=None,
            aspect="taste",
            pre_weeks=range(config.shift_week + 1, config.rollback_week),
            post_weeks=range(config.rollback_week, config.weeks),
        )
    if gold is not None:
        effects["rollback_effect"] = {
            "brand": config.shift_brand,
            "segment": {"region": config.shift_region, "age_group": config.shift_age_group},
            "aspect": "taste",
            "from_week": config.rollback_week,
            "definition": "share of items with a negative taste topic: treated cell vs every other cell of the brand, "
            "weeks from the rollback vs the full weeks of the shift before it",
            **gold,
        }
    truth_path.write_text(
        json.dumps({"config": cfg, "effects": effects, "items": truths}, ensure_ascii=False)
    )
    return {"output": str(path), "rows": count, "truth": str(truth_path)}
