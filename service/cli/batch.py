"""``radar ingest|score|rescore``: the batch jobs, in this process or (``--engine ray``) on Ray."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from service.cli.context import open_runtime, settings
from service.cli.options import dataclass_options, option_bundle
from service.cli.output import progress_bar
from service.config import Settings
from service.ingest.mapping import ColumnMapping, MappingError
from service.ingest.readers import ReaderError, count_rows, read_records
from service.store import repo

console = Console(stderr=True)

# --engine ray (and its options) for the batch jobs; Ray is imported only when chosen
EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="local: this process (the default, needs no Ray) | ray: Ray Data and an actor pool "
        "(pip install feedback-radar[ray]); FILE may then also be a directory or a glob.",
    ),
]
AddressOpt = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="With --engine ray: an existing Ray cluster (e.g. auto, HEAD:6379, ray://HEAD:10001); "
        "without it a local Ray instance starts.",
    ),
]
BatchOpt = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        help="With --engine ray: rows per model call and per stored transaction "
        "(default: ingest.chunk_size, as the local engine's chunks).",
    ),
]
ConcurrencyOpt = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        help="With --engine ray: scoring actors, each loading the model once "
        "(default: the cluster's CPUs / --cpus-per-worker).",
    ),
]
CpusPerWorkerOpt = Annotated[
    float,
    typer.Option(
        "--cpus-per-worker",
        help="With --engine ray: CPUs each actor reserves (and its encoder threads).",
    ),
]
NumCpusOpt = Annotated[
    int | None,
    typer.Option(
        "--num-cpus",
        help="With --engine ray and no --address: CPUs of the local Ray instance (default: all).",
    ),
]


@dataclass(frozen=True)
class EngineChoice:
    """--engine and the Ray engine's options, as given."""

    engine: EngineOpt = "local"
    address: AddressOpt = None
    batch_size: BatchOpt = None
    concurrency: ConcurrencyOpt = None
    cpus_per_worker: CpusPerWorkerOpt = 1.0
    num_cpus: NumCpusOpt = None


# --engine and the Ray engine's options, which a command receives as one EngineChoice
# ``engine``: put @engine_options under @app.command
engine_options = option_bundle("engine", dataclass_options(EngineChoice), EngineChoice)


def _ray_options(settings: Settings, choice: EngineChoice):
    """The Ray engine's options, or None for the local engine (options of the Ray engine given
    without it are an error rather than silently ignored)."""
    if choice.engine not in ("local", "ray"):
        console.print(f"[red]error:[/red] --engine must be local or ray, not {choice.engine!r}")
        raise typer.Exit(2)
    if choice.engine == "local":
        given = [
            n
            for n, v in (
                ("--address", choice.address),
                ("--batch-size", choice.batch_size),
                ("--concurrency", choice.concurrency),
                ("--num-cpus", choice.num_cpus),
            )
            if v is not None
        ]
        if given:
            console.print(f"[red]error:[/red] {', '.join(given)} apply only with --engine ray")
            raise typer.Exit(2)
        return None
    try:
        import ray  # noqa: F401  (lazy: optional, and slow to import; only --engine ray needs it)
    except ImportError:
        console.print("[red]error:[/red] --engine ray needs Ray: pip install 'feedback-radar[ray]'")
        raise typer.Exit(2) from None
    # lazy: service.scale.ray_engine pulls in the scoring stack (scipy, ~0.2 s)
    from service.scale.ray_engine import RayOptions

    return RayOptions(
        address=choice.address,
        num_cpus=choice.num_cpus,
        batch_size=choice.batch_size or settings.ingest.chunk_size,
        concurrency=choice.concurrency,
        cpus_per_worker=choice.cpus_per_worker,
    )


def _local_file(file: Path) -> None:
    if not file.is_file():
        console.print(
            f"[red]error:[/red] {file}: no such file (a directory or a glob needs --engine ray)"
        )
        raise typer.Exit(2)


