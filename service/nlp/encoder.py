"""Sentence encoders behind a one-method Protocol.

``TransformerEncoder`` runs a Hugging Face encoder with mean pooling over the attention
mask and L2 normalisation (the sentence-transformers recipe of the packaged MiniLM).
Inputs are sorted by length before batching to cut padding, and the output is restored to
input order.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

import numpy as np


class Encoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32, L2-normalised, in input order."""


def length_sorted_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


class TransformerEncoder:
    def __init__(self, path: Path, *, name: str, batch_size: int = 64, max_tokens: int = 256,
                 threads: int | None = None, prefix: str = ""):
        self.path = Path(path)
        self.name = name
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.threads = threads
        self.prefix = prefix
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def _load(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    import torch
                    from transformers import AutoModel, AutoTokenizer

                    if self.threads:
                        torch.set_num_threads(self.threads)
                    self._tokenizer = AutoTokenizer.from_pretrained(self.path)
                    model = AutoModel.from_pretrained(self.path)
                    model.eval()
                    self._model = model
        return self._model, self._tokenizer

    @property
    def dim(self) -> int:
        model, _ = self._load()
        return int(model.config.hidden_size)

    def tokenize_lengths(self, texts: list[str]) -> list[int]:
        _, tok = self._load()
        enc = tok(texts, add_special_tokens=True, truncation=True, max_length=self.max_tokens)
        return [len(ids) for ids in enc["input_ids"]]

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        model, tok = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        texts = [self.prefix + t for t in texts]
        out = np.empty((len(texts), model.config.hidden_size), dtype=np.float32)
        # Character length is a good, free proxy for token length when sorting.
        for idx in length_sorted_batches([len(t) for t in texts], self.batch_size):
            batch = tok([texts[i] for i in idx], padding=True, truncation=True,
                        max_length=self.max_tokens, return_tensors="pt")
            with torch.inference_mode():
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out[idx] = pooled.float().numpy()
        return out
