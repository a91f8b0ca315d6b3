"""LoRA adapters: a merged model computes what the adapted one did (the served path)."""

import torch
from transformers import XLMRobertaConfig, XLMRobertaModel

from service.nlp.build.lora import add_lora, load_adapter, merge_adapter, save_adapter


def _tiny(seed: int, hidden_size: int = 16, layers: int = 3) -> XLMRobertaModel:
    torch.manual_seed(seed)
    cfg = XLMRobertaConfig(
        vocab_size=50,
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=40,
    )
    return XLMRobertaModel(cfg, add_pooling_layer=False).eval()


def test_merged_adapter_reproduces_the_adapted_model(tmp_path):
    ids = torch.tensor([[0, 5, 9, 12, 2], [0, 7, 2, 1, 1]])
    mask = (ids != 1).long()
    adapted = _tiny(0)
    base_out = adapted(input_ids=ids, attention_mask=mask).last_hidden_state
    wrapped = add_lora(adapted, [1, 2], rank=4, alpha=8)
    assert len(wrapped) == 12  # six linears per layer
    assert all(not p.requires_grad for n, p in adapted.named_parameters() if "lora_" not in n)
    with torch.no_grad():  # B starts at zero: an untrained adapter changes nothing
        assert torch.allclose(
            adapted(input_ids=ids, attention_mask=mask).last_hidden_state, base_out, atol=1e-6
        )
        for m in wrapped.values():
            m.lora_B.normal_(0, 0.2)
        want = adapted(input_ids=ids, attention_mask=mask).last_hidden_state
    assert not torch.allclose(want, base_out, atol=1e-3)
    path = tmp_path / "adapter.safetensors"
    save_adapter(path, wrapped, rank=4, alpha=8)
    tensors, meta = load_adapter(path)
    plain = _tiny(0)
    assert merge_adapter(plain, tensors, alpha=float(meta["alpha"]), rank=int(meta["rank"])) == 12
    with torch.no_grad():
        got = plain(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(got, want, atol=1e-5)


def test_an_adapter_for_another_shape_is_refused(tmp_path):
    wrapped = add_lora(_tiny(1), [0], rank=2, alpha=2)
    path = tmp_path / "a.safetensors"
    save_adapter(path, wrapped, rank=2, alpha=2)
    tensors, _ = load_adapter(path)
    other = _tiny(1, hidden_size=24, layers=1)
    try:
        merge_adapter(other, tensors, alpha=2, rank=2)
    except ValueError as e:
        assert "does not fit" in str(e)
    else:
        raise AssertionError("a mismatched adapter was merged")
