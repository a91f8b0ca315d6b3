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

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
