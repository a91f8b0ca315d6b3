"""Jobs stopped part-way: an ``on_chunk`` callback that raises once enough chunks are done."""

from __future__ import annotations

from collections.abc import Callable


class Boom(Exception):
    """The interruption."""


def stop_at(chunk: int) -> Callable[[int], None]:
    """An ``on_chunk`` that raises ``Boom`` when it is called for the ``chunk``-th time."""
    calls = 0

    def on_chunk(_n: int) -> None:
        nonlocal calls
        calls += 1
        if calls == chunk:
            raise Boom()

    return on_chunk
