"""The harm verifier (``service/nlp/harm.py``): what the safety rules match is tagged only when
the verifier finds a harm reported in the matched clause; ``rules.verify: false`` opts out; a
verifier is served only over the encoder it was trained on."""

import numpy as np
import pytest
import yaml

from service.config import Settings
from service.domain import Taxonomy
from service.nlp.harm import HarmVerifier
from service.nlp.registry import ModelError, ModelRegistry
from service.runtime import Runtime


@pytest.fixture(scope="module")
def registry():
    return Runtime(Settings()).registry


@pytest.fixture(scope="module")
def pipe(registry):
    return registry.pipeline("default")


def _safety_hits(pipe, tagger, texts, lang):
    spans = pipe.preprocess(texts)
    text_emb, clause_emb = pipe.encoder.encode_with_spans(texts, spans)
    hits = tagger.tag_batch(texts, spans, [lang] * len(texts), text_emb, clause_emb)
    return [next((h for h in hs if h.aspect == "health_safety"), None) for hs in hits]


def _constant(p_logit: float, dim: int) -> HarmVerifier:
    """A verifier that gives every clause ``sigmoid(p_logit)``."""
    return HarmVerifier(np.zeros(dim), np.ones(dim), np.zeros(dim), p_logit, 0.5)


def test_a_rule_match_the_verifier_rejects_is_not_tagged_and_verify_false_keeps_it(registry, pipe):
    texts = ["I got food poisoning after eating the chicken here", "The waiter was rude to us"]
    tagger = registry.tagger("default").fit(pipe.encoder)
    dim = pipe.encoder.dim

    tagger.verifier = _constant(-5.0, dim)
    assert _safety_hits(pipe, tagger, texts, "en") == [None, None]
    # only safety aspects are checked: the topic tag of the second text stays
    spans = pipe.preprocess(texts[1:])
    te, ce = pipe.encoder.encode_with_spans(texts[1:], spans)
    assert "customer_service" in {
        h.aspect for h in tagger.tag_batch(texts[1:], spans, ["en"], te, ce)[0]
    }

    tagger.verifier = _constant(5.0, dim)
    hit = _safety_hits(pipe, tagger, texts, "en")[0]
    assert hit is not None and hit.reason == "rule+model" and hit.rule
    p = 1 / (1 + np.exp(-5.0))
    assert hit.confidence == pytest.approx(0.9 + 0.1 * p)

    # a team that would rather hear of every match switches the check off for the aspect
    raw = registry.taxonomy.model_dump(exclude_none=True)
    for a in raw["aspects"]:
        if a["id"] == "health_safety":
            a["rules"]["verify"] = False
    opted_out = registry.tagger("default", Taxonomy.model_validate(raw)).fit(pipe.encoder)
    opted_out.verifier = _constant(-5.0, dim)
    hit = _safety_hits(pipe, opted_out, texts, "en")[0]
    assert hit is not None and hit.reason == "rule"


def test_the_shipped_verifier_keeps_harm_reports_and_drops_injuries_that_are_not_the_products(
    pipe,
):
    assert pipe.aspects.verifier is not None  # the default pipeline serves one
    reports = {
        "en": [
            "I got food poisoning after eating the chicken here, vomited all night",
            "Found a piece of glass in my salad",
            "There was a cockroach crawling on our table next to the food",
            "The charger caught fire and burned my hand",
        ],
        "zh": [
            "吃完肚子疼，拉了一晚上肚子",
            "菜里吃出一根头发，太恶心了",
            "收到的水果全都烂了，还发霉了",
        ],
    }
    for lang, texts in reports.items():
        assert all(_safety_hits(pipe, pipe.aspects, texts, lang)), lang
    # the rules match "injur*" / 受伤; the verifier learned from labeled tweets and reviews that
    # a player's injury is no harm from a product
    misses = {
        "en": [
            "Our striker is out with a knee injury again",
            "He injured his hamstring in training",
        ],
        "zh": ["球员受伤了，下场比赛打不了"],
    }
    tagger = pipe.aspects
    for lang, texts in misses.items():
        assert all(tagger.rule_matches(t, lang).get("health_safety") for t in texts)
        assert _safety_hits(pipe, tagger, texts, lang) == [None] * len(texts), lang


def test_a_verifier_round_trips_and_is_refused_over_another_encoder(registry, tmp_path):
    v = HarmVerifier(
        np.arange(4.0), np.full(4, 2.0), np.array([1.0, -1.0, 0.5, 0.0]), 0.25, 0.4, {"C": 0.01}
    )
    v.save(tmp_path / "v.safetensors")
    w = HarmVerifier.load(tmp_path / "v.safetensors")
    x = np.random.default_rng(0).normal(size=(3, 4))
    assert np.allclose(v.probability(x), w.probability(x), atol=1e-6)
    assert w.threshold == pytest.approx(0.4) and w.meta == {"C": 0.01}

    manifest = yaml.safe_load((registry.models_dir / "manifest.yaml").read_text(encoding="utf-8"))
    manifest["pipelines"]["english"]["harm_verifier"] = manifest["pipelines"]["default"][
        "harm_verifier"
    ]
    models = tmp_path / "models"
    models.mkdir()
    (models / "manifest.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    reg = ModelRegistry(models, taxonomy=registry.taxonomy, cache_dir=registry.cache_dir)
    with pytest.raises(ModelError, match="not a harm verifier over its encoder 'minilm-l6-en'"):
        reg.harm_verifier("english")
