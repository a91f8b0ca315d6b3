"""Prints the schemathesis campaign's summary (operations, examples, status codes, failures)
at the end of a run that included it."""

from __future__ import annotations

import sys


def pytest_terminal_summary(terminalreporter):
    module = sys.modules.get("tests.robustness.test_schemathesis")
    report = getattr(module, "LAST_REPORT", None)
    if not report:
        return
    tr = terminalreporter
    tr.section("schemathesis campaign")
    tr.write_line(f"seed {report['seed']}, up to {report['max_examples_per_operation']} examples per operation"
                  f"{' plus the coverage phase' if report['coverage_phase'] else ''}: {report['operations']}/"
                  f"{report['operations_in_schema']} operations, {report['requests']} requests "
                  f"({report['requests_by_mode']}) in {report['seconds']} s")
    tr.write_line(f"status codes {report['status_codes']}; operations failed: {len(report['operations_failed'])}")
    for op, s in report["per_operation"].items():
        for failure in s["failures"]:
            tr.write_line(f"  FAILED {op}: {failure}")
    tr.write_line(f"summary written to {report['path']}")
