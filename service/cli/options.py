"""Options that travel together: a decorator puts a bundle of options where one parameter of a
command stands, on the command line and in ``--help``, and hands the command them as one value
(a filter, an engine's settings) instead of each command threading them one by one."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Sequence
from typing import Any

# (parameter name, its type annotated with its typer.Option, its default)
Option = tuple[str, Any, Any]


def option_bundle(
    param: str, options: Sequence[Option], combine: Callable[..., Any]
) -> Callable[[Callable], Callable]:
    """A decorator for a Typer command: its parameter ``param`` becomes ``options``, which the
    command receives as one value, ``combine(**values)``. Put it under ``@app.command``."""

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command, eval_str=True)
        params = []
        for p in signature.parameters.values():
            if p.name == param:
                params += [
                    inspect.Parameter(name, p.kind, annotation=annotation, default=default)
                    for name, annotation, default in options
                ]
            else:
                params.append(p)

        @functools.wraps(command)
        def bundled(**kwargs):
            values = {name: kwargs.pop(name) for name, _, _ in options}
            return command(**kwargs, **{param: combine(**values)})

        bundled.__signature__ = signature.replace(parameters=params)
        bundled.__annotations__ = {p.name: p.annotation for p in params}
        return bundled

    return decorate


def dataclass_options(cls: type) -> list[Option]:
    """The options of a dataclass whose fields are annotated for Typer (``name: NameOpt = 1``)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return [(f.name, hints[f.name], f.default) for f in dataclasses.fields(cls)]
