"""The real packaged encoder with the trained head (integration)."""

import numpy as np
import pytest

from service.domain import Taxonomy
from service.nlp.text import clause_spans, split_clauses


def test_clauses_split_on_sentences_contrast_and_chinese_commas():
    assert split_clauses("Great taste but the box arrived crushed.") == [
        "Great taste",
        "but the box arrived crushed.",
    ]
    assert split_clauses("味道很好，但是包装破损了") == ["味道很好", "但是包装破损了"]
    assert split_clauses("ok") == ["ok"]
    text = "Nice. It arrived late; the lid is hard to open"
    assert [text[a:b] for a, b in clause_spans(text)] == [
        "Nice.",
        "It arrived late;",
        "the lid is hard to open",
    ]


@pytest.mark.parametrize(
    "text,label",
    [
        ("Absolutely delicious, the best noodles I have ever had!", "positive"),
        ("Terrible. The soup was cold and it made me sick.", "negative"),
        ("Customer service never answered and my refund is still missing.", "negative"),
        ("I love how easy these are to prepare, great value too.", "positive"),
    ],
)
def test_clear_english_polarity(real_pipeline, text, label):
    (s,) = real_pipeline.score([text], ["en"])
    assert s.score.sentiment == label
    assert (
        (s.score.sentiment_score > 0.3) if label == "positive" else (s.score.sentiment_score < -0.3)
    )
    assert abs(sum(s.score.probabilities.values()) - 1) < 1e-3


def test_mixed_aspects_get_their_own_sentiment_and_evidence(real_pipeline):
    (s,) = real_pipeline.score(["Great taste but the box arrived crushed."], ["en"])
    aspects = {a.aspect: a for a in s.score.aspects}
    assert aspects["taste"].sentiment == "positive" and aspects["taste"].evidence == "Great taste"
    assert aspects["packaging"].sentiment == "negative"
    assert aspects["packaging"].evidence == "but the box arrived crushed."


def test_aspects_name_the_right_theme(real_pipeline):
    texts = [
        "The parcel arrived a week late and tracking never updated.",
        "Way too expensive for such a small pack, not worth the money.",
        "Found a piece of plastic inside and my son got a stomach ache.",
    ]
    tops = [s.score.aspects[0].aspect for s in real_pipeline.score(texts, ["en"] * 3)]
    assert tops == ["delivery", "price_value", "health_safety"]


def test_batch_order_embeddings_and_version(real_pipeline):
    texts = [
        "short",
        "a much longer text about the delivery that took forever to arrive at my door",
        "medium length text here",
    ]
    batch = real_pipeline.score(texts, ["en"] * 3)
    alone = [real_pipeline.score([t], ["en"])[0] for t in texts]
    # Length sorting must not change who gets which score, and a text's scores do not depend
    # on its batch (the int8 graph quantises each token on its own): equal, not close
    for b, a in zip(batch, alone):
        assert np.array_equal(b.embedding, a.embedding)
        assert b.score == a.score
    assert batch[0].embedding.shape == (384,)
    assert abs(np.linalg.norm(batch[1].embedding) - 1) < 1e-4
    assert batch[0].score.model_version == real_pipeline.version
    assert "tax-" in real_pipeline.version


def test_no_aspects_for_languages_the_encoder_does_not_know(real_runtime_factory):
    english = real_runtime_factory("sqlite://").registry.pipeline("english")
    assert english.languages == ("en",)
    (s,) = english.score(["味道很好，但是包装破损了"], ["zh"])
    assert s.score.aspects == []
    assert s.embedding.shape == (384,)
    (e,) = english.score(["Great taste but the box arrived crushed."], ["en"])
    assert {a.aspect for a in e.score.aspects} >= {"taste", "packaging"}


def test_a_new_aspect_is_tagged_zero_shot(real_pipeline):
    base = real_pipeline.aspects.taxonomy
    extra = Taxonomy.model_validate(
        {
            "aspects": [
                *(a.model_dump() for a in base.aspects),
                {
                    "id": "sustainability",
                    "names": {"en": "Sustainability", "zh": "环保"},
                    "description": "Environmental impact, plastic waste, recycling and eco-friendly packaging.",
                    "examples": [
                        "too much plastic waste",
                        "the packaging is not recyclable",
                        "eco friendly",
                    ],
                },
            ]
        }
    )
    # the served tagger (relevance model, rules) with the new aspect added, no retraining
    tagger = (
        real_pipeline_registry(real_pipeline).tagger("default", extra).fit(real_pipeline.encoder)
    )
    text = "So much single-use plastic, none of it recyclable."
    text_emb, (clauses,) = real_pipeline.encoder.encode_with_spans([text], [[(0, 50)]])
    hits = tagger.tag(text_emb[0], clauses, text=text, spans=[(0, 50)], language="en")
    assert [h.aspect for h in hits][:1] == ["sustainability"]
    assert hits[0].reason == "model"  # no rule was written for it: the model tagged it


def real_pipeline_registry(pipeline):
    from service.config import Settings
    from service.nlp.registry import ModelRegistry

    st = Settings()
    return ModelRegistry(
        st.models_dir, taxonomy=pipeline.aspects.taxonomy, cache_dir=st.model_cache_dir
    )


def _scores(results):
    return [
        (
            r.score.sentiment,
            r.score.sentiment_score,
            r.score.probabilities,
            [
                (a.aspect, a.confidence, a.sentiment, a.sentiment_score, a.evidence, a.reason)
                for a in r.score.aspects
            ],
        )
        for r in results
    ]


def test_one_score_per_text_whatever_its_batch(real_pipeline):
    """The same texts scored one by one, in batches of 32 and of 256, and shuffled, give
    identical labels, scores (to their stored 4 decimals), aspects and embeddings: an item's
    stored score cannot depend on what it was ingested with."""
    from service.demo.generator import DemoConfig, DemoGenerator

    rows = [r for r, _ in DemoGenerator(DemoConfig(per_week=12, seed=21)).items()][:300]
    texts = [r["text"] for r in rows]
    texts[7] = texts[7] + " " + " ".join(texts[8:40])  # one text longer than a window
    langs = ["zh" if any("\u4e00" <= ch <= "\u9fff" for ch in t) else "en" for t in texts]
    whole = real_pipeline.score(texts, langs)
    expected = _scores(whole)
    for size in (32, 256):
        got = []
        for lo in range(0, len(texts), size):
            got += real_pipeline.score(texts[lo : lo + size], langs[lo : lo + size])
        assert _scores(got) == expected, size
    singles = [real_pipeline.score([t], [lang])[0] for t, lang in zip(texts[:60], langs[:60])]
    assert _scores(singles) == expected[:60]
    assert all(np.array_equal(a.embedding, b.embedding) for a, b in zip(singles, whole))
    order = np.random.default_rng(5).permutation(len(texts))
    shuffled = real_pipeline.score([texts[i] for i in order], [langs[i] for i in order])
    back = [None] * len(texts)
    for pos, i in enumerate(order):
        back[i] = shuffled[pos]
    assert _scores(back) == expected
    assert sum(len(s[3]) for s in expected) > 100  # aspects were tagged, not only sentiment
