"""Resumable embedding of a dataset: chunks are cached on disk as they finish."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from service.nlp.encoder import Encoder

CHUNK = 2048


def embed_cached(encoder: Encoder, texts: list[str], cache_dir: Path, label: str) -> np.ndarray:
    """Embeddings of ``texts``; an interrupted run picks up at the last finished chunk."""
    digest = hashlib.sha1("\x1f".join(texts).encode("utf-8")).hexdigest()[:12]
    folder = Path(cache_dir) / "embeddings" / encoder.name / f"{label.replace('/', '_')}-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    with tqdm(total=len(texts), desc=f"embed {label}", unit="text", dynamic_ncols=True) as bar:
        for start in range(0, len(texts), CHUNK):
            path = folder / f"{start:08d}.npy"
            if path.exists():
                arr = np.load(path)
            else:
                arr = encoder.encode(texts[start:start + CHUNK]).astype(np.float32)
                tmp = path.with_suffix(".tmp.npy")
                np.save(tmp, arr)
                tmp.replace(path)
            parts.append(arr)
            bar.update(len(arr))
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
