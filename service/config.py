"""Typed settings: ``configs/base.yaml`` overlaid by ``RADAR_*`` environment variables.

Nested fields use a double underscore in the environment, e.g.
``RADAR_LIMITS__MAX_BATCH_ITEMS=500``. Secrets (the author salt) come only from the
environment.
"""

from __future__ import annotations

import hashlib
import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from service.domain import Competitors, Taxonomy

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_DIR = REPO_ROOT / "configs"


class Limits(BaseModel):
    max_text_chars: int = Field(
        20_000, ge=1, description="Longer texts are rejected with a reason."
    )
    max_batch_items: int = Field(
        1_000, ge=1, description="Items per POST /v1/score or /v1/feedback."
    )
    max_body_bytes: int = Field(
        10_000_000, ge=1, description="Request body limit in bytes (413 above)."
    )
    page_size_max: int = Field(500, ge=1)
    model_timeout_s: float = Field(
        120.0, gt=0, description="Longest a request waits for the model (then 503)."
    )
    max_item_tokens: int = Field(
        2048,
        ge=16,
        description="Per-item token budget of the model: a longer text "
        "is scored on its first max_item_tokens tokens and the cut is recorded "
        "(score.truncated_tokens); bounds the cost of one item.",
    )
    max_attributes: int = Field(
        100, ge=0, description="Attributes per item (more are a field error)."
    )
    max_attribute_name_chars: int = Field(
        64, ge=1, le=64, description="Longer attribute names are a field error."
    )
    max_attribute_value_chars: int = Field(
        256, ge=1, le=256, description="Longer attribute values are a field error."
    )


class IngestSettings(BaseModel):
    default_timezone: str = "UTC"
    chunk_size: int = Field(512, ge=1, description="Rows per ingest/score transaction.")
    near_duplicate_threshold: float = Field(
        0.8, gt=0, le=1, description="MinHash Jaccard estimate."
    )
    link_duplicates: bool = Field(
        True,
        description="Link an item to an earlier one that is the same voice "
        "(service/ingest/dedup.py: DuplicatePolicy); off: every item "
        "counts on its own.",
    )
    cross_post_hours: float = Field(
        72.0,
        ge=0,
        description="Same text about the same brand within this many hours, "
        "an author unknown on either side: one cross-posted voice.",
    )

    pii_mode: Literal["redact", "mask", "keep"] = Field(
        "redact", description="How personal data in text is handled at ingest."
    )
    pii_mode_by_source: dict[str, Literal["redact", "mask", "keep"]] = Field(
        default_factory=dict, description="Per-source override of pii_mode, e.g. {hotline: mask}."
    )


class ScoringSettings(BaseModel):
    runtime: Literal["auto", "onnx-int8", "torch"] = Field(
        "auto",
        description="auto: the int8 ONNX encoder when `radar models build` made one, else PyTorch.",
    )
    batch_size: int = Field(64, ge=1)
    max_tokens: int = Field(256, ge=16)
    batch_wait_ms: float = Field(
        5.0,
        ge=0,
        le=1000,
        description="How long the API's micro-batcher waits for "
        "more requests to join a model call.",
    )
    queue_max_items: int = Field(
        4000,
        ge=1,
        description="Texts that may wait for the API's model at once; a "
        "request beyond gets 503 with Retry-After.",
    )
    threads: int | None = Field(
        None, description="torch intra-op threads; None keeps torch's default."
    )


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    auth: bool = Field(
        True,
        description="Require an API key (Authorization: Bearer rk_… or X-API-Key); "
        "off only for a private sandbox.",
    )
    rate_limit_per_minute: int = Field(
        600,
        ge=1,
        description="Requests per key (or client address) per minute; "
        "more get 429 with Retry-After.",
    )
    metrics: bool = Field(False, description="Serve GET /metrics in the Prometheus text format.")
    metrics_key: SecretStr = Field(
        SecretStr(""),
        description="When set, GET /metrics needs "
        "Authorization: Bearer <this key> (RADAR_API__METRICS_KEY).",
    )


class DashboardSettings(BaseModel):
    segment_dimensions: list[str] = Field(
        ["region", "age_group", "channel", "language", "brand"],
        description="Dimensions the dashboard's segment pages offer: region, brand, channel, language, "
        "product, source, or attribute names (age_group, customer_tier, dealer…).",
    )
    themes_cache_minutes: float = Field(
        60.0,
        ge=0,
        description="GET /v1/themes answers from a result computed "
        "at most this long ago (0: always compute); `radar serve "
        "--themes-every` or `radar analyze themes --refresh-cache` keep it warm.",
    )
    themes_cache_slack_hours: float = Field(
        24.0,
        ge=0,
        description="A cached window answers a request for a "
        "window of the same length ending up to this much earlier or later "
        "(new items move the end of 'the last N days').",
    )
    themes_windows_days: list[int] = Field(
        [28], description="Window lengths the themes job computes for every key's scope."
    )
    rollups_every_seconds: float = Field(
        60.0,
        ge=0,
        description="`radar serve` recomputes the daily rollups of "
        "days that writes made stale this often (0: never; `radar db rollups` "
        "from cron instead). Stale days are answered from the items meanwhile.",
    )


