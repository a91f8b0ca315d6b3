"""The shipped relevance model: the ONNX Runtime graph gives the NumPy reference's
probabilities, the safetensors round trip keeps it, and one item's features do not depend on
the batch it is scored in."""

import numpy as np

from service.config import Settings
from service.nlp.registry import ModelRegistry
from service.nlp.relevance import FEATURES, RelevanceModel, batch_features


def _shipped() -> RelevanceModel:
    st = Settings()
    reg = ModelRegistry(st.models_dir, taxonomy=st.taxonomy, cache_dir=st.model_cache_dir)
    return reg.relevance_model(reg.pipeline_spec("default").relevance)


def test_onnx_trees_give_the_numpy_reference_and_survive_a_round_trip(tmp_path):
    model = _shipped()
    rng = np.random.default_rng(0)
    X = rng.normal(0.5, 0.3, size=(3000, len(FEATURES)))
    X[:, 12:] = rng.random((3000, 3)) < 0.5
    onnx_p = model.trees.predict_proba(X)
    ref = model.trees.predict_proba_numpy(X)
    assert onnx_p.shape == (3000,) and 0.05 < onnx_p.mean() < 0.95
    assert np.abs(onnx_p - ref).max() < 1e-5
    model.save(tmp_path / "m.safetensors")
    again = RelevanceModel.load(tmp_path / "m.safetensors")
    assert again.threshold == model.threshold
    assert np.array_equal(again.trees.predict_proba(X), onnx_p)


def test_an_items_features_do_not_depend_on_its_batch(real_pipeline):
    tagger = real_pipeline.aspects
    enc = real_pipeline.encoder
    texts = [
        "Great taste but the box arrived crushed.",
        "味道很好，但是包装破损了",
        "Shipping was slow.",
    ]
    spans = [[(0, 16), (17, 40)], [(0, 4), (5, 12)], [(0, 18)]]
    text_emb, clauses = enc.encode_with_spans(texts, spans)
    K = len(tagger.taxonomy.ids)
    hit = np.zeros((3, K), bool)
    X, best = batch_features(tagger.prototypes_, text_emb, clauses, hit, hit)
    for i in range(3):
        Xi, bi = batch_features(
            tagger.prototypes_,
            text_emb[i : i + 1],
            clauses[i : i + 1],
            hit[i : i + 1],
            hit[i : i + 1],
        )
        assert np.allclose(Xi[0], X[i], atol=1e-4) and np.array_equal(bi[0], best[i])
