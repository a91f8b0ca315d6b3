"""How listing commands print: ``--format table|csv|json`` (``--json`` stays the short form of
``--format json``). One helper for every command, so a table piped into a file or another
program is never cut to the 80 columns Rich assumes when stdout is not a terminal."""

from __future__ import annotations

import csv
import json
import os
import sys
from enum import Enum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from tqdm import tqdm

from service.cli.options import option_bundle

UNLIMITED = 100_000  # columns of a console that is not a terminal: each line as long as it is


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


FormatOpt = Annotated[
    Format | None,
    typer.Option(
        "--format",
        case_sensitive=False,
        help="table (the default; full width when piped) | csv (header and one line per row) | json (everything).",
    ),
]


JsonOpt = Annotated[bool, typer.Option("--json", help="The same as --format json.")]


def wide(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr) that wraps at the terminal's width, and nowhere when the
    stream is not a terminal (``COLUMNS`` still wins when set)."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else UNLIMITED
    return Console(file=stream, width=width, stderr=stderr)


def chosen(fmt: Format | None, as_json: bool = False) -> Format:
    """The format asked for: ``--format`` or, for commands that had it first, ``--json``."""
    if fmt is not None and as_json and fmt is not Format.json:
        raise typer.BadParameter(f"--json and --format {fmt.value} ask for different things")
    return fmt or (Format.json if as_json else Format.table)


# --format and its short form --json, which a listing command receives as one Format ``fmt``:
# put @format_options under @app.command
format_options = option_bundle(
    "fmt", [("fmt", FormatOpt, None), ("as_json", JsonOpt, False)], chosen
)


def emit(
    fmt: Format,
    *,
    columns: list[str],
    rows: list[list[Any]],
    data: Any = None,
    title: str | None = None,
    justify: dict[str, str] | None = None,
) -> None:
    """Print ``rows`` under ``columns`` as a Rich table (cells may hold markup) or CSV (the
    cells' plain text), or ``data`` as JSON (default: the rows as objects keyed by column)."""
    if fmt is Format.json:
        if data is None:
            data = [dict(zip(columns, (_plain(c) for c in row))) for row in rows]
        wide().print_json(json.dumps(data, ensure_ascii=False, default=str))
    elif fmt is Format.csv:
        # formulas neutralised, as `radar score` writes; lazy: score_file pulls in scipy (~0.2 s)
        from service.jobs.score_file import csv_cell

        writer = csv.writer(sys.stdout, lineterminator="\r\n")  # CRLF: a cell holding \r is quoted
        writer.writerow(columns)
        writer.writerows([csv_cell(_plain(c)) for c in row] for row in rows)
        sys.stdout.flush()
    else:
        table = Table(title=title)
        for c in columns:
            table.add_column(c, overflow="fold", justify=(justify or {}).get(c, "left"))
        for row in rows:
            table.add_row(*("" if c is None else str(c) for c in row))
        wide().print(table)


def _plain(cell: Any) -> Any:
    """A cell's text without Rich markup (numbers and None stay as they are)."""
    if isinstance(cell, str):
        return Text.from_markup(cell).plain
    return cell


def progress_bar(total: int | None, desc: str, unit: str = "row") -> tqdm:
    """A progress bar on stderr (none when ``RADAR_NO_PROGRESS=1``)."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        dynamic_ncols=True,
        file=sys.stderr,
        disable=os.environ.get("RADAR_NO_PROGRESS") == "1",
    )
