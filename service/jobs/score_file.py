"""The batch scoring job: score a file into CSV, JSONL or Parquet without storing anything.

Every input column is kept and the score columns are added; a row that cannot be scored
keeps its place in the output with the reason in the ``error`` column. The job streams
in chunks and records its progress beside the output (``OUT.progress.json``) after each
chunk is durably written: a re-run after an interruption truncates the output to the last
recorded chunk and carries on, so nothing is duplicated or missing.

CSV output is opened in spreadsheets, and feedback text is written by strangers: a text
cell that a spreadsheet would read as a formula (it starts with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return) is written with a leading ``'`` (:func:`csv_cell`, the OWASP
advice for CSV injection). Numbers stay numbers, so a sentiment score of ``-0.5`` (or an
input cell ``-7``) is written as it is. JSONL and Parquet keep every value unchanged.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.domain import Sentiment
from service.ingest.language import LanguageDetector
from service.ingest.normalize import normalize_text
from service.ingest.readers import RowError, detect_format, read_records
from service.jobs.ingest import chunked
from service.nlp.pipeline import Scorer

# a probability column per sentiment class: p_negative, p_neutral, p_positive
PROBABILITY_COLUMNS = {f"p_{s}": s for s in Sentiment}
SCORE_COLUMNS = [
    "sentiment",
    "sentiment_score",
    *PROBABILITY_COLUMNS,
    "aspects",
    "language",
    "model_version",
    "error",
]


@dataclass
class ScoreFileReport:
    rows: int
    scored: int
    errors: int
    resumed_from: int
    output: Path


class _Progress:
    def __init__(self, output: Path):
        self.path = output.with_name(output.name + ".progress.json")

    def load(self) -> dict | None:
        if not self.path.exists():
            return None
        try:
            return json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def save(self, state: dict) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def file_signature(path: Path) -> dict:
    st = path.stat()
    return {"input": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


# What makes a spreadsheet read a cell as a formula, plus the full-width forms some spreadsheet
# versions convert to them.
FORMULA_START = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def csv_cell(value: Any) -> Any:
    """``value`` as a CSV cell that no spreadsheet runs: a text starting like a formula gets a
    leading ``'``; numbers, and texts that are plain numbers (CSV input is read as text), are
    left alone."""
    if isinstance(value, str) and value[:1] in FORMULA_START and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


class _TextWriter:
    """CSV or JSONL output appended chunk by chunk; ``tell()`` is the durable byte offset."""

    def __init__(self, path: Path, fmt: str, columns: list[str] | None, offset: int | None):
        self.fmt = fmt
        self.columns = columns
        mode = "r+b" if offset is not None and path.exists() else "wb"
        self.fh = open(path, mode)
        if offset is not None and mode == "r+b":
            self.fh.seek(offset)
            self.fh.truncate()
        self.header_written = offset is not None and offset > 0

    def write(self, rows: list[dict]) -> None:
        if self.fmt == "jsonl":
            data = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)
            self.fh.write(data.encode("utf-8"))
        else:
            buf = io.StringIO()
            # CRLF rows (RFC 4180): the csv module then quotes a cell holding a carriage return,
            # which with "\n" rows it writes bare, splitting the row in two for any reader.
            w = csv.DictWriter(
                buf, fieldnames=self.columns, extrasaction="ignore", lineterminator="\r\n"
            )
            if not self.header_written:
                w.writeheader()
                self.header_written = True
            w.writerows({k: csv_cell(v) for k, v in r.items()} for r in rows)
            self.fh.write(buf.getvalue().encode("utf-8", errors="surrogateescape"))
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def tell(self) -> int:
        return self.fh.tell()

    def finish(self) -> None:
        self.fh.close()


class _ParquetWriter:
    """Each chunk becomes a part file; the parts are merged into one file at the end."""

    def __init__(self, path: Path, resume_parts: int | None):
        self.path = path
        self.parts = path.with_name(path.name + ".parts")
        if resume_parts is None and self.parts.exists():
            shutil.rmtree(self.parts)
        self.parts.mkdir(parents=True, exist_ok=True)
        self.n = resume_parts or 0
        for extra in sorted(self.parts.glob("part-*.parquet"))[self.n :]:
            extra.unlink()

    def write(self, rows: list[dict]) -> None:
        import pyarrow as pa  # Parquet only: slow to import
        import pyarrow.parquet as pq  # Parquet only: slow to import

        tmp = self.parts / f"part-{self.n:06d}.tmp"
        pq.write_table(pa.Table.from_pylist(rows), tmp)
        os.replace(tmp, self.parts / f"part-{self.n:06d}.parquet")
        self.n += 1

    def tell(self) -> int:
        return self.n

    def finish(self) -> None:
        import pyarrow as pa  # Parquet only: slow to import
        import pyarrow.parquet as pq  # Parquet only: slow to import

        files = sorted(self.parts.glob("part-*.parquet"))
        schema = (
            pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
            if files
            else pa.schema([(c, pa.string()) for c in SCORE_COLUMNS])
        )
        tmp = self.path.with_name(self.path.name + ".tmp")
        with pq.ParquetWriter(tmp, schema) as w:
            for f in files:
                w.write_table(
                    pq.read_table(f).cast(schema)
                    if pq.read_schema(f) != schema
                    else pq.read_table(f)
                )
        os.replace(tmp, self.path)
        shutil.rmtree(self.parts)


def _score_columns(sc) -> dict[str, Any]:
    s = sc.score
    return {
        "sentiment": s.sentiment.value,
        "sentiment_score": s.sentiment_score,
        **{column: s.probabilities[k] for column, k in PROBABILITY_COLUMNS.items()},
        "aspects": json.dumps([a.model_dump(mode="json") for a in s.aspects], ensure_ascii=False),
        "model_version": s.model_version,
        "error": None,
    }


def score_records(
    chunk: list[tuple[int, dict[str, Any] | RowError]],
    *,
    scorer: Scorer,
    detector: LanguageDetector,
    text_column: str = "text",
    max_text_chars: int = 20_000,
    where: str = "",
) -> tuple[list[dict], int]:
    """One chunk of ``(row, record)`` in, its output rows out (every input column kept, the
    score columns added, a bad row's reason in ``error``) and how many were scored.

    The chunk is scored in one ``scorer.score`` call; a row's scores do not depend on its chunk
    (the int8 encoder quantises each token on its own). ``where`` prefixes error messages (a
    file name)."""
    out_rows: list[dict] = []
    to_score: list[int] = []
    texts: list[str] = []
    for row, rec in chunk:
        if isinstance(rec, RowError):
            out_rows.append({"error": where + str(rec)})
            continue
        base = dict(rec)
        text = rec.get(text_column)
        problem = None
        if text_column not in rec:
            problem = f"row {row}: no column {text_column!r}"
        elif not isinstance(text, str) or not text.strip():
            problem = f"row {row}, field {text_column}: empty or not text"
        elif len(text) > max_text_chars:
            problem = f"row {row}, field {text_column}: too long ({len(text):,} > {max_text_chars:,} characters)"
        if problem:
            base["error"] = where + problem
        else:
            to_score.append(len(out_rows))
            texts.append(normalize_text(text))
        out_rows.append(base)
    languages = detector.detect_many(texts)
    scored = scorer.score(texts, languages)
    for k, sc, lang in zip(to_score, scored, languages):
        out_rows[k].update(_score_columns(sc), language=lang)
    for r in out_rows:
        for c in SCORE_COLUMNS:
            r.setdefault(c, None)
    return out_rows, len(to_score)


class ScoredOutput:
    """The output file and its progress record, shared by the local and the Ray engine.

    ``write(rows, position)`` appends one chunk durably, then records ``position`` (whatever
    the engine needs to resume, e.g. ``{"rows_done": 1024}``) with the output's offset; a new
    ``ScoredOutput`` over an interrupted run (same ``signature``) exposes that ``position``
    and truncates the output back to it. A different signature starts over."""

    def __init__(self, output_path: Path, *, out_fmt: str, signature: dict, resume: bool = True):
        self.path, self.fmt, self.signature = Path(output_path), out_fmt, signature
        self.progress = _Progress(self.path)
        state = self.progress.load() if resume else None
        if state and (state.get("signature") != signature or "position" not in state):
            state = None  # a different input or model: start over
        self.position: dict | None = state.get("position") if state else None
        self._offset = state["offset"] if state else None
        self._columns = state.get("columns") if state else None
        self._writer: _TextWriter | _ParquetWriter | None = None
        if out_fmt == "parquet":
            self._writer = _ParquetWriter(self.path, self._offset)

    def write(self, rows: list[dict], position: dict) -> None:
        if self._writer is None:
            if self._columns is None:
                first = next((r for r in rows if len(r) > len(SCORE_COLUMNS)), rows[0])
                self._columns = [c for c in first if c not in SCORE_COLUMNS] + SCORE_COLUMNS
            self._writer = _TextWriter(self.path, self.fmt, self._columns, self._offset)
        self._writer.write(rows)
        self.progress.save(
            {
                "signature": self.signature,
                "position": position,
                **position,
                "offset": self._writer.tell(),
                "columns": self._columns,
            }
        )

    def finish(self, text_column: str = "text") -> None:
        if self._writer is None:  # empty input
            self._writer = _TextWriter(
                self.path, self.fmt, self._columns or [text_column, *SCORE_COLUMNS], None
            )
            if self.fmt == "csv":
                self._writer.write([])
        self._writer.finish()
        self.progress.clear()


@dataclass(frozen=True)
class ScoreOptions:
    """How a scoring job reads and writes, whichever engine scores it: the ``text_column`` of
    the input (``input_format``, default: from its suffix) is scored into the output
    (``output_format``, likewise); ``resume`` continues an interrupted run with the same
    signature; ``on_chunk(n)`` hears of every ``n`` rows done (a progress bar)."""

    text_column: str = "text"
    input_format: str | None = None
    output_format: str | None = None
    resume: bool = True
    on_chunk: Callable[[int], None] | None = None

    def output(self, path: Path, signature: dict) -> ScoredOutput:
        """The scored output at ``path``; ``signature`` (what is read, by which model) and
        these options decide whether an interrupted run there is resumed."""
        fmt = detect_format(path, self.output_format)
        sig = {**signature, "text_column": self.text_column, "output_format": fmt}
        return ScoredOutput(path, out_fmt=fmt, signature=sig, resume=self.resume)

    def done(self, rows: int) -> None:
        if self.on_chunk and rows:
            self.on_chunk(rows)


def score_file(
    input_path: Path,
    output_path: Path,
    *,
    scorer: Scorer,
    detector: LanguageDetector,
    options: ScoreOptions = ScoreOptions(),
    chunk_size: int = 512,
    max_text_chars: int = 20_000,
) -> ScoreFileReport:
    input_path, output_path = Path(input_path), Path(output_path)
    text_column = options.text_column
    in_fmt = detect_format(input_path, options.input_format)
    out = options.output(
        output_path, {**file_signature(input_path), "model_version": scorer.version}
    )
    done = out.position["rows_done"] if out.position else 0
    rows_seen = scored_n = err_n = 0
    for chunk in chunked(read_records(input_path, in_fmt), chunk_size):
        if rows_seen + len(chunk) <= done:
            rows_seen += len(chunk)
            options.done(len(chunk))
            continue
        out_rows, n = score_records(
            chunk,
            scorer=scorer,
            detector=detector,
            text_column=text_column,
            max_text_chars=max_text_chars,
        )
        scored_n += n
        err_n += len(out_rows) - n
        rows_seen += len(chunk)
        out.write(out_rows, {"rows_done": rows_seen})
        options.done(len(chunk))
    out.finish(text_column)
    return ScoreFileReport(rows_seen, scored_n, err_n, done, output_path)
