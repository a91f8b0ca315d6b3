"""Short crash tests (``benchmarks/crash_safety.py`` with small parameters): SIGKILL the real
``radar serve`` while clients ingest, and ``radar ingest FILE`` mid-file; after the restart or
rerun nothing acknowledged is lost, nothing is partial or duplicated, and a retry completes
the store exactly."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import crash_safety  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

DBS = ["sqlite"] + (["pg"] if os.environ.get("RADAR_ROBUSTNESS_PG") == "1" else [])


def _failed(part: dict) -> dict:
    return {
        f"{stage}.{name}": c
        for stage, checks in part.items()
        if stage.startswith("checks")
        for name, c in checks.items()
        if not c["ok"]
    }


@pytest.mark.parametrize("db", DBS)
def test_server_killed_mid_ingest_loses_nothing_acknowledged(tmp_path, db):
    part = crash_safety.server_crash(
        items=200, clients=2, batch=20, kill_after=0.3, db=db, workdir=tmp_path, spot_check=30
    )
    assert not _failed(part), _failed(part)
    f = part["figures"]
    assert (
        0 < f["items_acknowledged_before_kill"] < f["items_sent"]
        and f["batches_in_flight_at_kill"] > 0
    )
    assert f["stored_final"] == f["items_sent"]
    assert part["ok"]


@pytest.mark.parametrize("db", DBS)
def test_ingest_killed_mid_file_then_rerun_stores_each_row_once(tmp_path, db):
    part = crash_safety.ingest_crash(
        rows_per_week=10, kill_at=0.35, chunk_size=32, db=db, workdir=tmp_path, spot_check=0
    )
    assert not _failed(part), _failed(part)
    f = part["figures"]
    assert 0 < f["stored_at_kill"] < f["distinct_valid_keys"] == f["stored_final"]
    assert f["rerun_summary"]["created"] == f["distinct_valid_keys"] - f["stored_at_kill"]
    assert part["ok"]
