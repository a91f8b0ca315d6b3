"""Prints the schemathesis campaign's summary (operations, examples, status codes, failures)
at the end of a run that included it; under pytest-xdist the worker that ran the campaign hands
its report to the controller (tests/conftest.py prints it there)."""

from __future__ import annotations

import json
import sys


def campaign_report() -> dict | None:
    module = sys.modules.get("tests.robustness.test_schemathesis")
    return getattr(module, "LAST_REPORT", None) or None


def write_summary(tr, report: dict) -> None:
    tr.section("schemathesis campaign")
    tr.write_line(
        f"seed {report['seed']}, up to {report['max_examples_per_operation']} examples per operation"
        f"{' plus the coverage phase' if report['coverage_phase'] else ''}: {report['operations']}/"
        f"{report['operations_in_schema']} operations, {report['requests']} requests "
        f"({report['requests_by_mode']}) in {report['seconds']} s"
    )
    tr.write_line(
        f"status codes {report['status_codes']}; operations failed: {len(report['operations_failed'])}"
    )
    for op, s in report["per_operation"].items():
        for failure in s["failures"]:
            tr.write_line(f"  FAILED {op}: {failure}")
    tr.write_line(f"summary written to {report['path']}")


def pytest_sessionfinish(session):
    workeroutput = getattr(session.config, "workeroutput", None)  # set in an xdist worker only
    report = campaign_report()
    if workeroutput is not None and report:
        workeroutput["schemathesis_report"] = json.dumps(report)


def pytest_terminal_summary(terminalreporter):
    report = campaign_report()
    if report and not hasattr(terminalreporter.config, "workeroutput"):
        write_summary(terminalreporter, report)
