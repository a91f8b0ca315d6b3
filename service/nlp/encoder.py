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

    def encode_with_spans(self, texts: list[str], spans: list[list[tuple[int, int]]]
                          ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Text embeddings and, from the same forward pass, one embedding per character
        span of each text (mean of the span's contextual token states)."""


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

    def encode_with_spans(self, texts: list[str], spans: list[list[tuple[int, int]]]
                          ) -> tuple[np.ndarray, list[np.ndarray]]:
        import torch

        model, tok = self._load()
        dim = model.config.hidden_size
        text_out = np.empty((len(texts), dim), dtype=np.float32)
        span_out = [np.empty((len(sp), dim), dtype=np.float32) for sp in spans]
        missing: list[tuple[int, int]] = []  # spans cut off by truncation: encoded on their own
        shift = len(self.prefix)
        for idx in length_sorted_batches([len(t) for t in texts], self.batch_size):
            batch = tok([self.prefix + texts[i] for i in idx], padding=True, truncation=True,
                        max_length=self.max_tokens, return_tensors="pt", return_offsets_mapping=True)
            offsets = batch.pop("offset_mapping").numpy()
            with torch.inference_mode():
                hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=1)
            text_out[idx] = pooled.float().numpy()
            h = hidden.float().numpy()
            for row, i in enumerate(idx):
                starts, ends = offsets[row, :, 0] - shift, offsets[row, :, 1] - shift
                real = ends > starts  # special and padding tokens have empty offsets
                for k, (a, b) in enumerate(spans[i]):
                    sel = real & (starts < b) & (ends > a)
                    if not sel.any():
                        missing.append((i, k))
                        continue
                    v = h[row, sel].mean(axis=0)
                    span_out[i][k] = v / max(float(np.linalg.norm(v)), 1e-9)
        if missing:
            alone = self.encode([texts[i][spans[i][k][0]:spans[i][k][1]] for i, k in missing])
            for (i, k), v in zip(missing, alone):
                span_out[i][k] = v
        return text_out, span_out

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
