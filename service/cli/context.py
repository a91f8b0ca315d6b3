"""What every command shares: the settings that the ``radar`` callback read, and the runtime
built on them (``with open_runtime(ctx) as rt:`` closes it when the command is done)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from service.config import Settings

if TYPE_CHECKING:
    from service.runtime import Runtime


class State:
    settings: Settings


def settings(ctx: typer.Context) -> Settings:
    """The settings of this command (from the options of ``radar`` and the environment)."""
    return ctx.obj.settings


def open_runtime(ctx: typer.Context) -> Runtime:
    """The runtime for this command's settings, to use as ``with open_runtime(ctx) as rt:``."""
    # lazy: service.runtime pulls in scipy and the model registry (~0.3 s), too slow for --help
    from service.runtime import Runtime

    return Runtime(settings(ctx))
