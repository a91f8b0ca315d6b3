"""The aspect benchmark's measures on a small hand-made set (``benchmarks/aspects_new_taxonomy``):
the sentiment of a true tag is read from its evidence clause and judged against the aspect's
gold polarity; gold categories that disagree on one aspect are no polarity."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("aspects_new_taxonomy")


class OneHotHead:
    """Reads a class off the first three coordinates of an embedding."""

    def predict_proba(self, x):
        return np.asarray(x)[:, :3]


NEG, NEU, POS = np.eye(3)


def test_a_true_tag_takes_its_evidence_clauses_sentiment(bench):
    # sentence 0: food negative in its second clause, though the item reads positive overall;
    # sentence 1: service positive; sentence 2: food tagged but not gold (not judged);
    # sentence 3: food gold with conflicting categories (-1: not judged)
    s = SimpleNamespace(
        gold=np.array([[1, 0], [0, 1], [0, 0], [1, 0]], bool),
        polarity=np.array([[0, -1], [-1, 2], [-1, -1], [-1, -1]]),
    )
    emb = SimpleNamespace(
        text=np.stack([POS, POS, NEG, NEU]),
        clauses=[np.stack([POS, NEG]), np.stack([POS]), np.stack([NEG]), np.stack([NEG])],
    )
    pred = np.array([[1, 0], [0, 1], [1, 0], [1, 0]], bool)
    clause = np.array([[1, 0], [0, 0], [0, 0], [0, 0]])
    out = bench.aspect_sentiment(s, emb, OneHotHead(), clause, pred)
    assert out["true_tags_with_polarity"] == 2
    assert out["gold_negative_neutral_positive"] == [1, 0, 1]
    assert out["evidence_clause"]["accuracy"] == 100.0
    assert out["evidence_clause"]["negative_recall"] == 100.0
    assert out["whole_item"]["accuracy"] == 50.0  # the item's sentiment misses the complaint
    assert out["whole_item"]["negative_recall"] == 0.0


def test_polarity_of_categories_mapped_onto_one_aspect(monkeypatch):
    from training import aspect_sets as A

    taxonomy = A.Taxonomy.model_validate(
        {
            "aspects": [
                {
                    "id": "taste",
                    "names": {"en": "Taste"},
                    "description": "How the food tastes.",
                    "examples": ["flavour"],
                },
                {
                    "id": "service",
                    "names": {"en": "Service"},
                    "description": "The staff.",
                    "examples": ["staff"],
                },
            ]
        }
    )
    bench = {"categories": {"food": "taste", "drinks": "taste", "staff": "service"}}
    monkeypatch.setattr(A, "load_taxonomy", lambda name: (taxonomy, bench))
    s = A._to_set(
        "t",
        "en",
        "t",
        [
            ("good food, rude staff", {"food": "positive", "staff": "negative"}),
            ("food fine, drinks awful", {"food": "positive", "drinks": "negative"}),
            ("food and drinks great", {"food": "positive", "drinks": "positive"}),
            ("it was ok", {"staff": "conflict"}),
        ],
        "t",
    )
    assert s.gold.tolist() == [[True, True], [True, False], [True, False], [False, True]]
    assert s.polarity.tolist() == [[2, 0], [-1, -1], [2, -1], [-1, -1]]
