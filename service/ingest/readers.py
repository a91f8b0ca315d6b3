"""Streaming readers for CSV, JSONL and Parquet.

Each reader yields ``(row_number, record_or_error)`` one row at a time in constant memory:
``row_number`` is the 1-based line of the file where the row starts (CSV/JSONL) or the
1-based row index (Parquet), and a row that cannot even be decoded comes back as a
``RowError`` so that the rows around it are still read.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

FORMATS = ("csv", "jsonl", "parquet")


@dataclass
class RowError:
    row: int
    reason: str
    fields: list[str] = field(default_factory=list)
    external_id: str | None = None

    def as_dict(self) -> dict:
        return {
            "row": self.row,
            "field": ",".join(self.fields) or None,
            "reason": self.reason,
            "external_id": self.external_id,
        }

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", field {'/'.join(self.fields)}" if self.fields else "")
        return f"{where}: {self.reason}"


class ReaderError(ValueError):
    """The file as a whole cannot be read (unknown format, no header…)."""


def detect_format(path: Path, explicit: str | None = None) -> str:
    if explicit:
        if explicit not in FORMATS:
            raise ReaderError(f"unknown format {explicit!r}; expected one of {', '.join(FORMATS)}")
        return explicit
    suffix = path.suffix.lower().lstrip(".")
    fmt = {
        "csv": "csv",
        "tsv": "csv",
        "jsonl": "jsonl",
        "ndjson": "jsonl",
        "json": "jsonl",
        "parquet": "parquet",
        "pq": "parquet",
    }.get(suffix)
    if fmt is None:
        raise ReaderError(f"{path}: cannot tell the format from {path.suffix!r}; pass --format")
    return fmt


def _undecodable(value: object) -> bool:
    return isinstance(value, str) and any("\udc80" <= ch <= "\udcff" for ch in value)


def _bad_bytes_error(row: int, record: dict) -> RowError | None:
    bad = [k for k, v in record.items() if _undecodable(v) or _undecodable(k)]
    if bad:
        return RowError(row, "invalid UTF-8", bad)
    return None


def read_csv(path: Path, delimiter: str | None = None) -> Iterator[tuple[int, dict | RowError]]:
    delim = delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
    # surrogateescape keeps undecodable bytes visible per field instead of failing the file.
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh, delimiter=delim)
        try:
            header = next(reader)
        except StopIteration:
            raise ReaderError(f"{path}: the file is empty") from None
        header = [h.strip() for h in header]
        if len(set(header)) != len(header):
            raise ReaderError(f"{path}: duplicate column names in the header: {header}")
        while True:
            start = reader.line_num + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, RowError(start, f"malformed CSV: {exc}")
                continue
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                yield start, RowError(start, f"expected {len(header)} columns, found {len(values)}")
                continue
            record = dict(zip(header, values))
            yield start, (_bad_bytes_error(start, record) or record)


def read_jsonl(path: Path) -> Iterator[tuple[int, dict | RowError]]:
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield lineno, RowError(lineno, f"invalid UTF-8 at byte {exc.start}")
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                yield lineno, RowError(lineno, f"invalid JSON: {exc.msg} (column {exc.colno})")
                continue
            if not isinstance(record, dict):
                yield (
                    lineno,
                    RowError(lineno, f"expected a JSON object, found {type(record).__name__}"),
                )
                continue
            yield lineno, record


def read_parquet(path: Path, batch_size: int = 4096) -> Iterator[tuple[int, dict | RowError]]:
    import pyarrow.parquet as pq  # Parquet only: slow to import

    pf = pq.ParquetFile(path)
    row = 0
    for batch in pf.iter_batches(batch_size=batch_size):
        for record in batch.to_pylist():
            row += 1
            yield row, record


def read_records(path: Path, fmt: str | None = None) -> Iterator[tuple[int, dict | RowError]]:
    path = Path(path)
    if not path.exists():
        raise ReaderError(f"{path}: no such file")
    fmt = detect_format(path, fmt)
    if fmt == "csv":
        return read_csv(path)
    if fmt == "jsonl":
        return read_jsonl(path)
    return read_parquet(path)


def count_rows(path: Path, fmt: str | None = None) -> int | None:
    """Cheap row count for progress bars (Parquet metadata, or lines for text files)."""
    path = Path(path)
    fmt = detect_format(path, fmt)
    if fmt == "parquet":
        import pyarrow.parquet as pq  # Parquet only: slow to import

        return pq.ParquetFile(path).metadata.num_rows
    n = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            n += chunk.count(b"\n")
    return max(n - 1, 0) if fmt == "csv" else n
