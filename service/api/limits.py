"""Request limits: the body size (413, a pure ASGI middleware), the rate per caller (429) and the
model worker pool (503 past its timeout)."""

from __future__ import annotations

import concurrent.futures as cf
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from service.api.errors import ApiError, error_body
from service.nlp.batcher import Overloaded
from service.nlp.cancel import cancellable


class BodyLimitMiddleware:
    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send, size: str) -> None:
        body = json.dumps(
            error_body(413, f"request body is {size}; the limit is {self.max_bytes:,} bytes")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                n = -1
            if n > self.max_bytes:
                return await self._reject(send, f"{n:,} bytes")
            return await self.app(scope, receive, send)
        # No length given (chunked): read up to the limit before the app sees anything.
        chunks, total = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            total += len(msg.get("body", b""))
            if total > self.max_bytes:
                return await self._reject(send, "larger than allowed")
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        body = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


class RateLimiter:
    """A token bucket per caller: ``per_minute`` requests a minute on average, bursts up to the
    same number. ``take`` answers 0 when a request may go, else the seconds until it may.
    Per process (one API process per machine is the deployment; behind several, each counts
    its own)."""

    def __init__(self, per_minute: int, clock=None):
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.clock = clock or time.monotonic
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def take(self, who: str) -> float:
        return self._spend(who, 1.0)

    def wait(self, who: str) -> float:
        """What ``take`` would answer, taking nothing."""
        return self._spend(who, 0.0)

    def _spend(self, who: str, cost: float) -> float:
        with self.lock:
            now = self.clock()
            tokens, last = self.buckets.get(who, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self.buckets[who] = (tokens - cost, now)
                return 0.0
            self.buckets[who] = (tokens, now)
            return (1.0 - tokens) / self.rate


class _CountingPool(ThreadPoolExecutor):
    """The model worker pool, counting the calls submitted and not finished (queued or running)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.depth = 0
        self._depth_lock = threading.Lock()

    def _count(self, step: int) -> None:
        with self._depth_lock:
            self.depth += step

    def submit(self, fn, /, *args, **kwargs):
        self._count(1)
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self._count(-1)
            raise
        future.add_done_callback(lambda _: self._count(-1))
        return future


_MODEL_POOL: _CountingPool | None = None


def model_pool_depth() -> int:
    """Model calls of the API waiting for or running on the pool (a metrics gauge)."""
    return 0 if _MODEL_POOL is None else _MODEL_POOL.depth


def within(seconds: float, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` on the model worker pool, waiting at most ``seconds``: past it
    the request answers 503 with Retry-After instead of holding the connection, and the work is
    cancelled at its next check (``service.nlp.cancel``: between encoder batches and ingest
    chunks). Chunks an ingest stored before stay stored; it is idempotent, so the client's
    retry stores nothing twice."""

    stop = threading.Event()

    def run():
        with cancellable(stop):
            return fn(*args, **kwargs)

    global _MODEL_POOL
    if _MODEL_POOL is None:
        _MODEL_POOL = _CountingPool(max_workers=4, thread_name_prefix="radar-model")
    future = _MODEL_POOL.submit(run)
    try:
        return future.result(timeout=seconds)
    except Overloaded as exc:
        raise ApiError(503, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    except cf.TimeoutError:
        stop.set()
        raise ApiError(
            503,
            f"the model did not answer within {seconds:g} s and the work was stopped; retry "
            "later or in smaller batches (a retried ingest stores nothing twice)",
            headers={"Retry-After": "30"},
        ) from None
