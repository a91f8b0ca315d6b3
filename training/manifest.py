"""The models folder as training sees it: the registry it reads the packaged models through,
and entries written into ``models/manifest.yaml`` after training."""

from __future__ import annotations

from pathlib import Path

import yaml

from service.config import Settings
from service.nlp.checksums import sha256_file
from service.nlp.registry import Manifest, ModelRegistry


def model_registry(settings: Settings, **options) -> ModelRegistry:
    """The registry of the configured models folder and model cache; ``options`` (batch size,
    token window) are training's own, not the serving settings'."""
    return ModelRegistry(
        settings.models_dir,
        taxonomy=settings.taxonomy,
        cache_dir=settings.model_cache_dir,
        **options,
    )


def _plain(v):
    """numpy scalars and tuples as plain YAML values."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v.item() if hasattr(v, "item") and not isinstance(v, (str, bytes)) else v


def update_artifact(models_dir: Path, name: str, entry: dict) -> None:
    path = Path(models_dir) / "manifest.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    data = data or {}
    data.setdefault("encoders", {})
    data.setdefault("artifacts", {})
    data.setdefault("pipelines", {})
    for _role, f in entry.get("files", {}).items():
        f["sha256"] = sha256_file(Path(models_dir) / f["path"])
    data["artifacts"][name] = _plain(entry)
    Manifest.model_validate(data)  # never write a manifest the registry would refuse
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(
        yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100), encoding="utf-8"
    )
    tmp.replace(path)
