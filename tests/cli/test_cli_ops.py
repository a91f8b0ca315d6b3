"""Operations from the command line: a database that cannot be written ends a command with one
line, `radar db backup` of a live store and its restore, listings as table, CSV or JSON at
full width when piped, and `radar serve` with the first admin key on stdout and JSON logs."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from service.cli.main import app
from service.store import access
from service.store.tables import AlertRow, FeedbackRow, ScoreRow
from tests.cli._radar import RADAR, ROOT, radar
from tests.delivery.test_outbox import make_alert

START = datetime(2026, 5, 4, tzinfo=UTC)


def _rows(start: int, n: int) -> list[dict]:
    return [
        {
            "source": "shop",
            "channel": "review",
            "external_id": f"b{i}",
            "region": ("East", "West")[i % 2],
            "text": f"great noodles, order {i}",
            "created_at": (START + timedelta(minutes=i)).isoformat(),
        }
        for i in range(start, start + n)
    ]


def _store(make_runtime, url, scorer, n=40):
    rt = make_runtime(url, scorer=scorer)
    assert rt.ingest_service().ingest(list(enumerate(_rows(0, n)))).counts["created"] == n
    with rt.sessions() as s:
        make_alert(s, at=START, severity="L2")
        make_alert(s, at=START + timedelta(days=1), severity="L1", region="West")
    return rt


def _read_only(url: str) -> str:
    return f"sqlite:///file:{url.removeprefix('sqlite:///')}?mode=ro&uri=true"


def test_a_read_only_store_ends_a_command_with_one_line(
    sqlite_url, make_runtime, fake_scorer, tmp_path
):
    rt = _store(make_runtime, sqlite_url, fake_scorer)
    rt.close()
    ro = _read_only(sqlite_url)
    src = tmp_path / "new.csv"
    src.write_text(
        "source,channel,external_id,text,created_at\n"
        'shop,review,n1,"The box arrived crushed",2026-05-04T10:00:00Z\n',
        encoding="utf-8",
    )
    for args in (
        ["ingest", str(src)],
        ["keys", "create", "--role", "viewer"],
        ["alerts", "ack", "1", "--by", "ops"],
    ):
        res = radar(args, ro)
        assert res.returncode == 4, (args, res.stdout, res.stderr)
        assert "Traceback" not in res.stderr, res.stderr
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        assert len(errors) == 1, res.stderr
        assert ro in errors[0] and "cannot be written" in errors[0] and "readonly" in errors[0]
    # nothing was written; reading still works
    listed = radar(["alerts", "list", "--format", "json"], ro)
    assert listed.returncode == 0 and {a["status"] for a in json.loads(listed.stdout)} == {"open"}


def test_backup_of_a_live_store_restores_every_item_score_and_alert(
    sqlite_url, make_runtime, fake_scorer, tmp_path
):
    rt = _store(make_runtime, sqlite_url, fake_scorer, n=300)
    with rt.sessions() as s:
        before = {r.external_id: r.text for r in s.scalars(select(FeedbackRow))}
        before_scores = {
            (f, v) for f, v in s.execute(select(ScoreRow.feedback_id, ScoreRow.model_version))
        }
        before_alerts = {(a.key, a.severity, a.status) for a in s.scalars(select(AlertRow))}
    stop, written = threading.Event(), []

    def writer():  # the store stays live: ingests go on while the backup runs
        i = 1000
        while not stop.is_set():
            rt.ingest_service().ingest(list(enumerate(_rows(i, 20))))
            written.append(i)
            i += 20

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        while not written:
            time.sleep(0.05)
        backup = tmp_path / "backups" / "radar-backup.db"
        res = radar(["db", "backup", str(backup)], sqlite_url)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert (
        report["integrity"] == "ok"
        and report["revision"]
        and report["bytes"] == backup.stat().st_size
    )
    assert not list(backup.parent.glob("*.partial")) and not Path(f"{backup}-wal").exists()
    assert (
        radar(["db", "backup", str(backup)], sqlite_url).returncode == 2
    )  # never over a file unasked

    restored = tmp_path / "restored" / "radar.db"
    restored.parent.mkdir()
    shutil.copy(backup, restored)
    again = make_runtime(f"sqlite:///{restored}", scorer=fake_scorer)
    with again.sessions() as s:
        items = {r.external_id: r.text for r in s.scalars(select(FeedbackRow))}
        scores = {
            (f, v) for f, v in s.execute(select(ScoreRow.feedback_id, ScoreRow.model_version))
        }
        alerts = {(a.key, a.severity, a.status) for a in s.scalars(select(AlertRow))}
        unscored = s.scalar(
            select(FeedbackRow.id).where(~FeedbackRow.id.in_(select(ScoreRow.feedback_id)))
        )
    with rt.sessions() as s:
        live = {r.external_id: r.text for r in s.scalars(select(FeedbackRow))}
    assert before.items() <= items.items() and before_scores <= scores and alerts == before_alerts
    assert items.items() <= live.items() and unscored is None  # a moment of the live store, whole
    assert len(live) > len(before)  # the writer did write meanwhile


def test_backup_of_postgresql_points_to_pg_dump(pg_database, tmp_path):
    res = radar(["db", "backup", str(tmp_path / "x.db")], pg_database)
    assert res.returncode == 2 and "pg_dump" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "x.db").exists()


def test_listings_are_table_csv_or_json_and_never_cut_when_piped(
    sqlite_url, make_runtime, fake_scorer
):
    rt = _store(make_runtime, sqlite_url, fake_scorer)
    name = (
        "regional lead for the north-east dealers and their after-sales partners (rotated yearly)"
    )
    with rt.sessions() as s:
        access.create_key(s, role="viewer", actor="test", name=name, regions=["East"])
    table = radar(["keys", "list"], sqlite_url)
    assert table.returncode == 0, table.stderr
    assert any(name in line for line in table.stdout.splitlines()), (
        table.stdout
    )  # one line, not folded at 80
    assert max(len(line) for line in table.stdout.splitlines()) > 120
    rows = list(
        csv.DictReader(io.StringIO(radar(["keys", "list", "--format", "csv"], sqlite_url).stdout))
    )
    assert (
        [r["name"] for r in rows] == [name]
        and rows[0]["scope"] == "regions=East"
        and rows[0]["role"] == "viewer"
    )
    as_json = json.loads(radar(["keys", "list", "--format", "json"], sqlite_url).stdout)
    assert as_json[0]["name"] == name and as_json[0]["regions"] == ["East"]
    alerts = list(
        csv.DictReader(io.StringIO(radar(["alerts", "list", "--format", "csv"], sqlite_url).stdout))
    )
    assert [a["sev"] for a in alerts] == ["L1", "L2"] and alerts[0][
        "title"
    ] == "taste complaints rising in West"
    clash = radar(["alerts", "list", "--json", "--format", "csv"], sqlite_url)
    assert clash.returncode == 2 and "--json" in clash.stderr


def test_analysis_tables_as_csv(sqlite_url, make_runtime, fake_scorer, monkeypatch):
    _store(make_runtime, sqlite_url, fake_scorer)
    monkeypatch.setenv("RADAR_DATABASE_URL", sqlite_url)
    res = CliRunner().invoke(app, ["analyze", "segments", "-d", "region", "--format", "csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [r["segment"] for r in rows] == ["East", "West", "all"] and rows[-1]["items"] == "40"
    as_json = CliRunner().invoke(app, ["analyze", "segments", "-d", "region", "--format", "json"])
    assert json.loads(as_json.stdout)["total"]["volume"] == 40


@pytest.mark.parametrize(
    "command",
    [
        "db backup",
        "keys list",
        "alerts list",
        "analyze segments",
        "analyze differences",
        "analyze themes",
        "benchmark",
        "taxonomy test",
        "models list",
    ],
)
def test_listing_commands_document_their_options(command):
    res = CliRunner().invoke(app, command.split() + ["--help"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    if command != "db backup":
        assert "--format" in res.output and "csv" in res.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_prints_the_first_admin_key_on_stdout_and_logs_json_lines(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "RADAR_NO_PROGRESS": "1",
        "RADAR_DATABASE_URL": f"sqlite:///{tmp_path}/radar.db",
        "RADAR_API__AUTH": "true",
        "RADAR_LOG_FORMAT": "json",
        "RADAR_API__METRICS": "true",
        "RADAR_API__METRICS_KEY": "scrape-secret",
    }
    proc = subprocess.Popen(
        [*RADAR, "serve", "--no-preload", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        key = proc.stdout.readline().strip()  # the first line of stdout: the key alone
        assert key.startswith("rk_"), key
        for _ in range(300):
            try:
                if httpx.get(f"{base}/v1/health/live", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        ready = httpx.get(f"{base}/v1/health/ready", timeout=60)
        assert ready.status_code == 200, ready.text
        auth = {"Authorization": f"Bearer {key}"}
        listed = httpx.get(f"{base}/v1/feedback", headers={**auth, "X-Request-ID": "ops-check-1"})
        assert listed.status_code == 200 and listed.headers["X-Request-ID"] == "ops-check-1"
        missing = httpx.get(f"{base}/v1/feedback/12345", headers=auth)
        assert missing.status_code == 404
        assert httpx.get(f"{base}/metrics").status_code == 401
        scraped = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer scrape-secret"})
        assert (
            'radar_http_requests_total{method="GET",route="/v1/feedback/{feedback_id}",status="404"} 1.0'
            in scraped.text
        )
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines, err
    access_lines = [line for line in lines if line["logger"] == "radar.access"]
    by_id = {line["request_id"]: line for line in access_lines}
    first = by_id["ops-check-1"]
    assert first["route"] == "/v1/feedback" and first["status"] == 200 and first["method"] == "GET"
    assert first["key_prefix"] == key.split("_")[1] and isinstance(
        first["latency_ms"], (int, float)
    )
    miss = next(line for line in access_lines if line["status"] == 404)
    assert (
        miss["route"] == "/v1/feedback/{feedback_id}"
        and miss["request_id"] == missing.headers["X-Request-ID"]
    )
    assert key not in err and "scrape-secret" not in err
    assert key not in out.replace(key, "", 1)  # printed once
