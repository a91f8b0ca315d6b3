"""The int8 ONNX fast path against the fp32 PyTorch encoder."""

import json

import numpy as np
import pytest

from service.config import Settings
from service.demo.generator import DemoConfig, DemoGenerator
from service.nlp.build.onnx_export import export
from service.nlp.registry import ModelError, ModelRegistry
from service.runtime import Runtime


@pytest.fixture(scope="module")
def registry():
    return Runtime(Settings()).registry


def test_int8_agrees_with_fp32_on_labels(registry, tmp_path_factory):
    name = registry.manifest.pipelines["english"].encoder  # small: exported here from scratch
    out = tmp_path_factory.mktemp("onnx")
    rec = export(registry.encoder_path(name), out)
    assert set(rec["files"]) == {"model.onnx", "model.int8.onnx"}
    assert export(registry.encoder_path(name), out)["reused"] is True
    # the build is deterministic: this export is byte for byte the one `make models` made
    assert rec["files"] == json.loads((registry.onnx_dir(name) / "onnx.json").read_text())["files"]
    from service.nlp.encoder import TransformerEncoder

    spec = registry.encoder_spec(name)
    kw = dict(name=name, max_tokens=spec.max_tokens or 256, prefix=spec.prefix)
    fp32 = TransformerEncoder(registry.encoder_path(name), **kw)
    int8 = TransformerEncoder(registry.encoder_path(name), onnx_path=out / "model.int8.onnx", **kw)
    texts = [r["text"] for r, _ in DemoGenerator(DemoConfig(per_week=10, seed=4)).items()][:240]
    a, b = fp32.encode(texts), int8.encode(texts)
    cos = np.sum(a * b, axis=1)
    assert cos.mean() > 0.98 and cos.min() > 0.9
    head = registry.sentiment_head(registry.manifest.pipelines["english"].sentiment)
    agree = np.mean(head.predict_proba(a).argmax(1) == head.predict_proba(b).argmax(1))
    assert agree >= 0.95, agree
    assert (
        "one activation scale per token" in rec["quantisation"]
        and "smoothed" in rec["quantisation"]
    )

    # a text's hidden states do not depend on its batch, its padding or its neighbours: bit for bit
    model, tok = int8._load()
    seqs = [tok(t)["input_ids"] for t in texts[:40]]
    longest = max(map(len, seqs))
    ids = np.full((len(seqs), longest), tok.pad_token_id, np.int64)
    mask = np.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, : len(s)], mask[i, : len(s)] = s, 1
    together = model(ids, mask)
    for i, s in enumerate(seqs):
        alone = model(np.array([s], np.int64), np.ones((1, len(s)), np.int64))[0]
        assert np.array_equal(together[i, : len(s)], alone), i
    reversed_ = model(ids[::-1].copy(), mask[::-1].copy())[::-1]
    assert np.array_equal(reversed_ * mask[..., None], together * mask[..., None])


def test_the_exported_graphs_hold_the_token_states_and_no_pooler(registry):
    """Only ``last_hidden_state`` leaves the graph (Radar pools the tokens itself); XLM-R's
    pooler, absent from multilingual-e5's checkpoint, used to be exported with random weights,
    so every build of the same package gave a different file."""
    import onnx

    for name in sorted({p.encoder for p in registry.manifest.pipelines.values()}):
        for f in ("model.onnx", "model.int8.onnx"):
            graph = onnx.load(str(registry.onnx_dir(name) / f), load_external_data=False).graph
            assert [o.name for o in graph.output] == ["last_hidden_state"], (name, f)
            assert not [i.name for i in graph.initializer if "pooler" in i.name], (name, f)


def test_the_served_int8_encoder_agrees_with_fp32(registry):
    """The default pipeline as `make test` built it (int8 ONNX) against its fp32 encoder."""
    spec = registry.manifest.pipelines["default"]
    assert registry.encoder_runtime(spec.encoder) == "onnx-int8", "run `radar models build`"
    int8, fp32 = registry.encoder(spec.encoder), registry.encoder(spec.encoder, runtime="torch")
    texts = [r["text"] for r, _ in DemoGenerator(DemoConfig(per_week=10, seed=9)).items()][:200]
    a, b = fp32.encode(texts), int8.encode(texts)
    head = registry.sentiment_head(spec.sentiment)
    agree = np.mean(head.predict_proba(a).argmax(1) == head.predict_proba(b).argmax(1))
    assert float(np.sum(a * b, axis=1).mean()) > 0.98 and agree >= 0.95, agree


def test_runtime_choice_and_version(registry, tmp_path):
    reg = ModelRegistry(
        registry.models_dir, taxonomy=registry.taxonomy, cache_dir=tmp_path, runtime="auto"
    )
    enc = reg.manifest.pipelines["english"].encoder
    assert reg.encoder_runtime(enc) == "torch"  # nothing built in this empty cache
    assert "-fp32:" in reg.pipeline_version("english")
    strict = ModelRegistry(
        registry.models_dir, taxonomy=registry.taxonomy, cache_dir=tmp_path, runtime="onnx-int8"
    )
    with pytest.raises(ModelError, match="radar models build"):
        strict.encoder_runtime(enc)
