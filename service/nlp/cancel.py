"""Cooperative cancellation of model work: a caller that stops waiting (the API's model timeout)
sets an event, and the work stops at its next check (between encoder batches, between ingest
chunks) instead of running on in the background. What was stored before stays stored."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_current: ContextVar[threading.Event | None] = ContextVar("radar_cancel", default=None)


class Cancelled(RuntimeError):
    """The work was cancelled by whoever was waiting for it."""


def check() -> None:
    """Raise ``Cancelled`` if the work running in this context was cancelled."""
    event = _current.get()
    if event is not None and event.is_set():
        raise Cancelled("cancelled")


@contextmanager
def cancellable(event: threading.Event) -> Iterator[None]:
    """Run the block under ``event``: once it is set, ``check()`` raises inside the block."""
    token = _current.set(event)
    try:
        yield
    finally:
        _current.reset(token)
