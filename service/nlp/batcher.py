"""Dynamic batching: concurrent requests share one model call.

Each API request that needs the model hands its texts to a ``MicroBatcher`` and waits. One
worker thread takes the oldest waiting request, gathers the requests that arrive within
``max_wait_ms`` (or until ``max_batch`` texts are gathered), scores them in one call and hands
each request its own results. The encoder's per-token int8 graph gives a text the same scores
in any batch (``tests/nlp/test_pipeline.py``), so sharing a call changes no answer; it saves
the per-call overhead and runs the model on full batches with all its threads, instead of
four small calls fighting over two cores.

The queue is bounded (``max_queue`` texts): a request that would overflow it gets
``Overloaded`` at once (the API answers 503 with Retry-After) rather than waiting behind work it
cannot finish in time. A request whose caller stops waiting (``service.nlp.cancel``) is dropped
from the queue if its batch has not started, and a running batch whose callers all stopped
waiting is cancelled at the encoder's next batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

from service.nlp.cancel import Cancelled, cancellable, check
from service.nlp.pipeline import ScoredText, Scorer

log = logging.getLogger(__name__)


class Overloaded(RuntimeError):
    """The model's queue is full; retry after ``retry_after`` seconds."""

    def __init__(self, queued: int, limit: int, retry_after: int = 1):
        super().__init__(f"the model queue holds {queued:,} texts (limit {limit:,}); retry shortly")
        self.retry_after = retry_after


@dataclass
class _Job:
    texts: list[str]
    languages: list[str | None]
    future: Future = field(default_factory=Future)
    cancelled: bool = False
    running: _Batch | None = None  # the shared call it is part of, once taken


@dataclass
class _Batch:
    jobs: list[_Job]
    stop: threading.Event = field(default_factory=threading.Event)


class MicroBatcher(Scorer):
    """A ``Scorer`` that coalesces concurrent ``score`` calls into shared calls of ``inner``."""

    def __init__(
        self,
        inner: Scorer,
        *,
        max_batch: int = 64,
        max_wait_ms: float = 5.0,
        max_queue: int = 4000,
        on_batch=None,
    ):
        self.inner = inner
        self.version = inner.version
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.on_batch = (
            on_batch  # (texts, requests, seconds) after each shared call, e.g. for metrics
        )
        self._jobs: deque[_Job] = deque()
        self._queued = 0
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def __getattr__(self, name):  # the encoder, tagger… of the pipeline it wraps
        return getattr(self.inner, name)

    @property
    def queued(self) -> int:
        """Texts waiting for the model."""
        return self._queued

    def score(self, texts: list[str], languages: list[str] | None = None) -> list[ScoredText]:
        if not texts:
            return []
        job = _Job(list(texts), list(languages or [None] * len(texts)))
        with self._cv:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            if self._queued and self._queued + len(job.texts) > self.max_queue:
                raise Overloaded(self._queued, self.max_queue)
            self._jobs.append(job)
            self._queued += len(job.texts)
            self._start()
            self._cv.notify()
        while True:  # wait in slices, so that a cancelled caller leaves the queue
            try:
                check()
            except Cancelled:
                with self._cv:
                    job.cancelled = True
                    if job.running is not None and all(j.cancelled for j in job.running.jobs):
                        job.running.stop.set()  # nobody waits for this call any more
                raise
            try:
                return job.future.result(timeout=0.05)
            except TimeoutError:
                continue

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    # --- the worker ---------------------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="radar-batcher", daemon=True)
            self._thread.start()

    def _take(self) -> _Batch:
        """The oldest job and those that join it within ``max_wait`` (up to ``max_batch`` texts)."""
        with self._cv:
            while not self._jobs and not self._closed:
                self._cv.wait()
            if not self._jobs:
                return _Batch([])
            batch = [self._jobs.popleft()]
            n = len(batch[0].texts)
            deadline = time.monotonic() + self.max_wait
            while n < self.max_batch:
                if not self._jobs:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cv.wait(left)
                    continue
                if n + len(self._jobs[0].texts) > self.max_batch:
                    break
                job = self._jobs.popleft()
                batch.append(job)
                n += len(job.texts)
            self._queued -= n
            taken = _Batch([j for j in batch if not j.cancelled])
            for j in taken.jobs:
                j.running = taken
            return taken

    def _run(self) -> None:
        while True:
            taken = self._take()
            batch = taken.jobs
            if not batch:
                if self._closed:
                    return
                continue
            texts = [t for j in batch for t in j.texts]
            langs = [lang for j in batch for lang in j.languages]
            t0 = time.perf_counter()
            try:
                with cancellable(taken.stop):
                    scored = self.inner.score(texts, langs)
            except BaseException as exc:  # every waiting request hears of it; the worker goes on
                if not isinstance(exc, Cancelled):
                    log.exception("model call of %d texts failed", len(texts))
                for j in batch:
                    j.future.set_exception(exc)
                continue
            if self.on_batch is not None:
                self.on_batch(len(texts), len(batch), time.perf_counter() - t0)
            at = 0
            for j in batch:
                j.future.set_result(scored[at : at + len(j.texts)])
                at += len(j.texts)
