"""A small secured store shared by the robustness checks: ~100 items over six weeks in three
regions, three brands, several channels and attributes, scored by the fast keyword scorer,
with API keys on (and a rate limit no fuzzer reaches)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from service.config import Settings
from service.runtime import Runtime
from tests.analytics.conftest import AspectKeywordScorer

START = datetime(2026, 3, 2, tzinfo=UTC)
REGIONS = ("East", "West", "North")
BRANDS = ("spicewell", "noodleking", "goldenbowl")
CHANNELS = ("review", "social", "complaint", "survey")
AGES = ("18-24", "25-34", "35-44")
TEXTS = (
    "the noodles are too spicy now",
    "lovely flavour, great bowl",
    "the box arrived crushed",
    "courier was late again",
    "bought it again",
    "好吃, 太辣了",
)
WORDS = (
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "amber",
    "cobalt",
    "indigo",
    "olive",
    "scarlet",
    "teal",
)  # no scorer keywords
SECURED = {"auth": True, "rate_limit_per_minute": 100_000}


def seed_items(n: int = 100, seed: int = 11) -> list[dict]:
    """``n`` items with known region, brand, channel, time and attributes (no brand names in
    the texts, so the stored brand is the brand field; distinct words, so none is a near-duplicate)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        rows.append(
            {
                "source": "shop",
                "channel": rng.choice(CHANNELS),
                "external_id": f"seed-{i}",
                "text": f"{rng.choice(TEXTS)}; {' '.join(rng.sample(WORDS, 6))} #{i}",
                "language": "en",
                "created_at": (START + timedelta(hours=10 * i + rng.randint(0, 9))).isoformat(),
                "brand": BRANDS[i % 3],
                "region": rng.choice(REGIONS),
                "author": f"cust-{i % 9}",
                "rating": rng.choice([1, 2, 3, 4, 5]),
                "attributes": {
                    "age_group": rng.choice(AGES),
                    "tier": rng.choice(["gold", "basic"]),
                },
            }
        )
    return rows


def make_store(directory: Path, n: int = 100, api: dict = SECURED) -> tuple[Runtime, list[dict]]:
    """A runtime on a fresh SQLite file holding ``seed_items(n)``."""
    rt = Runtime(
        Settings(database_url=f"sqlite:///{directory / 'radar.db'}", api=api),
        scorer=AspectKeywordScorer(),
    )
    items = seed_items(n)
    report = rt.ingest_service().ingest(list(enumerate(items)))
    assert report.counts["created"] == n, report.counts
    return rt, items
