"""A small store with known segments, scored by a keyword scorer that also tags aspects."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from service.domain import AspectScore, Score
from service.nlp.pipeline import ScoredText, Scorer

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
            p = {"negative": 0.1, "neutral": 0.1, "positive": 0.1}
            p[label] = 0.8
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
            emb = np.random.default_rng(abs(hash(t)) % 2**32).standard_normal(8).astype(np.float32)
            out.append(
                ScoredText(
                    Score(
                        sentiment=label,
                        sentiment_score=p["positive"] - p["negative"],
                        probabilities=p,
                        aspects=aspects,
                        model_version=self.version,
                    ),
                    emb / np.linalg.norm(emb),
                )
            )
        return out


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
        items.append(
            {
                "source": "shop",
                "channel": "review",
                "external_id": f"s{i}",
                "text": text,
                "created_at": (START + timedelta(hours=1 + i)).isoformat(),
                "brand": "spicewell",
                "region": region,
                "attributes": {"age_group": age},
                "language": "en",
            }
        )
    return items


@pytest.fixture
def segment_store(db_url, make_runtime):
    rt = make_runtime(db_url, scorer=AspectKeywordScorer())
    items = segment_items()
    report = rt.ingest_service().ingest(list(enumerate(items)))
    assert report.counts["created"] == len(items)
    return rt, items
