"""`radar subscriptions list` and `radar outbox list` print through the shared listing helper:
table, CSV or JSON (service/cli/output.py)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from typer.testing import CliRunner

from service.cli.main import app
from service.store.tables import OutboxRow

AT = datetime(2026, 5, 4, tzinfo=UTC)


def test_subscriptions_and_outbox_as_csv_and_json(
    sqlite_url, make_runtime, fake_scorer, monkeypatch
):
    rt = make_runtime(sqlite_url, scorer=fake_scorer)
    with rt.sessions() as s:
        s.add(
            OutboxRow(
                dedupe_key="d1",
                channel="email",
                format="text",
                target="lead@example.test",
                subject="Digest",
                message_id="<m1@t>",
                payload=b"x",
                status="dead",
                attempts=6,
                next_attempt_at=AT,
                last_error="550 mailbox unavailable",
                created_at=AT,
            )
        )
        s.commit()
    monkeypatch.setenv("RADAR_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    assert (
        runner.invoke(
            app, ["subscriptions", "add", "lead@example.test", "--region", "East"]
        ).exit_code
        == 0
    )
    subs = list(
        csv.DictReader(
            io.StringIO(runner.invoke(app, ["subscriptions", "list", "--format", "csv"]).stdout)
        )
    )
    assert [(r["target"], r["scope"]) for r in subs] == [("lead@example.test", "regions=East")]
    assert json.loads(runner.invoke(app, ["subscriptions", "list", "--format", "json"]).stdout)[0][
        "regions"
    ] == ["East"]
    dead = list(
        csv.DictReader(
            io.StringIO(runner.invoke(app, ["outbox", "list", "--format", "csv"]).stdout)
        )
    )
    assert [(r["status"], r["last error"]) for r in dead] == [("dead", "550 mailbox unavailable")]
    assert (
        json.loads(runner.invoke(app, ["outbox", "list", "--json"]).stdout)[0]["status"] == "dead"
    )
