"""Logs: one line per request (``radar.access``) and, with ``log_format: json``
(``RADAR_LOG_FORMAT=json``), every log line as one JSON object.

What a line may carry: the request id, method, route template (``/v1/feedback/{feedback_id}``,
never the raw path or its query string), status, latency, the API key's prefix. Never feedback
text, keys or secrets: the access line is built from those fields only, and other loggers of
the service log ids, row numbers and field names.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

ACCESS = logging.getLogger("radar.access")
REQUEST_ID: ContextVar[str | None] = ContextVar("radar_request_id", default=None)
_INCOMING_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",
}  # uvicorn's ANSI copy


def request_id(incoming: str | None) -> str:
    """The client's ``X-Request-ID`` when it is a short plain token, else a new one."""
    if incoming and _INCOMING_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id"?, ...extra fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or REQUEST_ID.get()
        if rid:
            out["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The text format, with the request id of the request being served, if any."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = REQUEST_ID.get()
        return (
            f"{line} [request {rid}]" if rid and record.name != ACCESS.name else line
        )  # access lines name it


class _Stderr(logging.StreamHandler):
    """A handler on whatever ``sys.stderr`` is when it writes (a test runner swaps it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _):
        pass


def configure(log_format: str, *, level: int = logging.WARNING, access: bool = False) -> None:
    """The process's logging: one stderr handler in ``log_format`` (``text`` or ``json``) on the
    root logger at ``level``; with ``access``, the access lines too (``radar.access`` at INFO).
    Like ``logging.basicConfig``, it leaves alone a root logger that someone else configured
    (an embedding application, a test runner): it then sets the levels only."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _Stderr)]
    if ours or not root.handlers:
        for old in ours:
            root.removeHandler(old)
        handler = _Stderr()
        handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
        root.addHandler(handler)
    root.setLevel(level)
    ACCESS.setLevel(logging.INFO if access else logging.NOTSET)


def access_line(
    *,
    method: str,
    route: str,
    status: int,
    latency_ms: float,
    request_id: str,
    key_prefix: str | None,
) -> None:
    """The one access-log line of a request: the fields as JSON fields, and as text."""
    fields = {
        "request_id": request_id,
        "method": method,
        "route": route,
        "status": status,
        "latency_ms": round(latency_ms, 1),
        "key_prefix": key_prefix,
    }
    ACCESS.info(
        "%s %s %d %.1f ms key=%s request=%s",
        method,
        route,
        status,
        latency_ms,
        key_prefix or "-",
        request_id,
        extra=fields,
    )
