"""Low-rank adapters (LoRA) for the encoder's linear layers: train, save, merge.

An adapter adds ``scale · B·A`` to a frozen weight ``W`` (``A``: rank × in, ``B``: out × rank,
``scale = alpha / rank``). Training wraps the chosen ``nn.Linear`` modules; serving merges the
product into ``W`` once (``radar models build``), so the served model has exactly the base
architecture, one forward pass and the same ONNX/int8 export as the base encoder.

Adapter files are safetensors with ``<module path>.lora_A`` / ``.lora_B`` tensors and the
rank, alpha and target modules in the metadata.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

# the linear layers of a BERT/XLM-R encoder layer an adapter may target
TARGETS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.rank, self.scale = rank, alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.drop(x) @ self.lora_A.T @ self.lora_B.T) * self.scale

    def delta(self) -> torch.Tensor:
        return (self.lora_B @ self.lora_A) * self.scale


def _layer_modules(encoder_model: nn.Module, layers: list[int]):
    for i in layers:
        layer = encoder_model.encoder.layer[i]
        for target in TARGETS:
            parent_path, _, leaf = target.rpartition(".")
            parent = layer.get_submodule(parent_path)
            yield f"encoder.layer.{i}.{target}", parent, leaf


def add_lora(
    model: nn.Module, layers: list[int], rank: int, alpha: float, dropout: float = 0.0
) -> dict[str, LoRALinear]:
    """Wrap the target linears of ``layers`` in place; everything else is frozen."""
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = {}
    for path, parent, leaf in _layer_modules(model, layers):
        module = LoRALinear(getattr(parent, leaf), rank, alpha, dropout)
        setattr(parent, leaf, module)
        wrapped[path] = module
    return wrapped


def adapter_state(wrapped: dict[str, LoRALinear]) -> dict[str, torch.Tensor]:
    out = {}
    for path, m in wrapped.items():
        out[f"{path}.lora_A"] = m.lora_A.detach().float().contiguous().clone()
        out[f"{path}.lora_B"] = m.lora_B.detach().float().contiguous().clone()
    return out


def save_adapter(
    path: Path,
    wrapped: dict[str, LoRALinear],
    *,
    rank: int,
    alpha: float,
    extra: dict[str, torch.Tensor] | None = None,
) -> None:
    from safetensors.torch import save_file  # only when weights are read or written

    tensors = adapter_state(wrapped)
    tensors.update(extra or {})
    save_file(
        tensors,
        str(path),
        metadata={"rank": str(rank), "alpha": str(alpha), "format": "radar-lora-1"},
    )


def load_adapter(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open  # only when weights are read or written

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if meta.get("format") != "radar-lora-1":
        raise ValueError(f"{path} is not a Radar LoRA adapter (metadata {meta})")
    return tensors, meta


def merge_adapter(
    model: nn.Module, tensors: dict[str, torch.Tensor], alpha: float, rank: int
) -> int:
    """Add every adapter's ``scale · B·A`` into the plain (unwrapped) model; returns the count."""
    scale = alpha / rank
    merged = 0
    with torch.no_grad():
        for key, a in tensors.items():
            if not key.endswith(".lora_A"):
                continue
            path = key[: -len(".lora_A")]
            b = tensors[f"{path}.lora_B"]
            linear = model.get_submodule(path)
            if not isinstance(linear, nn.Linear) or linear.weight.shape != (b.shape[0], a.shape[1]):
                raise ValueError(f"adapter module {path} does not fit the model")
            linear.weight += (b.float() @ a.float()) * scale
            merged += 1
    return merged
