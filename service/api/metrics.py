"""``GET /metrics`` in the Prometheus text format (``api.metrics: true``; with
``api.metrics_key`` set it needs ``Authorization: Bearer <that key>``).

Each app has its own ``CollectorRegistry`` (never the process-global one). Counted as they
happen: requests by route template, method and status, and their latency (``observe.py``'s
middleware); texts scored by the API and ingest, per batch: latency and size
(``Runtime.observe_scoring``); database errors by kind. Read from the store at scrape time,
so nothing else needs a hook: items stored (by channel), scores stored (by model version),
outbox messages by status, alerts by rule, severity and status; the model pool's depth and the
texts waiting in the shared micro-batcher.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.exc import SQLAlchemyError

from service.api.errors import ApiError
from service.api.limits import model_pool_depth
from service.store.db import classify, grouped_counts
from service.store.tables import AlertRow, FeedbackRow, OutboxRow, ScoreRow

STORE_TTL_S = (
    10.0  # the store's counts are read at most this often, however often Prometheus scrapes
)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    def __init__(self, runtime):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "radar_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "radar_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.scored = Counter(
            "radar_items_scored",
            "Texts scored by this process (API scoring and ingest).",
            registry=r,
        )
        self.scoring = Histogram(
            "radar_scoring_duration_seconds",
            "Seconds per scored batch.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch = Histogram(
            "radar_scoring_batch_size", "Texts per scored batch.", buckets=BATCH_BUCKETS, registry=r
        )
        self.db_errors = Counter(
            "radar_database_errors",
            "Database errors by kind (read-only, busy, corrupt, unavailable, error).",
            ["kind"],
            registry=r,
        )
        r.register(_StoreCollector(runtime, self))
        runtime.observe_scoring(self.observe_scoring)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def observe_scoring(self, items: int, seconds: float) -> None:
        self.scored.inc(items)
        self.scoring.observe(seconds)
        self.batch.observe(items)

    def database_error(self, exc: BaseException) -> None:
        self.db_errors.labels(classify(exc)).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _StoreCollector:
    """Gauges read from the store when scraped (at most every ``STORE_TTL_S`` seconds)."""

    def __init__(self, runtime, metrics: Metrics, ttl: float = STORE_TTL_S):
        self.runtime = runtime
        self.metrics = metrics
        self.ttl = ttl
        self._read: tuple[float, dict | None] = (float("-inf"), None)
        self._lock = threading.Lock()

    def describe(self):
        return []  # read only when scraped, never at registration

    def _counts(self) -> dict | None:
        with self._lock:
            at, counts = self._read
            if time.monotonic() - at < self.ttl:
                return counts
            try:
                with self.runtime.sessions() as s:
                    counts = {
                        "items": grouped_counts(s, FeedbackRow.channel),
                        "scores": grouped_counts(s, ScoreRow.model_version),
                        "outbox": grouped_counts(s, OutboxRow.status),
                        "alerts": grouped_counts(
                            s, AlertRow.rule, AlertRow.severity, AlertRow.status
                        ),
                    }
            except SQLAlchemyError as exc:
                self.metrics.database_error(exc)
                counts = None
            self._read = (time.monotonic(), counts)
            return counts

    def collect(self):
        pool = GaugeMetricFamily(
            "radar_model_pool_depth", "API model calls (score, ingest) queued or running."
        )
        pool.add_metric([], model_pool_depth())
        yield pool
        queue = GaugeMetricFamily(
            "radar_scoring_queue_texts", "Texts waiting in the shared micro-batcher."
        )
        queue.add_metric([], self.runtime.scoring_queue())
        yield queue
        counts = self._counts()
        up = GaugeMetricFamily(
            "radar_store_up", "1 when the store's counts could be read at the last scrape."
        )
        up.add_metric([], 0 if counts is None else 1)
        yield up
        if counts is None:
            return
        for name, doc, labels, key in (
            ("radar_items_stored", "Feedback items stored, by channel.", ["channel"], "items"),
            (
                "radar_scores_stored",
                "Stored scores, by model version (another version than the served one is stale).",
                ["model_version"],
                "scores",
            ),
            (
                "radar_outbox_messages",
                "Outbox messages by status (pending, sending, sent, dead).",
                ["status"],
                "outbox",
            ),
            (
                "radar_alerts",
                "Alerts by rule, severity and status.",
                ["rule", "severity", "status"],
                "alerts",
            ),
        ):
            family = GaugeMetricFamily(name, doc, labels=labels)
            for values, n in sorted(counts[key].items(), key=lambda kv: tuple(map(str, kv[0]))):
                family.add_metric([str(v) for v in values], n)
            yield family


def _authorised(request: Request) -> None:
    key = request.app.state.runtime.settings.api.metrics_key.get_secret_value()
    if not key:
        return
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        token.strip().encode(), key.encode()
    ):
        raise ApiError(
            401,
            "GET /metrics needs Authorization: Bearer <api.metrics_key>",
            headers={"WWW-Authenticate": "Bearer"},
        )


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, _: Annotated[None, Depends(_authorised)]) -> Response:
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
