"""The Ray engine for the batch jobs: ``radar score|ingest --engine ray``.

Ray Data reads the input (CSV, JSONL or Parquet files; a directory or a glob of them) with
Radar's own readers, so rows parse exactly as in the local engine (every CSV value a string,
the same row numbers and per-row errors), in blocks of ``batch_size`` rows that never span two
files. An actor pool (``map_batches`` with a callable class, ``concurrency`` actors of
``cpus_per_worker`` CPUs each) loads the model once per actor and processes one block per call:

score   the block goes through ``score_records``, the local engine's per-chunk logic, and the
        rows come back to the driver in input order, which appends them to the output with
        ``ScoredOutput`` (CSV, JSONL or Parquet) and records after each block the position
        reached (file, record). A re-run after an interruption reads on from there: nothing
        scored twice, nothing duplicated or missing.
ingest  the block goes through ``IngestService.ingest_chunk``: validated, prepared, skipped
        when stored as is, scored and written in one transaction per block, idempotently by
        ``(source, external_id)``. The store is the checkpoint, as in the local engine: a re-run
        stores nothing twice and scores only what was not stored.

A row's scores do not depend on its block (the int8 encoder quantises each token on its own),
so the Ray engine gives the local engine's scores row for row whatever either's block size.

Ray is imported only here, and only when a job runs (``pip install feedback-radar[ray]``).
``address`` joins an existing cluster (``ray start --head`` …); without it a local instance
starts with ``num_cpus`` CPUs. On a cluster every node needs the same package, configs and
``radar models build``, the input on a path every node sees, and a PostgreSQL store for ingest.
"""

from __future__ import annotations

import glob
import logging
import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from service.ingest.readers import ReaderError, RowError, count_rows, detect_format, read_records
from service.jobs.ingest import IngestReport, chunked
from service.jobs.score_file import (
    ScoreFileReport,
    ScoreOptions,
    file_signature,
    score_records,
)
from service.runtime import Runtime

if TYPE_CHECKING:
    from service.config import Settings
    from service.ingest.mapping import ColumnMapping