class DeliverySettings(BaseModel):
    """Email digests and webhooks. Secrets (SMTP password, signing key, webhook secrets) come
    only from the environment: ``RADAR_DELIVERY__SMTP_PASSWORD``,
    ``RADAR_DELIVERY__SIGNING_KEY``, and the variable each webhook subscription names."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "ssl"] = Field(
        "none",
        description="starttls: upgrade a plain connection (port 587); ssl: TLS from the start (465).",
    )
    smtp_username: str | None = None
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout: float = Field(20.0, gt=0)
    smtp_allow_plain_auth: bool = Field(
        False, description="Allow sending the SMTP password without TLS (a relay on loopback only)."
    )
    smtp_ca_file: Path | None = Field(
        None,
        description="CA bundle that signs the SMTP server's certificate "
        "(a private CA); default: the system's.",
    )
    sender: str = Field(
        "Feedback Radar <radar@localhost>", description="The From address of digests."
    )
    public_url: str = Field(
        "http://127.0.0.1:8000", description="Base of the links in digests and webhooks."
    )
    signing_key: SecretStr = SecretStr("")
    webhook_timeout: float = Field(10.0, gt=0)
    max_attempts: int = Field(
        6, ge=1, le=50, description="Tries before a message is dead-lettered."
    )
    backoff_seconds: float = Field(
        60.0, gt=0, description="First retry delay; doubles each try (capped at 6 h)."
    )
    lease_seconds: float = Field(
        120.0, gt=0, description="How long a sender owns a message it is sending."
    )
    max_charts: int = Field(
        5, ge=0, le=20, description="Alert charts per digest (the most severe alerts)."
    )
    webhook_allow: list[str] = Field(
        default_factory=list,
        description="Hosts or networks (CIDR) a webhook may target although they are "
        "private, loopback, link-local or multicast (e.g. ['127.0.0.1/32', 'hooks.internal']); every other "
        "such target is refused.",
    )


class TeachSettings(BaseModel):
    """Labels, the labeling queue and team models (``service/teach``)."""

    rating_scale: float = Field(
        5.0,
        gt=0,
        description="Ratings are read on this scale (an item's own "
        "rating_scale is converted to it).",
    )
    rating_negative_max: float = Field(
        2.0, description="A rating up to this is a weak negative label."
    )
    rating_positive_min: float = Field(
        4.0, description="A rating from this is a weak positive label (between the two: no label)."
    )
    rating_weight: float = Field(
        0.3, ge=0, le=1, description="Weight of a rating label against a human one (1)."
    )
    rating_max_items: int = Field(
        5000, ge=0, description="Most rated items used as weak labels in one training run."
    )
    disagree_margin: float = Field(
        0.5,
        gt=0,
        le=1,
        description="GET /v1/feedback?disagrees=true: a low rating "
        "with a sentiment score at least this positive, or a high one at least this negative.",
    )
    queue_pool: int = Field(
        3000, ge=10, description="Newest unlabeled items the labeling queue chooses from."
    )
    min_aspect_labels: int = Field(
        3,
        ge=1,
        description="Labels of each kind (present, absent) an aspect needs "
        "before a team head is trained for it.",
    )
    folds: int = Field(
        5, ge=2, le=10, description="Cross-validation folds of a training run's report."
    )


class _YamlSource(PydanticBaseSettingsSource):
    """Reads ``base.yaml`` from the config directory (``RADAR_CONFIG_DIR`` or ``configs/``)."""

    def get_field_value(self, field, field_name):  # pragma: no cover - not used
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        config_dir = Path(os.environ.get("RADAR_CONFIG_DIR", DEFAULT_CONFIG_DIR))
        path = config_dir / "base.yaml"
        if not path.exists():
            return {}
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        data.setdefault("config_dir", str(config_dir))
        return data


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RADAR_", env_nested_delimiter="__", extra="forbid"
    )

    config_dir: Path = DEFAULT_CONFIG_DIR
    database_url: str = "sqlite:///radar.db"
    models_dir: Path = REPO_ROOT / "models"
    model_cache_dir: Path = Path.home() / ".cache" / "feedback-radar"
    scorer: str = Field("default", description="Manifest name of the scoring pipeline to serve.")
    author_salt: SecretStr = SecretStr("")
    our_brand_override: str | None = None
    log_format: Literal["text", "json"] = Field(
        "text", description="json: one JSON object per log line (RADAR_LOG_FORMAT=json)."
    )
    limits: Limits = Limits()
    ingest: IngestSettings = IngestSettings()
    scoring: ScoringSettings = ScoringSettings()
    api: ApiSettings = ApiSettings()
    delivery: DeliverySettings = DeliverySettings()
    dashboard: DashboardSettings = DashboardSettings()
    teach: TeachSettings = TeachSettings()

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        # init kwargs > environment > base.yaml > defaults
        return (init_settings, env_settings, _YamlSource(settings_cls))

    @property
    def taxonomy_path(self) -> Path:
        return self.config_dir / "taxonomy.yaml"

    @property
    def competitors_path(self) -> Path:
        return self.config_dir / "competitors.yaml"

    @property
    def alerts_path(self) -> Path:
        return self.config_dir / "alerts.yaml"

    @cached_property
    def taxonomy(self) -> Taxonomy:
        return Taxonomy.from_yaml(self.taxonomy_path)

    @cached_property
    def competitors(self) -> Competitors:
        comp = Competitors.from_yaml(self.competitors_path)
        if self.our_brand_override:
            comp = comp.model_copy(update={"our_brand": self.our_brand_override})
        return comp

    def author_hasher(self):
        """Salted SHA-256 of an author id; the salt never leaves the environment."""
        salt = self.author_salt.get_secret_value().encode()

        def _hash(author: str) -> str:
            return hashlib.sha256(salt + b"\x00" + author.encode("utf-8")).hexdigest()

        return _hash


def get_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
