"""Wiring: one place that turns ``Settings`` into the components the CLI and the API share.

Nothing is built until first asked for (no model or database work at import or
construction time), and each component is built once.
"""

from __future__ import annotations

from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.ingest.language import LanguageDetector
from service.ingest.mapping import ColumnMapping
from service.ingest.pii import PiiMode
from service.ingest.prepare import Preparer
from service.ingest.validate import Validator
from service.jobs.ingest import IngestService
from service.nlp.pipeline import Scorer
from service.nlp.registry import ModelRegistry
from service.store.db import make_engine, make_sessionmaker
from service.store.migrate import ensure_schema


class Runtime:
    def __init__(self, settings: Settings, *, scorer: Scorer | None = None):
        self.settings = settings
        self._scorer = scorer

    @cached_property
    def engine(self) -> Engine:
        engine = make_engine(self.settings.database_url)
        ensure_schema(engine)
        return engine

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_sessionmaker(self.engine)

    @cached_property
    def registry(self) -> ModelRegistry:
        sc = self.settings.scoring
        return ModelRegistry(self.settings.models_dir, taxonomy=self.settings.taxonomy,
                             cache_dir=self.settings.model_cache_dir, batch_size=sc.batch_size,
                             max_tokens=sc.max_tokens, threads=sc.threads, runtime=sc.runtime,
                             config_dir=self.settings.config_dir)

    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:
            self._scorer = self.registry.pipeline(self.settings.scorer)
        return self._scorer

    @cached_property
    def detector(self) -> LanguageDetector:
        return LanguageDetector()

    @cached_property
    def preparer(self) -> Preparer:
        ing = self.settings.ingest
        return Preparer(detector=self.detector, competitors=self.settings.competitors,
                        author_hasher=self.settings.author_hasher(),
                        pii_mode=PiiMode(ing.pii_mode),
                        pii_modes_by_source={k: PiiMode(v) for k, v in ing.pii_mode_by_source.items()})

    def validator(self, mapping: ColumnMapping | None = None) -> Validator:
        return Validator(mapping, max_text_chars=self.settings.limits.max_text_chars,
                         default_timezone=self.settings.ingest.default_timezone)

    def ingest_service(self, mapping: ColumnMapping | None = None) -> IngestService:
        ing = self.settings.ingest
        return IngestService(sessions=self.sessions, scorer=self.scorer, preparer=self.preparer,
                             validator=self.validator(mapping), chunk_size=ing.chunk_size,
                             near_duplicate_threshold=ing.near_duplicate_threshold)

    def alert_engine(self):
        from service.alerts.engine import AlertEngine

        s = self.settings
        return AlertEngine(s.alert_config, aspects=[a.id for a in s.taxonomy.aspects],
                           our_brand=s.competitors.our_brand)

    def delivery_service(self, **kw):
        from service.delivery.scheduler import DeliveryService

        return DeliveryService(self.settings, self.sessions, **kw)

    # --- the taxonomy against the store ---------------------------------------------------

    @property
    def encoder(self):
        """The served pipeline's encoder (an injected scorer without one: the configured pipeline's)."""
        enc = getattr(self.scorer, "encoder", None)
        return enc if enc is not None else self.registry.pipeline(self.settings.scorer).encoder

    def tagger_for(self, taxonomy, *, calibrated: bool = True):
        """The served pipeline's tagger (rules, relevance model, validated heads) for ``taxonomy``, fitted."""
        return self.registry.tagger(self.settings.scorer, taxonomy, calibrated=calibrated).fit(self.encoder)

    def preview_taxonomy(self, session: Session, draft, *, flt, sample: int, aspect: str | None = None,
                         examples: int = 5) -> dict:
        from service.analytics.taxonomy import preview

        return preview(session, flt=flt, draft=draft, current=self.settings.taxonomy, tagger_for=self.tagger_for,
                       encoder=self.encoder, sample=sample, aspect=aspect, examples=examples)

    def calibrate_taxonomy(self, session: Session, *, flt, sample: int, max_share: float, min_share: float,
                           progress=None) -> dict:
        """Fit per-aspect thresholds on the store and save them where the registry reads them;
        scores become stale for ``radar rescore`` (the model version names the calibration)."""
        import json

        from service.analytics.taxonomy import calibrate

        name = self.settings.scorer
        tax = self.settings.taxonomy
        cal, report = calibrate(session, flt=flt, taxonomy=tax, tagger=self.tagger_for(tax, calibrated=False),
                                encoder=self.encoder, sample=sample, max_share=max_share,
                                min_share=min_share, progress=progress)
        path = self.registry.calibration_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"taxonomy": cal.taxonomy, "items": cal.items, "thresholds": cal.thresholds,
                                   "max_share": max_share, "min_share": min_share}, indent=2), encoding="utf-8")
        tmp.replace(path)
        self.reload_models()
        return {"path": str(path), "items": cal.items, "aspects": report,
                "model_version": self.registry.pipeline_version(name)}

    def save_taxonomy(self, text: str) -> dict:
        """Validate a taxonomy (YAML text) and write it as the config folder's ``taxonomy.yaml``
        (the previous file kept beside it as ``taxonomy.yaml.<UTC time>.bak``); the models are
        reloaded, and stored scores of the old taxonomy are stale for ``radar rescore``."""
        from datetime import datetime, timezone

        from service.analytics.taxonomy import parse_draft
        from service.store.repo import count_stale

        parse_draft(text)
        path = self.settings.taxonomy_path
        if path.exists():
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            path.with_name(f"{path.name}.{stamp}.bak").write_bytes(path.read_bytes())
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        self.settings.__dict__.pop("taxonomy", None)
        self.reload_models()
        version = self.registry.pipeline_version(self.settings.scorer)
        with self.sessions() as s:
            stale = count_stale(s, model_version=version)
        return {"path": str(path), "taxonomy": self.settings.taxonomy.fingerprint(), "model_version": version,
                "stale_items": stale}

    def reload_models(self) -> None:
        """Rebuild the pipeline's tagger with the current taxonomy and calibration; the encoder
        and the sentiment head stay loaded."""
        registry = self.registry
        registry.taxonomy = self.settings.taxonomy
        registry.forget("pipeline")  # the relevance model does not depend on the taxonomy: it stays
        scorer = self._scorer
        if scorer is not None and hasattr(scorer, "aspects"):
            name = self.settings.scorer
            scorer.aspects = registry.tagger(name).fit(scorer.encoder)
            scorer.version = registry.pipeline_version(name, runtime=scorer.encoder.runtime)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