# what a directory contributes: not .json, which is as often one document as JSON lines
# (a glob or a file of its own may still name one)
_SUFFIXES = {".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".pq"}


@dataclass(frozen=True)
class RayOptions:
    address: str | None = (
        None  # an existing cluster ("auto", "ray://host:10001", "host:6379"); None: start one
    )
    num_cpus: int | None = None  # CPUs of a local instance (None: all of this machine)
    batch_size: int = 512  # rows per block = per model call
    concurrency: int | None = None  # actors (None: one per cpus_per_worker CPUs of the cluster)
    cpus_per_worker: float = 1.0  # CPUs each actor reserves (and the encoder's threads)
    ray_init: dict[str, Any] = field(default_factory=dict)  # further ray.init arguments


def expand_inputs(spec: str | Path, fmt: str | None = None) -> list[Path]:
    """A file, a directory (its CSV/TSV, JSONL/NDJSON and Parquet files, sorted; with ``fmt``
    every file) or a glob (sorted), as files."""
    s = str(spec)
    p = Path(s)
    if p.is_dir():
        files = sorted(
            f for f in p.iterdir() if f.is_file() and (fmt or f.suffix.lower() in _SUFFIXES)
        )
    elif p.is_file():
        files = [p]
    else:
        files = sorted(Path(f) for f in glob.glob(s, recursive=True) if Path(f).is_file())
    if not files:
        raise ReaderError(f"{spec}: no such file, directory or matching files")
    for f in files:
        detect_format(f, fmt)  # every file's format is known before anything starts
    return files


# --- Ray plumbing ------------------------------------------------------------------------------


@contextmanager
def ray_session(opts: RayOptions) -> Iterator[None]:
    """Ray connected (to ``opts.address``) or started locally for the job; shut down after if
    this call started it. Usage statistics stay off: nothing leaves the machine."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    import ray  # optional extra (--engine ray): imported only when used

    started = False
    if not ray.is_initialized():
        kw: dict[str, Any] = {
            "include_dashboard": False,
            "logging_level": logging.WARNING,
            "log_to_driver": False,
            **opts.ray_init,
        }
        if opts.address:
            ray.init(address=opts.address, **kw)
        else:
            ray.init(num_cpus=opts.num_cpus, **kw)
        started = True
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # the job's bar says how far it is
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def _datasource(files: list[Path], fmt: str | None, chunk_rows: int, start: tuple[int, int]):
    """A Ray Data datasource over ``files`` from ``start`` = (file index, records to skip):
    one read task per file, and one dataset row per chunk of ``chunk_rows`` records, with
    columns ``_file``, ``_end`` (the index in its file of the record after the chunk) and
    ``_chunk`` (the ``(row number, record or RowError)`` pairs as the reader gave them,
    pickled: values keep their exact types). A chunk is the unit of work whatever blocks
    Ray Data makes of the rows (it merges and splits blocks freely), so every model call
    sees exactly the chunk the local engine would."""
    from ray.data.block import (
        BlockMetadata,  # optional extra (--engine ray): imported only when used
    )
    from ray.data.datasource import (  # optional extra (--engine ray): imported only when used
        Datasource,
        ReadTask,
    )

    first_file, skip = start

    def read(index: int, path: Path, skip_n: int):
        import pyarrow as pa  # Parquet only: slow to import

        records = ((seq, rec) for seq, rec in enumerate(read_records(path, fmt)) if seq >= skip_n)
        for chunk in chunked(records, chunk_rows):
            yield pa.table(
                {
                    "_file": pa.array([index], pa.int32()),
                    "_end": pa.array([chunk[-1][0] + 1], pa.int64()),
                    "_chunk": pa.array([pickle.dumps([rec for _, rec in chunk])], pa.binary()),
                }
            )

    class FeedbackFiles(Datasource):
        def get_name(self) -> str:
            return "FeedbackFiles"

        def estimate_inmemory_data_size(self) -> int | None:
            return sum(f.stat().st_size for f in files[first_file:])

        def get_read_tasks(
            self, parallelism: int, per_task_row_limit: int | None = None, data_context=None
        ) -> list[ReadTask]:
            tasks = []
            for i in range(first_file, len(files)):
                meta = BlockMetadata(
                    num_rows=None,
                    size_bytes=files[i].stat().st_size,
                    input_files=[str(files[i])],
                    exec_stats=None,
                )
                tasks.append(
                    ReadTask(
                        lambda i=i: read(i, files[i], skip if i == first_file else 0),
                        meta,
                        per_task_row_limit=per_task_row_limit,
                    )
                )
            return tasks

    return FeedbackFiles()


def _dataset(files, fmt, opts: RayOptions, start: tuple[int, int], actor: type, ctor: dict):
    import ray  # optional extra (--engine ray): imported only when used
    from ray.data import (  # optional extra (--engine ray): imported only when used
        ActorPoolStrategy,
        DataContext,
    )

    ctx = DataContext.get_current()
    ctx.execution_options.preserve_order = True  # chunks come back in input order: a prefix is done
    ctx.enable_progress_bars = False  # the job's own bar counts rows
    ctx.print_on_execution_start = False
    # a chunk is one row and must be one block: Ray Data would otherwise merge rows into blocks
    # of up to 128 MiB (a whole file), so one actor call would take them all, in order, and give
    # back nothing (no output, no checkpoint, no progress) until the last one was scored
    ctx.target_max_block_size = 1
    ctx.target_min_block_size = 1
    ds = ray.data.read_datasource(_datasource(files, fmt, opts.batch_size, start), num_cpus=0)
    size = opts.concurrency or max(
        1, int(ray.cluster_resources().get("CPU", 1) // opts.cpus_per_worker)
    )
    # one chunk per call: a model call per chunk, and progress as each one lands
    return ds.map_batches(
        actor,
        fn_constructor_kwargs=ctor,
        batch_size=1,
        batch_format="pyarrow",
        compute=ActorPoolStrategy(size=size),
        num_cpus=opts.cpus_per_worker,
    )


def _worker_settings(settings: Settings, cpus: float) -> Settings:
    """What an actor runs with: the driver's settings (same taxonomy, model, salt, store), a
    SQLite path made absolute (actors may not share the driver's working directory), and the
    encoder's threads matched to the CPUs the actor holds."""
    update: dict[str, Any] = {
        "scoring": settings.scoring.model_copy(update={"threads": max(1, int(cpus))})
    }
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        update["database_url"] = url.set(
            database=str(Path(url.database).expanduser().resolve())
        ).render_as_string(hide_password=False)
    return settings.model_copy(update=update)


class _ChunkActor:
    """Calls ``process`` on each chunk of a batch; what it returns goes back pickled with the
    chunk's position. Its state (the model) is built at the first chunk, once per actor."""

    def process(self, chunk: list[tuple[int, dict | RowError]], index: int):  # pragma: no cover
        raise NotImplementedError

    def __call__(self, batch):
        import pyarrow as pa  # Parquet only: slow to import

        files = batch.column("_file").to_pylist()
        out = [
            pickle.dumps(self.process(pickle.loads(raw), index))
            for raw, index in zip(batch.column("_chunk").to_pylist(), files)
        ]
        return pa.table(
            {
                "_file": batch.column("_file"),
                "_end": batch.column("_end"),
                "_out": pa.array(out, pa.binary()),
            }
        )


class ScoreActor(_ChunkActor):
    def __init__(self, settings: Settings, text_column: str, names: list[str] | None):
        self.settings = settings
        self.text_column = text_column
        self.names = names  # file names, to say where a bad row is when there are several
        self._runtime = None

    def process(self, chunk, index):
        if self._runtime is None:
            self._runtime = Runtime(self.settings)
        rt = self._runtime
        rows, _ = score_records(
            chunk,
            scorer=rt.scorer,
            detector=rt.detector,
            text_column=self.text_column,
            max_text_chars=self.settings.limits.max_text_chars,
            where=f"{self.names[index]}: " if self.names else "",
        )
        return rows


class IngestActor(_ChunkActor):
    def __init__(self, settings: Settings, mapping: ColumnMapping | None):
        self.settings = settings
        self.mapping = mapping
        self._service = None

    def process(self, chunk, index):
        if self._service is None:
            self._service = Runtime(self.settings).ingest_service(self.mapping)
        self._service.chunk_size = max(
            self._service.chunk_size, len(chunk)
        )  # one transaction per chunk
        return self._service.ingest(chunk, keep_results=False)


# --- jobs --------------------------------------------------------------------------------------


def score_with_ray(
    inputs: str | Path,
    output_path: Path,
    *,
    settings: Settings,
    opts: RayOptions,
    model_version: str,
    options: ScoreOptions = ScoreOptions(),
) -> ScoreFileReport:
    """``radar score --engine ray``: the same output as ``score_file`` (one output for all
    inputs, in input order), scored by an actor pool. ``model_version`` (the driver's
    ``scorer.version``, known without loading the model) is part of the resume signature."""
    text_column, input_format = options.text_column, options.input_format
    files = expand_inputs(inputs, input_format)
    output_path = Path(output_path)
    out = options.output(
        output_path,
        {
            "inputs": [file_signature(f) for f in files],
            "model_version": model_version,
            "engine": "ray",
        },
    )
    start = (out.position["file"], out.position["records"]) if out.position else (0, 0)
    resumed_from = sum(_count(f, input_format) for f in files[: start[0]]) + start[1]
    options.done(resumed_from)
    rows = resumed_from
    scored = errors = 0
    with ray_session(opts):
        ds = _dataset(
            files,
            input_format,
            opts,
            start,
            ScoreActor,
            {
                "settings": _worker_settings(settings, opts.cpus_per_worker),
                "text_column": text_column,
                "names": [f.name for f in files] if len(files) > 1 else None,
            },
        )
        with closing(_results(ds)) as results:
            for index, end, out_rows in results:
                n_err = sum(1 for r in out_rows if r.get("error"))
                out.write(out_rows, {"file": index, "records": end})
                rows += len(out_rows)
                errors += n_err
                scored += len(out_rows) - n_err
                options.done(len(out_rows))
    out.finish(text_column)
    return ScoreFileReport(rows, scored, errors, resumed_from, output_path)


def _results(ds) -> Iterator[tuple[int, int, Any]]:
    """``(file index, end record, what the actor returned)`` per chunk, in input order. When
    the caller stops (an error, Ctrl-C), the execution is closed at once: nothing runs on."""
    blocks = iter(
        ds.iter_batches(batch_size=None, batch_format="pyarrow")
    )  # a generator: close() ends it
    try:
        for block in blocks:
            for index, end, raw in zip(
                block.column("_file").to_pylist(),
                block.column("_end").to_pylist(),
                block.column("_out").to_pylist(),
            ):
                yield index, end, pickle.loads(raw)
    finally:
        blocks.close()


def _count(path: Path, fmt: str | None) -> int:
    """Records in a file as the reader yields them (blank lines skipped): exact, for resuming."""
    return sum(1 for _ in read_records(path, fmt))


def ingest_with_ray(
    inputs: str | Path,
    *,
    settings: Settings,
    opts: RayOptions,
    mapping: ColumnMapping | None = None,
    input_format: str | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> IngestReport:
    """``radar ingest --engine ray``: every block validated, prepared, scored and stored by an
    actor, one transaction per block; idempotent on ``(source, external_id)``."""
    files = expand_inputs(inputs, input_format)
    worker = _worker_settings(settings, opts.cpus_per_worker)
    rt = Runtime(worker)
    _ = rt.engine  # the schema is migrated once, here, before any actor writes
    rt.close()
    report = IngestReport(keep_results=False)
    with ray_session(opts):
        ds = _dataset(
            files, input_format, opts, (0, 0), IngestActor, {"settings": worker, "mapping": mapping}
        )
        with closing(_results(ds)) as results:
            for index, _, part in results:
                for k, v in part.counts.items():
                    report.counts[k] += v
                report.linked += part.linked
                for err in part.errors:
                    if len(files) > 1:
                        err.reason = f"{files[index].name}: {err.reason}"
                    report.errors.append(err)
                if on_chunk:
                    on_chunk(sum(part.counts.values()))
    return report


def total_rows(inputs: str | Path, fmt: str | None = None) -> int | None:
    """For the progress bar: the cheap row count of every input (None when unknown)."""
    try:
        return sum(count_rows(f, fmt) or 0 for f in expand_inputs(inputs, fmt))
    except (ReaderError, OSError):
        return None
