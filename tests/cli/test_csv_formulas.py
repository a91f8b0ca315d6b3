"""Issue 20: the CLI's ``--format csv`` listings neutralise spreadsheet formulas as the scoring
job's CSV does (a leading quote on text that starts like one; numbers unchanged)."""

from __future__ import annotations

import csv
import io

from service.cli.output import Format, emit


def test_csv_listing_cells_never_start_a_formula(capsys):
    rows = [
        ['=HYPERLINK("https://evil.example","x")', -0.5, "-0.25"],
        ["@SUM(A1)", 3, "+0.10"],
        ["\r=1+1", None, "-"],
        ["[b]East[/b]", 0, "ok"],
    ]
    emit(Format.csv, columns=["name", "net", "shown"], rows=rows)
    got = list(csv.reader(io.StringIO(capsys.readouterr().out, newline="")))
    assert got == [
        ["name", "net", "shown"],
        ['\'=HYPERLINK("https://evil.example","x")', "-0.5", "-0.25"],
        ["'@SUM(A1)", "3", "+0.10"],
        ["'=1+1", "", "'-"],  # (Rich's plain text drops the carriage return)
        ["East", "0", "ok"],
    ]
