"""SHA-256 of files, for the model manifest and the build records; the heads' weight files,
read and written so that the same arrays always give the same bytes (and so the same checksum)."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np


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


_DTYPES = {
    np.dtype(np.float16): "F16",
    np.dtype(np.float32): "F32",
    np.dtype(np.float64): "F64",
    np.dtype(np.int8): "I8",
    np.dtype(np.int16): "I16",
    np.dtype(np.int32): "I32",
    np.dtype(np.int64): "I64",
    np.dtype(np.uint8): "U8",
    np.dtype(np.bool_): "BOOL",
}


def write_weights(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Write ``tensors`` and ``metadata`` as a safetensors file whose bytes depend on them alone.

    ``safetensors.numpy.save_file`` writes its metadata in a hash map's order, which changes
    from one process to the next: retraining a head to the same weights gave a new checksum,
    and with it a new pipeline version that marked every stored score stale. Here the header
    is JSON with sorted keys and the tensors are laid out by name (the format's reader takes
    any order; the header is padded with spaces to 8 bytes, as the reference writer does)."""
    header: dict = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    blobs, offset = [], 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name], order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
        if a.dtype not in _DTYPES:
            raise ValueError(f"tensor {name!r}: dtype {a.dtype} cannot be written")
        blob = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {
            "dtype": _DTYPES[a.dtype],
            "shape": list(a.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)
    tmp = Path(path).with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<Q", len(head)))
        fh.write(head)
        for blob in blobs:
            fh.write(blob)
    tmp.replace(path)
