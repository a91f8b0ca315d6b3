"""Request body limit as a pure ASGI middleware: 413 with the JSON error shape."""

from __future__ import annotations

import json

from service.api.errors import error_body


class BodyLimitMiddleware:
    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send, size: str) -> None:
        body = json.dumps(error_body(413, f"request body is {size}; the limit is {self.max_bytes:,} bytes")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
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
        import threading
        import time

        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.clock = clock or time.monotonic
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def take(self, who: str) -> float:
        with self.lock:
            now = self.clock()
            tokens, last = self.buckets.get(who, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self.buckets[who] = (tokens - 1.0, now)
                return 0.0
            self.buckets[who] = (tokens, now)
            return (1.0 - tokens) / self.rate


_MODEL_POOL = None


def within(seconds: float, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` on the model worker pool, waiting at most ``seconds``: past it
    the request answers 503 with Retry-After instead of holding the connection. The work itself
    cannot be interrupted mid-batch and finishes in the background (an ingest stays
    idempotent, so the client's retry stores nothing twice)."""
    import concurrent.futures as cf

    from service.api.errors import ApiError

    global _MODEL_POOL
    if _MODEL_POOL is None:
        _MODEL_POOL = cf.ThreadPoolExecutor(max_workers=4, thread_name_prefix="radar-model")
    future = _MODEL_POOL.submit(fn, *args, **kwargs)
    try:
        return future.result(timeout=seconds)
    except cf.TimeoutError:
        raise ApiError(503, f"the model did not answer within {seconds:g} s; retry later (a retried ingest "
                            "stores nothing twice)", headers={"Retry-After": "30"}) from None
