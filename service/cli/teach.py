"""``radar labels import|export``, ``radar train`` and ``radar models list|show|promote|rollback``:
teaching Radar a team's domain from the command line (the same services as the API)."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from service.cli.context import open_runtime
from service.cli.output import FormatOpt, chosen, emit, progress_bar
from service.ingest.readers import ReaderError, count_rows, read_records
from service.store import labels as store
from service.store.repo import count_stale
from service.teach.labels import export_rows, import_labels

labels_app = typer.Typer(help="Import and export a team's labels.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)
ACTOR = f"cli:{os.environ.get('USER', 'unknown')}"


@labels_app.command("import")
def labels_import(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV or JSONL: id (or source + external_id), sentiment, aspects "
            "(aspect[:sentiment] list), optionally absent."
        ),
    ],
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv | jsonl (default: from the extension).")
    ] = None,
    partial: Annotated[
        bool,
        typer.Option(
            "--partial",
            help="Label only the aspects listed (default: the list is "
            "complete and every other aspect is labeled absent).",
        ),
    ] = False,
    errors_out: Annotated[
        Path | None, typer.Option("--errors", help="Write every rejected row as JSON lines here.")
    ] = None,
):
    """Import labels; one error per bad row (the good rows are stored), idempotent."""
    if not file.is_file():
        err.print(f"[red]error:[/red] {file}: no such file")
        raise typer.Exit(2)
    with open_runtime(ctx) as rt:
        try:
            records = read_records(file, fmt)
            total = count_rows(file, fmt)
            with progress_bar(total, f"labels {file.name}") as bar:
                report = import_labels(
                    rt.sessions,
                    records,
                    taxonomy=rt.settings.taxonomy,
                    actor=ACTOR,
                    now=datetime.now(UTC),
                    partial=partial,
                    on_chunk=bar.update,
                )
        except ReaderError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        for e in report.errors[:50]:
            err.print(f"[yellow]rejected[/yellow] {e}")
        if errors_out:
            errors_out.write_text(
                "".join(json.dumps(e.as_dict(), ensure_ascii=False) + "\n" for e in report.errors),
                encoding="utf-8",
            )
        typer.echo(json.dumps({"file": str(file), **report.as_dict()}))


@labels_app.command("export")
def labels_export(
    ctx: typer.Context,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="JSONL file (default: standard output).")
    ] = None,
):
    """Every labeled item's labels as JSON lines, in the import format."""
    with open_runtime(ctx) as rt:
        fh = open(output, "w", encoding="utf-8") if output else sys.stdout
        n = 0
        try:
            with rt.sessions() as s:
                for row in export_rows(s):
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                    n += 1
        finally:
            if output:
                fh.close()
        if output:
            typer.echo(json.dumps({"output": str(output), "items": n}))


def train(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Name of the team model (default: team-<UTC time>)."),
    ] = None,
    promote: Annotated[
        bool,
        typer.Option(
            "--promote", help="Promote it when its report is no worse than the generic model's."
        ),
    ] = False,
):
    """Train a team model on every label (and rated items as weak labels), cross-validate it
    against the generic model and store it; it serves only once promoted."""
    # lazy: service.teach.service pulls in the training stack (scipy, ~0.3 s)
    from service.teach.service import TeachError

    with open_runtime(ctx) as rt:
        bar = progress_bar(None, "train", "step")

        def progress(stage: str, done: int, total: int) -> None:
            bar.set_description(stage)
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            with bar:
                m = rt.train_team_model(name=name, actor=ACTOR, progress=progress)
        except TeachError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        _print_report(m)
        result = {
            "model": m["name"],
            "sha256": m["sha256"],
            "seconds": m["params"]["seconds"],
            "labels": m["params"]["labels"]["items"],
            "report": _headline(m["report"]),
        }
        if promote:
            try:
                result["serving"] = rt.promote_model(m["name"], actor=ACTOR)
            except TeachError as exc:
                err.print(f"[yellow]not promoted:[/yellow] {exc}")
        typer.echo(json.dumps(result, default=str))


def _headline(report: dict) -> dict:
    out = {}
    for target, key in (
        ("sentiment", "macro_f1"),
        ("aspects", "f1"),
        ("aspect_sentiment", "macro_f1"),
    ):
        if target in report:
            out[target] = {
                "generic": report[target]["generic"][key],
                "team": report[target]["team"][key],
                "metric": key,
            }
    return out


