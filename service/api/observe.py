"""What every request leaves behind: its request id (``X-Request-ID``, the client's when it
sends a plain one, else a new one), one access-log line and, with metrics on, its count and
latency by route template; and a database error answered as what it is.
"""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from service.api.errors import error_body
from service.api.logs import REQUEST_ID, access_line, request_id
from service.store.db import UNUSABLE, classify, describe

log = logging.getLogger("radar.api")


def route_template(scope) -> str:
    """The path template of the route that answered (``/v1/feedback/{feedback_id}``), or
    ``unmatched``: raw paths would put ids and scanners' guesses into logs and metrics."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not template:
        return "unmatched"
    regex, path = getattr(route, "path_regex", None), scope.get("path", "")
    if regex is not None and not regex.match(path):
        # a router included under a prefix (/v1): the route may know only its own part of the path
        parts = path.split("/")
        for i in range(2, len(parts)):
            if regex.match("/" + "/".join(parts[i:])):
                return "/".join(parts[:i]) + template
    return template


class RequestMiddleware:
    """A pure ASGI middleware (streaming responses pass through untouched)."""

    def __init__(self, app, metrics=None):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = request_id(incoming)
        REQUEST_ID.set(rid)  # each request runs in its own task: the id stays with this one
        start = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped every handler

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())],
                }
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = route_template(scope)
            access_line(
                method=scope["method"],
                route=route,
                status=status,
                latency_ms=seconds * 1000,
                request_id=rid,
                key_prefix=(scope.get("state") or {}).get("key_prefix"),
            )
            if self.metrics is not None:
                self.metrics.observe_request(route, scope["method"], status, seconds)


def install_database_errors(app: FastAPI, metrics=None) -> None:
    """A database that cannot serve (read-only, busy, corrupt, unreachable) answers 503 naming
    why; a statement's own failure stays a 500. Both are counted and logged, without SQL
    parameters (the engines hide them)."""

    @app.exception_handler(SQLAlchemyError)
    async def _database(request: Request, exc: SQLAlchemyError):
        kind = classify(exc)
        if metrics is not None:
            metrics.database_error(exc)
        where = f"{request.method} {route_template(request.scope)}"
        if kind not in UNUSABLE:
            log.error("database error on %s", where, exc_info=exc)
            return JSONResponse(error_body(500, "internal error", code="internal"), status_code=500)
        log.error("database %s on %s: %s", kind, where, describe(exc))
        message = f"the database is {kind}: {describe(exc)}"
        return JSONResponse(
            error_body(503, message, code=f"database_{kind.replace('-', '_')}"),
            status_code=503,
            headers={"Retry-After": "30"},
        )
