"""The model registry: ``models/manifest.yaml`` names every model; each loads lazily, once.

Weights are never downloaded: encoders come from installed packages (or, later, from a
local cache built from them), small trained artifacts from ``models/`` and are checked
against the sha256 in the manifest before use.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import threading
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field

from service.config import DEFAULT_CONFIG_DIR
from service.domain import Taxonomy
from service.nlp.aspect_heads import AspectHeads, load_mapping
from service.nlp.aspects import ZeroShotAspectTagger
from service.nlp.checksums import sha256_file
from service.nlp.encoder import Encoder, TransformerEncoder
from service.nlp.harm import HarmVerifier
from service.nlp.pipeline import ScoringPipeline
from service.nlp.relevance import RelevanceModel
from service.nlp.sentiment import SentimentHead
from service.nlp.tagger import AspectCalibration, AspectTagger
from service.nlp.team import TeamModel


class ModelError(RuntimeError):
    pass


class EncoderSpec(BaseModel):
    """An encoder that comes from an installed package: as it is (``source: package``) or
    converted by ``radar models build`` into the local model cache (``source: build``)."""

    model_config = ConfigDict(extra="forbid")
    source: Literal["package", "build"]
    package: str
    subdir: str = ""
    file: str = Field("", description="For builds: the package file the model is built from.")
    languages: list[str] = Field(default_factory=list, description="Empty: multilingual.")
    prefix: str = ""
    query_prefix: str | None = Field(
        None, description="Prefix of the query side (aspect descriptions)."
    )
    max_tokens: int | None = None
    base: str | None = Field(
        None, description="For adapted builds: the encoder the adapter is merged into."
    )
    adapter: str | None = Field(
        None, description="A `lora_adapter` artifact merged into `base` at build time."
    )
    description: str = ""


class FileSpec(BaseModel):
    path: str
    sha256: str


class ArtifactSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal[
        "sentiment_head",
        "aspect_calibration",
        "aspect_heads",
        "aspect_relevance",
        "lora_adapter",
        "harm_verifier",
    ]
    base: str
    files: dict[str, FileSpec] = Field(default_factory=dict)
    labels: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    training_data: list[str] = Field(default_factory=list)
    trained_with: str = ""


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    encoder: str
    sentiment: str
    aspects: str
    aspect_heads: str | None = Field(
        None,
        description="Trained aspect heads (an `aspect_heads` artifact), "
        "served only under aspects whose definition they were validated on.",
    )
    relevance: str | None = Field(
        None,
        description="The aspect relevance model (an `aspect_relevance` artifact); "
        "without one, the similarity-only zero-shot calibration in `aspects` scores.",
    )
    harm_verifier: str | None = Field(
        None,
        description="A `harm_verifier` artifact that checks what the rules of the safety "
        "aspects matched (`service/nlp/harm.py`); without one, their rules alone tag.",
    )


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    encoders: dict[str, EncoderSpec]
    artifacts: dict[str, ArtifactSpec]
    pipelines: dict[str, PipelineSpec]

    @classmethod
    def load(cls, path: Path) -> Manifest:
        if not path.exists():
            raise ModelError(f"no model manifest at {path}")
        return cls.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


T = TypeVar("T")


def _entry(kind: str, table: dict[str, T], name: str) -> T:
    """``name``'s entry in one of the manifest's tables; ModelError naming the others if none."""
    spec = table.get(name)
    if spec is None:
        raise ModelError(f"unknown {kind} {name!r}; manifest has {sorted(table)}")
    return spec


class ModelRegistry:
    def __init__(
        self,
        models_dir: Path,
        *,
        taxonomy: Taxonomy,
        cache_dir: Path | None = None,
        batch_size: int = 64,
        max_tokens: int = 256,
        threads: int | None = None,
        runtime: str = "auto",
        config_dir: Path | None = None,
        max_item_tokens: int | None = None,
    ):
        self.runtime = runtime
        self.config_dir = Path(config_dir) if config_dir else DEFAULT_CONFIG_DIR
        self.models_dir = Path(models_dir)
        self.cache_dir = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "feedback-radar"
        self.taxonomy = taxonomy
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.max_item_tokens = (
            max_item_tokens  # the model reads at most this many tokens of one item
        )
        self.threads = threads
        self._manifest: Manifest | None = None
        self._cache: dict[tuple[str, str], Any] = {}
        self._lock = threading.RLock()

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = Manifest.load(self.models_dir / "manifest.yaml")
        return self._manifest

    def _once(self, kind: str, name: str, build):
        with self._lock:
            key = (kind, name)
            if key not in self._cache:
                self._cache[key] = build()
            return self._cache[key]

    def forget(self, *kinds: str) -> None:
        """Drop what was loaded of these kinds (the next use rebuilds it: an edited taxonomy)."""
        with self._lock:
            for key in [k for k in self._cache if k[0] in kinds]:
                del self._cache[key]

    def encoder_spec(self, name: str) -> EncoderSpec:
        return _entry("encoder", self.manifest.encoders, name)

    def package_path(self, name: str) -> Path:
        spec = self.encoder_spec(name)
        found = importlib.util.find_spec(spec.package)
        if found is None or not found.submodule_search_locations:
            raise ModelError(
                f"encoder {name!r} needs the package {spec.package!r}; run `make install`"
            )
        return Path(list(found.submodule_search_locations)[0])

    def build_dir(self, name: str) -> Path:
        return self.cache_dir / "encoders" / name

    def encoder_path(self, name: str) -> Path:
        spec = self.encoder_spec(name)
        if spec.source == "build":
            path = self.build_dir(name)
            if not (path / "build.json").exists():
                raise ModelError(
                    f"encoder {name!r} is not built yet: run `radar models build` "
                    f"(it converts the weights of the {spec.package!r} package into {path})"
                )
        else:
            path = self.package_path(name) / spec.subdir
        if not (path / "config.json").exists():
            raise ModelError(f"encoder {name!r}: no model files under {path}")
        return path

    def onnx_dir(self, name: str) -> Path:
        return self.build_dir(name) / "onnx"

    def encoder_runtime(self, name: str) -> str:
        """``onnx-int8`` or ``torch``: what ``encoder(name)`` will run, without loading it."""
        int8 = self.onnx_dir(name) / "model.int8.onnx"
        if self.runtime == "torch":
            return "torch"
        if int8.exists() and (self.onnx_dir(name) / "onnx.json").exists():
            return "onnx-int8"
        if self.runtime == "onnx-int8":
            raise ModelError(f"encoder {name!r} has no int8 ONNX build: run `radar models build`")
        return "torch"

    def encoder(self, name: str, runtime: str | None = None) -> Encoder:
        rt = runtime or self.encoder_runtime(name)
        onnx = self.onnx_dir(name) / "model.int8.onnx" if rt == "onnx-int8" else None
        return self._once("encoder", f"{name}@{rt}", lambda: self.new_encoder(name, onnx_path=onnx))

    def new_encoder(
        self, name: str, *, onnx_path: Path | None = None, label: str | None = None
    ) -> TransformerEncoder:
        """Encoder ``name`` as the manifest and this registry configure it, not cached:
        ``onnx_path`` runs that ONNX model instead of PyTorch; ``label`` names it (default
        ``name``)."""
        spec = self.encoder_spec(name)
        return TransformerEncoder(
            self.encoder_path(name),
            name=label or name,
            batch_size=self.batch_size,
            max_tokens=spec.max_tokens or self.max_tokens,
            threads=self.threads,
            prefix=spec.prefix,
            query_prefix=spec.query_prefix,
            onnx_path=onnx_path,
        )

    def artifact(self, name: str) -> ArtifactSpec:
        return _entry("model artifact", self.manifest.artifacts, name)

    def artifact_file(self, name: str, role: str) -> Path:
        spec = self.artifact(name)
        if role not in spec.files:
            raise ModelError(f"artifact {name!r} has no file {role!r}")
        f = spec.files[role]
        path = self.models_dir / f.path
        if not path.exists():
            raise ModelError(f"artifact {name!r}: {path} is missing (train it with training/)")
        digest = sha256_file(path)
        if digest != f.sha256:
            raise ModelError(
                f"artifact {name!r}: {path} has sha256 {digest[:12]}…, "
                f"manifest says {f.sha256[:12]}…"
            )
        return path

    def sentiment_head(self, name: str) -> SentimentHead:
        return self._once(
            "sentiment", name, lambda: SentimentHead.load(self.artifact_file(name, "weights"))
        )

    @property
    def mapping_path(self) -> Path:
        """``aspect_mapping.yaml`` of the config folder (``RADAR_CONFIG_DIR``), like every config file."""
        return self.config_dir / "aspect_mapping.yaml"

    def mapping(self) -> dict[str, dict[str, str]]:
        return load_mapping(self.mapping_path) if self.mapping_path.exists() else {}

    def aspect_heads(self, name: str) -> list[tuple[AspectHeads, dict[str, str]]]:
        """Every head set of an ``aspect_heads`` artifact with its category → taxonomy mapping."""

        def build():
            spec = self.artifact(name)
            mapping = self.mapping()
            return [
                (AspectHeads.load(self.artifact_file(name, role)), mapping.get(role, {}))
                for role in spec.files
            ]

        return self._once("aspect_heads", name, build)

    def relevance_model(self, name: str) -> RelevanceModel:
        return self._once(
            "relevance", name, lambda: RelevanceModel.load(self.artifact_file(name, "weights"))
        )

    def harm_verifier(self, pipeline: str) -> HarmVerifier | None:
        """The harm verifier of a pipeline, if it names one; refused over another encoder (its
        weights read that encoder's embeddings)."""
        spec = self.pipeline_spec(pipeline)
        if not spec.harm_verifier:
            return None
        art = self.artifact(spec.harm_verifier)
        if art.kind != "harm_verifier" or art.base != spec.encoder:
            raise ModelError(
                f"pipeline {pipeline!r}: {spec.harm_verifier!r} is a {art.kind} over "
                f"{art.base!r}, not a harm verifier over its encoder {spec.encoder!r}"
            )
        return self._once(
            "harm_verifier",
            spec.harm_verifier,
            lambda: HarmVerifier.load(self.artifact_file(spec.harm_verifier, "weights")),
        )

    def calibration_path(self, pipeline: str) -> Path:
        return self.cache_dir / "calibration" / f"{pipeline}-tax-{self.taxonomy.fingerprint()}.json"

    def calibration(self, pipeline: str) -> AspectCalibration | None:
        """Per-aspect thresholds fitted on the team's store (``radar taxonomy calibrate``), if any."""

        path = self.calibration_path(pipeline)
        if not path.exists():
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
        return AspectCalibration(
            thresholds={k: float(v) for k, v in raw["thresholds"].items()},
            taxonomy=raw["taxonomy"],
            items=int(raw.get("items", 0)),
        )

    def tagger(
        self,
        name: str = "default",
        taxonomy: Taxonomy | None = None,
        *,
        calibrated: bool = True,
        team=None,
        verified: bool = True,
    ) -> AspectTagger:
        """The aspect tagger of a pipeline for ``taxonomy`` (default: the configured one), not fitted."""
        spec = self.pipeline_spec(name)
        tax = taxonomy or self.taxonomy
        heads, validated, zero = [], {}, None
        relevance = self.relevance_model(spec.relevance) if spec.relevance else None
        if (
            relevance is None
        ):  # pipelines without a relevance model: the similarity-only calibration
            cal = self.artifact(spec.aspects).params
            zero = ZeroShotAspectTagger(
                tax,
                threshold=float(cal["threshold"]),
                slope=float(cal["slope"]),
                margin=float(cal.get("margin", 1.0)),
            )
        if spec.aspect_heads:
            heads = self.aspect_heads(spec.aspect_heads)
            validated = dict(self.artifact(spec.aspect_heads).params.get("validated") or {})
        return AspectTagger(
            tax,
            relevance=relevance,
            zero_shot=zero,
            heads=heads,
            validated=validated,
            calibration=self.calibration(name) if calibrated else None,
            team=None if team is None else team.aspects,
            verifier=self.harm_verifier(name) if verified else None,
        )

    def team_meta(self, name: str = "default", encoder_runtime: str | None = None) -> dict:
        """What a team model trained over pipeline ``name`` records of its base (and must match)."""
        spec = self.pipeline_spec(name)
        return {
            "base_pipeline": name,
            "base_encoder": spec.encoder,
            "base_sentiment_sha256": self.artifact(spec.sentiment).files["weights"].sha256,
        }

    def team_pipeline(
        self,
        base: ScoringPipeline,
        *,
        team_name: str,
        blob: bytes,
        sha256: str,
        name: str = "default",
    ) -> ScoringPipeline:
        """``base`` (pipeline ``name``) with a team model's heads: refused when the blob's checksum
        is not ``sha256`` or it was trained over another encoder or sentiment head."""

        digest = hashlib.sha256(blob).hexdigest()
        if digest != sha256:
            raise ModelError(
                f"team model {team_name!r}: checksum {digest[:12]}… differs from the stored "
                f"{sha256[:12]}…; retrain it"
            )
        model = TeamModel.from_bytes(blob, base.sentiment)
        expected = self.team_meta(name)
        for key in ("base_encoder", "base_sentiment_sha256"):
            if model.meta.get(key) != expected[key]:
                raise ModelError(
                    f"team model {team_name!r} was trained over {key} {model.meta.get(key)!r}, "
                    f"this pipeline has {expected[key]!r}; retrain it"
                )
        if model.meta.get("dim") not in (None, base.encoder.dim):
            raise ModelError(
                f"team model {team_name!r} expects {model.meta['dim']}-d embeddings, "
                f"the encoder gives {base.encoder.dim}"
            )
        tagger = self.tagger(name, team=model).fit(base.encoder)
        version = f"{base.version}:team-{team_name[:20]}@{sha256[:8]}"
        return ScoringPipeline(
            encoder=base.encoder,
            sentiment=model.sentiment or base.sentiment,
            aspects=tagger,
            version=version,
            languages=base.languages,
            max_item_tokens=base.max_item_tokens,
        )

    def pipeline_spec(self, name: str) -> PipelineSpec:
        return _entry("pipeline", self.manifest.pipelines, name)

    def pipeline(self, name: str = "default") -> ScoringPipeline:
        spec = self.pipeline_spec(name)

        def build() -> ScoringPipeline:
            encoder = self.encoder(spec.encoder)
            head = self.sentiment_head(spec.sentiment)
            tagger = self.tagger(name).fit(encoder)
            return ScoringPipeline(
                encoder=encoder,
                sentiment=head,
                aspects=tagger,
                version=self.pipeline_version(name, runtime=encoder.runtime),
                languages=tuple(self.manifest.encoders[spec.encoder].languages),
                max_item_tokens=self.max_item_tokens,
            )

        return self._once("pipeline", name, build)

    def pipeline_version(self, name: str = "default", runtime: str | None = None) -> str:
        """The version string a pipeline stamps on scores, without loading any weights
        (``runtime``: the loaded encoder's, when there is one)."""
        spec = self.pipeline_spec(name)
        head_sha = self.artifact(spec.sentiment).files["weights"].sha256[:8]
        rt = "int8" if (runtime or self.encoder_runtime(spec.encoder)) == "onnx-int8" else "fp32"
        aspects = spec.relevance or spec.aspects
        if spec.aspect_heads or spec.relevance or spec.harm_verifier:
            # relevance, heads, their validation, the mapping and the store calibration in one
            # digest (versions stay short)

            parts: list = [self.artifact(spec.aspects).params]
            if spec.relevance:
                parts.append(self.artifact(spec.relevance).files["weights"].sha256)
            if spec.aspect_heads:
                heads = self.artifact(spec.aspect_heads)
                parts += [
                    sorted(f.sha256 for f in heads.files.values()),
                    heads.params.get("validated"),
                    self.mapping(),
                ]
            if spec.harm_verifier:
                parts.append(self.artifact(spec.harm_verifier).files["weights"].sha256)
            cal = self.calibration(name)
            parts.append(cal.thresholds if cal else None)
            blob = json.dumps(parts, sort_keys=True)
            aspects = f"{aspects}@{hashlib.sha256(blob.encode()).hexdigest()[:8]}"
        return (
            f"{name}:{spec.encoder}-{rt}:{spec.sentiment}@{head_sha}:{aspects}"
            f":tax-{self.taxonomy.fingerprint()}"
        )
