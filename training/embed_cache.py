"""Resumable embedding of a dataset: chunks are cached on disk as they finish."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from service.nlp.encoder import Encoder

CHUNK = 2048


def _folder(encoder: Encoder, cache_dir: Path) -> Path:
    """Per encoder and runtime (an int8 encoder's embeddings are not the fp32 ones, nor those
    of an earlier int8 graph)."""
    from service.nlp.build.onnx_export import ONNX_VERSION

    runtime = getattr(encoder, "runtime", "torch")
    return (
        Path(cache_dir)
        / "embeddings"
        / (encoder.name if runtime == "torch" else f"{encoder.name}-{runtime}-v{ONNX_VERSION}")
    )


def embed_cached(encoder: Encoder, texts: list[str], cache_dir: Path, label: str) -> np.ndarray:
    """Embeddings of ``texts``; an interrupted run picks up at the last finished chunk."""
    digest = hashlib.sha1("\x1f".join(texts).encode("utf-8")).hexdigest()[:12]
    folder = _folder(encoder, cache_dir) / f"{label.replace('/', '_')}-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    with tqdm(total=len(texts), desc=f"embed {label}", unit="text", dynamic_ncols=True) as bar:
        for start in range(0, len(texts), CHUNK):
            path = folder / f"{start:08d}.npy"
            if path.exists():
                arr = np.load(path)
            else:
                arr = encoder.encode(texts[start : start + CHUNK]).astype(np.float32)
                tmp = path.with_suffix(".tmp.npy")
                np.save(tmp, arr)
                tmp.replace(path)
            parts.append(arr)
            bar.update(len(arr))
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


def embed_set(encoder: Encoder, s, cache_dir: Path) -> np.ndarray:
    """Embeddings of a ``LabeledSet``: whole texts, or for clause sets each clause pooled from
    its sentence's tokens (the way the pipeline embeds the evidence of an aspect)."""
    if s.spans is None:
        return embed_cached(encoder, s.texts, cache_dir, s.name)
    key = hashlib.sha1(repr(s.spans).encode("utf-8")).hexdigest()[:12]
    path = _folder(encoder, cache_dir) / f"{s.name.replace('/', '_')}-spans-{key}.npy"
    if path.exists():
        return np.load(path)
    sentences: dict[str, list[int]] = {}
    for i, (sent, _) in enumerate(s.spans):
        sentences.setdefault(sent, []).append(i)
    order = list(sentences)
    out = np.empty((len(s.spans), encoder.dim), dtype=np.float32)
    with tqdm(
        total=len(order), desc=f"embed {s.name} (in context)", unit="sentence", dynamic_ncols=True
    ) as bar:
        for start in range(0, len(order), CHUNK):
            part = order[start : start + CHUNK]
            _, per = encoder.encode_with_spans(
                part, [[s.spans[i][1] for i in sentences[t]] for t in part]
            )
            for t, embs in zip(part, per):
                out[sentences[t]] = embs
            bar.update(len(part))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path.with_suffix(".tmp.npy"), out)
    path.with_suffix(".tmp.npy").replace(path)
    return out
