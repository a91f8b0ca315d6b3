"""``radar demo-data`` and ``radar demo``: the seeded demo data set, and the whole demo (data,
ingest, summary, dashboard link, then the API)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from service.cli.context import open_runtime
from service.cli.keys import rotate_demo_key
from service.cli.serve import serve
from service.demo.generator import DemoConfig, write_demo

out = Console()


def demo_data(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="CSV, JSONL or Parquet file to write.")
    ],
    weeks: Annotated[int, typer.Option(help="Weeks of feedback.")] = 26,
    per_week: Annotated[int, typer.Option(help="Items per week (all brands).")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed writes the same data.")] = 7,
    truth: Annotated[
        Path | None,
        typer.Option(help="Where to write the ground truth JSON (default: OUTPUT.truth.json)."),
    ] = None,
):
    """Write the seeded demo data set (English and Chinese, 3 brands, injected effects)."""
    cfg = DemoConfig(weeks=weeks, per_week=per_week, seed=seed)
    info = write_demo(output, cfg, truth_path=truth)
    typer.echo(json.dumps(info))


def demo(
    ctx: typer.Context,
    serve_api: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the API after the summary.")
    ] = True,
    per_week: Annotated[
        int, typer.Option(help="Items per week in the generated data (all brands).")
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed of the generated data.")] = 7,
    workdir: Annotated[Path, typer.Option(help="Where the demo data is written.")] = Path(
        "demo_data"
    ),
):
    """Generate the demo data, ingest and score it, print a summary, then serve the API."""
    # lazy: service.demo.run pulls in the scoring and analytics stack (scipy, ~0.3 s)
    from service.demo.run import run_demo

    with open_runtime(ctx) as rt:
        run_demo(rt, workdir=workdir, per_week=per_week, seed=seed, console=Console(width=110))
        api = rt.settings.api
        if api.auth:
            key = rotate_demo_key(rt)
            out.print(
                f"\n[bold]Admin API key[/bold] (shown once; the previous demo key is revoked): {key}\n"
                f"  e.g. curl -H 'Authorization: Bearer {key}' http://{api.host}:{api.port}"
                "/v1/alerts\n  more keys: radar keys create --role viewer --region East",
                soft_wrap=True,
            )
    base = f"http://{api.host}:{api.port}/dashboard/"
    # the key rides in the fragment, which the browser keeps to itself: the page stores it
    # and removes it from the address bar
    link = f"{base}#key={key}" if api.auth else base
    out.print(
        f"\n[bold]Dashboard[/bold]{'' if serve_api else ' (after `radar serve`)'}: {link}",
        soft_wrap=True,
    )
    if serve_api:
        ctx.invoke(serve, ctx=ctx)