@engine_options
def ingest(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV, JSONL or Parquet file of feedback (with --engine ray also a "
            "directory or a glob of them)."
        ),
    ],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="csv | jsonl | parquet (default: from the extension)."),
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map", help="FIELD=COLUMN: read a dictionary field from another column (repeatable)."
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="FIELD=VALUE: a value for every row, e.g. source=tmall (repeatable)."
        ),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(
            "--mapping", help="YAML file with 'columns', 'defaults', 'ignore'.", exists=True
        ),
    ] = None,
    extra_as_attributes: Annotated[
        bool, typer.Option(help="Unmapped columns become segment attributes (age_group…).")
    ] = True,
    errors_out: Annotated[
        Path | None, typer.Option("--errors", help="Write every rejected row as JSON lines here.")
    ] = None,
    fail_on_reject: Annotated[
        bool, typer.Option(help="Exit with status 3 when any row was rejected.")
    ] = False,
    engine: EngineChoice = EngineChoice(),
):
    """Ingest a file: validate, normalise, detect language, redact, de-duplicate, score and store.

    Idempotent on (source, external_id): re-running after an interruption, or on the same
    file, stores nothing twice and rescoring only what changed.
    """
    ray_opts = _ray_options(settings(ctx), engine)
    try:
        cmap = ColumnMapping.from_pairs(
            map_, set_, mapping, extra_as_attributes=extra_as_attributes
        )
        if ray_opts is None:
            _local_file(file)
            records = read_records(file, fmt)
            total = count_rows(file, fmt)
        else:
            # lazy: service.scale.ray_engine pulls in the scoring stack (scipy, ~0.2 s)
            from service.scale.ray_engine import expand_inputs, total_rows

            expand_inputs(file, fmt)
            total = total_rows(file, fmt)
    except (MappingError, ReaderError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    with open_runtime(ctx) as rt:
        with progress_bar(total, f"ingest {file.name}") as bar:
            if ray_opts is None:
                report = rt.ingest_service(cmap).ingest(
                    records, keep_results=False, on_chunk=bar.update
                )
            else:
                # lazy: service.scale.ray_engine pulls in the scoring stack (scipy, ~0.2 s)
                from service.scale.ray_engine import ingest_with_ray

                report = ingest_with_ray(
                    file,
                    settings=rt.settings,
                    opts=ray_opts,
                    mapping=cmap,
                    input_format=fmt,
                    on_chunk=bar.update,
                )
        for err in report.errors[:50]:
            console.print(f"[yellow]rejected[/yellow] {err}")
        if len(report.errors) > 50:
            console.print(
                f"… and {len(report.errors) - 50} more rejected rows"
                + (
                    f" (all in {errors_out})"
                    if errors_out
                    else " (use --errors FILE to keep them all)"
                )
            )
        if errors_out:
            with open(errors_out, "w", encoding="utf-8") as fh:
                for err in report.errors:
                    fh.write(json.dumps(err.as_dict(), ensure_ascii=False) + "\n")
        c = report.counts
        rt.refresh_rollups()
        typer.echo(
            json.dumps(
                {
                    "file": str(file),
                    **c,
                    "linked_as_duplicates": report.linked,
                    "stored_total": _count(rt),
                }
            )
        )
    if fail_on_reject and c["rejected"]:
        raise typer.Exit(3)


def _count(rt) -> int:
    with rt.sessions() as s:
        return repo.count_feedback(s)


@engine_options
def score(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV, JSONL or Parquet input (with --engine ray also a directory "
            "or a glob of them, scored into one output in order)."
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Output file; its extension picks CSV, JSONL or Parquet."
        ),
    ],
    text_column: Annotated[str, typer.Option(help="Column that holds the text.")] = "text",
    fmt: Annotated[
        str | None, typer.Option("--format", help="Input format (default: from the extension).")
    ] = None,
    output_format: Annotated[
        str | None, typer.Option(help="Output format (default: from the extension).")
    ] = None,
    chunk_size: Annotated[
        int | None, typer.Option(help="Rows per chunk (default: ingest.chunk_size).")
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Ignore a previous interrupted run and start over.")
    ] = False,
    engine: EngineChoice = EngineChoice(),
):
    """Batch scoring: score every row of a file into a new file, storing nothing.

    Every input column is kept; added: sentiment, sentiment_score, p_negative, p_neutral,
    p_positive, aspects (JSON list of {aspect, confidence, sentiment, sentiment_score,
    evidence}), language, model_version, error. An interrupted run resumes where it stopped.
    """
    # lazy: service.jobs.score_file pulls in the scoring stack (scipy, ~0.2 s)
    from service.jobs.score_file import ScoreOptions, score_file

    s = settings(ctx)
    options = ScoreOptions(text_column, fmt, output_format, resume=not restart)
    ray_opts = _ray_options(s, engine)
    if ray_opts is not None and engine.batch_size is None and chunk_size:
        ray_opts = replace(ray_opts, batch_size=chunk_size)
    try:
        with open_runtime(ctx) as rt:
            if ray_opts is not None:
                # lazy: the Ray engine's module is needed with --engine ray only
                from service.scale.ray_engine import score_with_ray, total_rows

                with progress_bar(total_rows(file, fmt), f"score {file.name}") as bar:
                    rep = score_with_ray(
                        file,
                        output,
                        settings=s,
                        opts=ray_opts,
                        model_version=rt.registry.pipeline_version(s.scorer),
                        options=replace(options, on_chunk=bar.update),
                    )
            else:
                _local_file(file)
                with progress_bar(count_rows(file, fmt), f"score {file.name}") as bar:
                    rep = score_file(
                        file,
                        output,
                        scorer=rt.scorer,
                        detector=rt.detector,
                        options=replace(options, on_chunk=bar.update),
                        chunk_size=chunk_size or s.ingest.chunk_size,
                        max_text_chars=s.limits.max_text_chars,
                    )
    except ReaderError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    typer.echo(
        json.dumps(
            {
                "output": str(rep.output),
                "rows": rep.rows,
                "scored": rep.scored,
                "errors": rep.errors,
                "resumed_from_row": rep.resumed_from,
            }
        )
    )


def rescore(ctx: typer.Context):
    """Rescore stored items whose score is missing or from another model version (or taxonomy)."""
    # lazy: service.jobs.ingest pulls in the scoring stack (scipy, ~0.2 s)
    from service.jobs.ingest import rescore as run_rescore

    with open_runtime(ctx) as rt:
        version = rt.scorer.version
        with rt.sessions() as s:
            stale = repo.count_stale(s, model_version=version)
        with progress_bar(stale, "rescore", "item") as bar:
            n = run_rescore(
                sessions=rt.sessions,
                scorer=rt.scorer,
                chunk_size=rt.settings.ingest.chunk_size,
                on_chunk=bar.update,
            )
        rt.refresh_rollups()
        typer.echo(json.dumps({"rescored": n, "model_version": version}))