def _print_report(m: dict) -> None:
    r = m["report"]
    t = Table(
        title=f"{m['name']}: {r['folds']}-fold cross-validation on {r['items']} labeled items"
    )
    for c in ("target", "n", "generic", "team"):
        t.add_column(c)

    def compared(target: str, n: str, part: dict, metric: str) -> None:
        t.add_row(target, n, str(part["generic"][metric]), str(part["team"][metric]))

    if "sentiment" in r:
        s = r["sentiment"]
        compared("sentiment macro-F1", str(s["n"]), s, "macro_f1")
        compared("sentiment ECE", "", s, "ece")
    if "aspects" in r:
        a = r["aspects"]
        compared("aspects micro-F1", str(a["pairs"]), a, "f1")
        compared("aspects false positives", "", a, "false_positives")
        for aid, v in a["per_aspect"].items():
            t.add_row(f"  {aid} F1", str(v["labels"]), _f(v["generic"]["f1"]), _f(v["team"]["f1"]))
    if "aspect_sentiment" in r:
        s = r["aspect_sentiment"]
        compared("aspect sentiment macro-F1", str(s["n"]), s, "macro_f1")
    err.print(t)


def _f(v) -> str:
    return "–" if v is None else str(v)  # no gold and no tag: nothing to measure


def models_list(ctx: typer.Context, fmt: FormatOpt = None):
    """The team models, their headline figures (generic → team) and which one serves."""
    # lazy: service.teach.service pulls in the training stack (scipy, ~0.3 s)
    from service.teach.service import summary

    with open_runtime(ctx) as rt:
        with rt.sessions() as s:
            key = store.promoted_key(s)
            rows = [
                summary(r, serving=bool(key and key[0] == r.name)) for r in store.team_models(s)
            ]
        models = [
            {
                "name": m["name"],
                "serving": m["serving"],
                "created_at": m["created_at"],
                "labels": m["params"].get("labels", {}).get("items"),
                "report": _headline(m["report"]),
            }
            for m in rows
        ]
        serving = rt.serving()

    def fig(m: dict, target: str) -> str:
        h = m["report"].get(target)
        return "–" if h is None else f"{h['generic']} → {h['team']}"

    emit(
        chosen(fmt),
        data={"models": models, "serving": serving},
        title=f"Team models (serving: {serving['model']}, {serving['model_version']})",
        columns=[
            "name",
            "serving",
            "created",
            "labels",
            "sentiment macro-F1",
            "aspects F1",
            "aspect sentiment F1",
        ],
        rows=[
            [
                m["name"],
                "yes" if m["serving"] else "",
                str(m["created_at"])[:16],
                str(m["labels"] or 0),
                fig(m, "sentiment"),
                fig(m, "aspects"),
                fig(m, "aspect_sentiment"),
            ]
            for m in models
        ],
    )


def models_show(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Team model name.")]):
    """One team model's full report."""
    # lazy: service.teach.service pulls in the training stack (scipy, ~0.3 s)
    from service.teach.service import summary

    with open_runtime(ctx) as rt, rt.sessions() as s:
        row = store.team_model(s, name=name)
        if row is None:
            err.print(f"[red]error:[/red] no team model {name!r}")
            raise typer.Exit(2)
        m = summary(row)
    _print_report(m)
    typer.echo(json.dumps(m, default=str))


def models_promote(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(help="Team model name, or `generic` for the generic model.")
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Even if its report is worse than the generic model's.")
    ] = False,
):
    """Score new items with this model (`radar rescore` rescores the stored ones)."""
    # lazy: the model registry and service.teach.service pull in scipy (~0.3 s)
    from service.nlp.registry import ModelError
    from service.teach.service import TeachError

    with open_runtime(ctx) as rt:
        try:
            serving = rt.promote_model(name, actor=ACTOR, force=force)
        except KeyError:
            err.print(f"[red]error:[/red] no team model {name!r}")
            raise typer.Exit(2) from None
        except (TeachError, ModelError) as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(3) from None
        with rt.sessions() as s:
            serving["stale_items"] = count_stale(s, model_version=serving["model_version"])
    typer.echo(json.dumps(serving))


def models_rollback(ctx: typer.Context):
    """Stop serving the promoted team model: the one promoted before it serves again (or the generic one)."""
    with open_runtime(ctx) as rt:
        typer.echo(json.dumps(rt.rollback_model(actor=ACTOR)))
