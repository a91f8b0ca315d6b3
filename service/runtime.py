"""Wiring: one place that turns ``Settings`` into the components the CLI and the API share.

Nothing is built until first asked for (no model or database work at import or
construction time), and each component is built once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from service.alerts.engine import AlertEngine
from service.alerts.rules import AlertConfig
from service.analytics.names import Names
from service.analytics.taxonomy import calibrate, parse_draft, preview
from service.config import Settings
from service.delivery.scheduler import DeliveryService
from service.ingest.dedup import DuplicatePolicy
from service.ingest.language import LanguageDetector
from service.ingest.mapping import ColumnMapping
from service.ingest.pii import PiiMode
from service.ingest.prepare import Preparer
from service.ingest.validate import Validator
from service.jobs.ingest import IngestService
from service.nlp.batcher import MicroBatcher
from service.nlp.pipeline import Scorer, ScoringPipeline
from service.nlp.registry import ModelError, ModelRegistry
from service.store import installation, rollups
from service.store import labels as store
from service.store.access import audit
from service.store.db import make_engine, make_sessionmaker, sqlite_file
from service.store.labels import promoted_key, team_model
from service.store.migrate import ensure_schema
from service.store.repo import DIMENSIONS, count_stale
from service.teach.service import Teacher, TeachError, quality_gap

TEAM_CHECK_SECONDS = 5.0  # how often a long-running process looks for a newly promoted team model


class Runtime:
    def __init__(self, settings: Settings, *, scorer: Scorer | None = None):
        self.settings = settings
        self._scorer = scorer
        self._team: tuple[tuple[str, str] | None, Scorer | None] = (None, None)  # (key, scorer)
        self._team_checked = float("-inf")
        self.jobs: dict[str, dict] = {}  # background training runs of this process
        self._scoring_observer = None  # (items, seconds) of each scored batch, for metrics
        self._batcher = (
            None  # (the scorer it batches for, the MicroBatcher): the API's shared model queue
        )
        self._lock = threading.Lock()

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
        return ModelRegistry(
            self.settings.models_dir,
            taxonomy=self.settings.taxonomy,
            cache_dir=self.settings.model_cache_dir,
            batch_size=sc.batch_size,
            max_tokens=sc.max_tokens,
            threads=sc.threads,
            runtime=sc.runtime,
            config_dir=self.settings.config_dir,
            max_item_tokens=self.settings.limits.max_item_tokens,
        )

    @property
    def base_scorer(self) -> Scorer:
        """The generic pipeline (or the injected scorer), whatever team model is promoted."""
        if self._scorer is None:
            self._scorer = self.registry.pipeline(self.settings.scorer)
        return self._scorer

    @property
    def scorer(self) -> Scorer:
        """What scores new items: the promoted team model over the generic pipeline, if any
        (looked up at most every few seconds, so a promotion reaches running servers)."""

        base = self.base_scorer

        if (
            not isinstance(base, ScoringPipeline) or not self._has_store()
        ):  # a fake scorer; no store yet
            return base
        now = time.monotonic()
        if now - self._team_checked >= TEAM_CHECK_SECONDS:
            self._team_checked = now

            with self.sessions() as s:
                key = promoted_key(s)
            if key != self._team[0]:
                self._team = (key, None if key is None else self._team_scorer(base, key[0]))
        return self._team[1] or base

    def _has_store(self) -> bool:
        """Whether a store exists to look in (a SQLite file that is not there yet holds no team
        model: batch scoring of files must not create one)."""
        if "engine" in self.__dict__:
            return True

        if make_url(self.settings.database_url).get_backend_name() != "sqlite":
            return True
        path = sqlite_file(self.settings.database_url)
        return path is not None and path.exists()

    def _team_scorer(self, base, name: str) -> Scorer:
        with self.sessions() as s:
            row = team_model(s, name=name)
            blob, sha = bytes(row.weights), row.sha256
        try:
            return self.registry.team_pipeline(
                base, team_name=name, blob=blob, sha256=sha, name=self.settings.scorer
            )
        except ModelError as exc:  # refused: keep scoring with the generic model, loudly
            logging.getLogger("radar.models").error("promoted %s", exc)
            return base

    def refresh_team(self) -> None:
        """Look for the promoted team model now (after promote or rollback in this process)."""
        self._team_checked = float("-inf")

    @cached_property
    def detector(self) -> LanguageDetector:
        return LanguageDetector()

    def names(self) -> Names:
        """Brands, aspects and regions by id, display name or alias, under the taxonomy as it
        is now (a saved taxonomy is read at once)."""
        return Names(self.settings.taxonomy, self.settings.competitors)

    @cached_property
    def author_hasher(self):
        """Author id → stored hash: the configured hash wrapped with this store's salt."""

        with self.sessions() as s:
            salt = installation.author_salt(s)
        return installation.author_hasher(self.settings.author_hasher(), salt)

    @cached_property
    def preparer(self) -> Preparer:
        ing = self.settings.ingest
        return Preparer(
            detector=self.detector,
            competitors=self.settings.competitors,
            author_hasher=self.author_hasher,
            pii_mode=PiiMode(ing.pii_mode),
            pii_modes_by_source={k: PiiMode(v) for k, v in ing.pii_mode_by_source.items()},
        )

    def validator(self, mapping: ColumnMapping | None = None) -> Validator:
        return Validator(
            mapping,
            max_text_chars=self.settings.limits.max_text_chars,
            limits=self.settings.limits,
            default_timezone=self.settings.ingest.default_timezone,
        )

    @property
    def api_scorer(self) -> Scorer:
        """What the API scores with: the current scorer behind one micro-batcher shared by all
        requests (``service.nlp.batcher``; a new one when the scorer changes, e.g. a promotion)."""

        current = self.scorer
        with self._lock:
            if self._batcher is None or self._batcher[0] is not current:
                if self._batcher is not None:
                    self._batcher[1].close()
                sc = self.settings.scoring
                self._batcher = (
                    current,
                    MicroBatcher(
                        self.observed(current),
                        max_batch=sc.batch_size,
                        max_wait_ms=sc.batch_wait_ms,
                        max_queue=sc.queue_max_items,
                    ),
                )
            return self._batcher[1]

    def ingest_service(
        self, mapping: ColumnMapping | None = None, scope=None, *, batched: bool = False
    ) -> IngestService:
        """``scope`` (``jobs.ingest.WriteScope``): the regions and brands a scoped key may write;
        ``batched``: score through the API's shared micro-batcher."""
        ing = self.settings.ingest
        scorer = self.api_scorer if batched else self.observed(self.scorer)
        return IngestService(
            sessions=self.sessions,
            scorer=scorer,
            preparer=self.preparer,
            validator=self.validator(mapping),
            chunk_size=ing.chunk_size,
            duplicates=DuplicatePolicy.from_settings(ing),
            scope=scope,
        )

    @cached_property
    def alert_config(self) -> AlertConfig:
        """The alert rules (``configs/alerts.yaml``); a mistake raises ``AlertConfigError``."""
        return AlertConfig.from_yaml(self.settings.alerts_path)

    def alert_engine(self):
        s = self.settings
        return AlertEngine(
            self.alert_config,
            aspects=[a.id for a in s.taxonomy.aspects],
            our_brand=s.competitors.our_brand,
            competitors=s.competitors,
        )

    def delivery_service(self, **kw):
        return DeliveryService(self.settings, self.sessions, **kw)

    # --- the taxonomy against the store ---------------------------------------------------

    @property
    def encoder(self):
        """The served pipeline's encoder (an injected scorer without one: the configured pipeline's)."""
        enc = getattr(self.base_scorer, "encoder", None)
        return enc if enc is not None else self.registry.pipeline(self.settings.scorer).encoder

    def tagger_for(self, taxonomy, *, calibrated: bool = True):
        """The served pipeline's tagger (rules, relevance model, validated heads) for ``taxonomy``, fitted."""
        return self.registry.tagger(self.settings.scorer, taxonomy, calibrated=calibrated).fit(
            self.encoder
        )

    def preview_taxonomy(
        self,
        session: Session,
        draft,
        *,
        flt,
        sample: int,
        aspect: str | None = None,
        examples: int = 5,
    ) -> dict:
        return preview(
            session,
            flt=flt,
            draft=draft,
            current=self.settings.taxonomy,
            tagger_for=self.tagger_for,
            encoder=self.encoder,
            sample=sample,
            aspect=aspect,
            examples=examples,
        )

    def calibrate_taxonomy(
        self,
        session: Session,
        *,
        flt,
        sample: int,
        max_share: float,
        min_share: float,
        progress=None,
    ) -> dict:
        """Fit per-aspect thresholds on the store and save them where the registry reads them;
        scores become stale for ``radar rescore`` (the model version names the calibration)."""

        name = self.settings.scorer
        tax = self.settings.taxonomy
        cal, report = calibrate(
            session,
            flt=flt,
            taxonomy=tax,
            tagger=self.tagger_for(tax, calibrated=False),
            encoder=self.encoder,
            sample=sample,
            max_share=max_share,
            min_share=min_share,
            progress=progress,
        )
        path = self.registry.calibration_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "taxonomy": cal.taxonomy,
                    "items": cal.items,
                    "thresholds": cal.thresholds,
                    "max_share": max_share,
                    "min_share": min_share,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        tmp.replace(path)
        self.reload_models()
        return {
            "path": str(path),
            "items": cal.items,
            "aspects": report,
            "model_version": self.registry.pipeline_version(name),
        }

    def save_taxonomy(self, text: str) -> dict:
        """Validate a taxonomy (YAML text) and write it as the config folder's ``taxonomy.yaml``
        (the previous file kept beside it as ``taxonomy.yaml.<UTC time>.bak``); the models are
        reloaded, and stored scores of the old taxonomy are stale for ``radar rescore``."""

        parse_draft(text)
        path = self.settings.taxonomy_path
        if path.exists():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            path.with_name(f"{path.name}.{stamp}.bak").write_bytes(path.read_bytes())
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        self.settings.__dict__.pop("taxonomy", None)
        self.reload_models()
        version = self.registry.pipeline_version(self.settings.scorer)
        with self.sessions() as s:
            stale = count_stale(s, model_version=version)
        return {
            "path": str(path),
            "taxonomy": self.settings.taxonomy.fingerprint(),
            "model_version": version,
            "stale_items": stale,
        }

    # --- teaching: labels, team models ----------------------------------------------------

    def teacher(self):
        """The store side of teaching (``service/teach``), built once per taxonomy."""

        key = self.settings.taxonomy.fingerprint()
        cached = self.__dict__.get("_teacher")
        if cached is not None and cached[0] == key:
            return cached[1]
        name = self.settings.scorer
        base = self.base_scorer
        head = getattr(base, "sentiment", None) or self.registry.sentiment_head(
            self.registry.pipeline_spec(name).sentiment
        )
        teacher = Teacher(
            sessions=self.sessions,
            load_encoder=lambda: self.encoder,
            load_tagger=lambda: self.tagger_for(self.settings.taxonomy),
            thresholds=self.registry.tagger(name).threshold,
            base_sentiment=head,
            taxonomy=self.settings.taxonomy,
            settings=self.settings.teach,
            meta=self.registry.team_meta(name),
        )
        self._teacher = (key, teacher)
        return teacher

    def train_team_model(self, *, name: str | None, actor: str, progress=None) -> dict:
        out = self.teacher().train(name=name, actor=actor, progress=progress)
        with self.sessions() as s:
            audit(
                s,
                actor=actor,
                action="model.train",
                target=f"team_model:{out['name']}",
                details={"sha256": out["sha256"][:12], "labels": out["params"]["labels"]["items"]},
            )
            s.commit()
        return out

    def start_training(self, *, name: str | None, actor: str) -> dict:
        """A training run in a background thread of this process; ``jobs[id]`` follows it."""

        job_id = uuid.uuid4().hex[:12]
        job = {
            "id": job_id,
            "status": "running",
            "name": name,
            "stage": "start",
            "done": 0,
            "total": 0,
            "started_at": datetime.now(UTC),
            "finished_at": None,
            "model": None,
            "error": None,
        }
        self.jobs[job_id] = job

        def progress(stage: str, done: int, total: int) -> None:
            job.update(stage=stage, done=done, total=total)

        def run() -> None:
            try:
                job["model"] = self.train_team_model(name=name, actor=actor, progress=progress)[
                    "name"
                ]
                job["status"] = "succeeded"
            except Exception as exc:  # noqa: BLE001 - the job reports it; the server goes on
                logging.getLogger("radar.teach").exception("training run %s failed", job_id)
                job.update(status="failed", error=str(exc))
            finally:
                job["finished_at"] = datetime.now(UTC)

        threading.Thread(target=run, name=f"radar-train-{job_id}", daemon=True).start()
        return job

    def promote_model(self, name: str, *, actor: str, force: bool = False) -> dict:
        """Make a team model (or ``generic``) score new items; a model whose report is worse
        than the generic model's is refused unless ``force``."""

        now = datetime.now(UTC)
        with self.sessions() as s:
            if name == "generic":
                store.demote_all(s, now=now)
            else:
                row = store.team_model(s, name=name)
                if row is None:
                    raise KeyError(name)
                worse = quality_gap(json.loads(row.report))
                if worse and not force:
                    raise TeachError(
                        f"team model {name!r} is worse than the generic model on its own held-out "
                        f"labels ({'; '.join(worse)}); promote with force to serve it anyway"
                    )
                self.load_team_model(name)  # refused here (checksum, base) rather than when serving
                store.promote(s, name=name, now=now)
            audit(
                s,
                actor=actor,
                action="model.promote",
                target=f"team_model:{name}",
                details={"force": force},
            )
            s.commit()
        self.refresh_team()
        return self.serving()

    def rollback_model(self, *, actor: str) -> dict:
        with self.sessions() as s:
            current = store.promoted_team_model(s)
            now_serving = store.rollback(s, now=datetime.now(UTC))
            audit(
                s,
                actor=actor,
                action="model.rollback",
                target=f"team_model:{current.name if current else 'generic'}",
                details={"now_serving": now_serving.name if now_serving else "generic"},
            )
            s.commit()
        self.refresh_team()
        return self.serving()

    def serving(self) -> dict:
        """Which model scores new items, and its version."""

        with self.sessions() as s:
            key = promoted_key(s)
        return {
            "model": key[0] if key else "generic",
            "model_version": self.scorer.version,
            "generic_version": self.base_scorer.version,
        }

    def load_team_model(self, name: str):
        """A stored team model over the generic pipeline, checked (``ModelError`` if refused)."""

        with self.sessions() as s:
            row = team_model(s, name=name)
            if row is None:
                raise KeyError(name)
            blob, sha = bytes(row.weights), row.sha256
        base = self.base_scorer
        if not hasattr(base, "encoder"):
            base = self.registry.pipeline(self.settings.scorer)
        return self.registry.team_pipeline(
            base, team_name=name, blob=blob, sha256=sha, name=self.settings.scorer
        )

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
        self._team = (None, None)  # a team model is rebuilt over the new taxonomy
        self.__dict__.pop("_teacher", None)
        self.refresh_team()

    # --- operations: what health, readiness and metrics ask ---------------------------------

    def model_status(self) -> tuple[str, str]:
        """``("loaded", version)`` when the scorer is in memory, ``("loadable", version)`` when the
        registry finds every file it needs (the encoder build, the sentiment head with its
        checksum) without loading any weights, else ``("unavailable", why)``."""

        if self._scorer is not None:
            return "loaded", self._scorer.version
        name = self.settings.scorer
        try:
            reg = self.registry
            spec = reg.pipeline_spec(name)
            reg.encoder_path(spec.encoder)
            reg.artifact_file(spec.sentiment, "weights")
            return "loadable", reg.pipeline_version(name)
        except (ModelError, KeyError, OSError, ValueError) as exc:
            return "unavailable", str(exc) or type(exc).__name__

    def rollup_dimensions(self) -> list[str]:
        """The dimensions the daily rollups hold besides brand and region: the dashboard's."""

        dims = [
            d if d in DIMENSIONS or d.startswith("attr:") else f"attr:{d}"
            for d in self.settings.dashboard.segment_dimensions
        ]
        return [d for d in dict.fromkeys(dims) if d not in ("brand", "region")]

    def refresh_rollups(self, *, rebuild: bool = False, progress=None) -> dict:
        """Recompute the days writes made stale (everything when ``rebuild`` or never built);
        committed at the end (``service/store/rollups.py``)."""

        with self.sessions() as s:
            out = rollups.refresh(
                s, dims=self.rollup_dimensions(), rebuild=rebuild, progress=progress
            )
            s.commit()
        return out

    def scoring_queue(self) -> int:
        """Texts waiting in the API's shared micro-batcher for the model (0 before its first use)."""
        batcher = self._batcher
        return 0 if batcher is None else batcher[1].queued

    def observe_scoring(self, observer) -> None:
        """Call ``observer(items, seconds)`` after each batch the API's scorer and ingest score."""
        self._scoring_observer = observer

    def observed(self, scorer: Scorer) -> Scorer:
        """``scorer``, reporting each batch to the scoring observer when there is one."""
        observer = self._scoring_observer
        return scorer if observer is None else _ObservedScorer(scorer, observer)

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:  # a runtime may serve again after (an app's lifespan ends, another starts)
            if self._batcher is not None:
                self._batcher[1].close()
                self._batcher = None
        if "engine" in self.__dict__:
            self.engine.dispose()


class _ObservedScorer(Scorer):
    """A scorer that reports each batch's size and duration and is otherwise the one it wraps."""

    def __init__(self, inner: Scorer, observer):
        self.inner = inner
        self._observer = observer

    @property
    def version(self) -> str:  # type: ignore[override]
        return self.inner.version

    def score(self, texts, languages=None):
        start = time.perf_counter()
        out = self.inner.score(texts, languages)
        self._observer(len(texts), time.perf_counter() - start)
        return out

    def __getattr__(self, name: str):
        if name == "inner":  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)
