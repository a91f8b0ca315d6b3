"""SHA-256 of files, for the model manifest and the build records."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def intact_build(record_path: Path, **expected) -> dict | None:
    """The build record at ``record_path`` (a JSON file beside the files it lists under
    ``files``, name → sha256) while it still stands: its ``expected`` fields match and every
    file it lists is there with that checksum. None otherwise, or when there is no record."""
    if not record_path.exists():
        return None
    rec = json.loads(record_path.read_text())
    folder = record_path.parent
    if all(rec.get(k) == v for k, v in expected.items()) and all(
        (folder / name).exists() and sha256_file(folder / name) == digest
        for name, digest in rec["files"].items()
    ):
        return rec
    return None


def read_weights(path: Path) -> tuple[dict, dict[str, str]]:
    """A safetensors file's arrays (numpy) and its metadata, in one read of each."""
    from safetensors import safe_open  # only when weights are read
    from safetensors.numpy import load_file

    with safe_open(str(path), framework="numpy") as fh:
        meta = fh.metadata() or {}
    return load_file(str(path)), meta
