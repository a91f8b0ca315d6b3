"""A small store with known segments, scored by a keyword scorer that also tags aspects."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from service.domain import AspectScore
from service.nlp.pipeline import Scorer
from tests.conftest import fake_scored, ingest_new, keyword_probabilities

START = datetime(2026, 3, 2, tzinfo=UTC)
KEYWORDS = {
    "taste": ("spicy", "flavour", "辣"),
    "packaging": ("box",),
    "delivery": ("late", "courier"),
}


class AspectKeywordScorer(Scorer):
    """Negative if the text says so; aspects by keyword, with the item's sentiment."""

    version = "kw-aspects-1"

    def score(self, texts, languages=None):
        out = []
        for t in texts:
            neg = any(w in t for w in ("too spicy", "crushed", "late", "太辣"))
            pos = any(w in t for w in ("lovely", "great", "好吃"))
            label = "negative" if neg else "positive" if pos else "neutral"
            p = keyword_probabilities(label)
            aspects = [
                AspectScore(
                    aspect=a,
                    confidence=0.9,
                    sentiment=label,
                    sentiment_score=p["positive"] - p["negative"],
                    evidence=t,
                )
                for a, words in KEYWORDS.items()
                if any(w in t for w in words)
            ]
            out.append(fake_scored(t, label, p, self.version, aspects=aspects))
        return out


def spicewell_review(external_id: str, text: str, at: datetime, region: str, age: str) -> dict:
    """An English shop review of spicewell from ``region`` by the ``age`` group, as ingest takes it."""
    return {
        "source": "shop",
        "channel": "review",
        "external_id": external_id,
        "text": text,
        "created_at": at.isoformat(),
        "brand": "spicewell",
        "region": region,
        "attributes": {"age_group": age},
        "language": "en",
    }


def segment_items(seed: int = 3) -> list[dict]:
    """600 items over 4 weeks: East/18-24 says 'too spicy' 60% of the time, others 10%."""
    rng = random.Random(seed)
    items = []
    for i in range(600):
        region = rng.choice(["East", "West", "North"])
        age = rng.choice(["18-24", "25-34"])
        hot = region == "East" and age == "18-24"
        r = rng.random()
        if r < (0.6 if hot else 0.1):
            text = f"the noodles are too spicy now #{i}"
        elif r < 0.75:
            text = f"lovely flavour, great bowl #{i}"
        elif r < 0.85:
            text = f"the box arrived crushed #{i}"
        else:
            text = f"bought it again #{i}"
        items.append(spicewell_review(f"s{i}", text, START + timedelta(hours=1 + i), region, age))
    return items


@pytest.fixture
def segment_store(db_url, make_runtime):
    items = segment_items()
    return ingest_new(make_runtime(db_url, scorer=AspectKeywordScorer()), items), items
