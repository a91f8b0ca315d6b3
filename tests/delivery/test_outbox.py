"""The outbox under failures: a process killed between compose and send and between send and
mark-sent (real SMTP server, `radar digest run` in a subprocess), retries with backoff, dead
letters, the schedule across daylight-saving changes, immediate alerts to a signed webhook,
and subscription management through the API."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.delivery import subscriptions as subs
from service.delivery.webhook import verify
from service.runtime import Runtime
from service.store.tables import AlertEventRow, AlertRow, OutboxRow

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2027, 3, 1, tzinfo=UTC)  # a Monday; in the future, so that leases run on this clock


def make_alert(
    session,
    *,
    at: datetime,
    severity="L2",
    region="East",
    brand="spicewell",
    aspect="taste",
    type="preference_shift",
) -> AlertRow:
    series = [
        {
            "period": (at - timedelta(weeks=12 - i)).isoformat(),
            "items": 40,
            "negative_mentions": 4 if i < 10 else 16,
        }
        for i in range(12)
    ]
    details = {
        "series": series,
        "detection": {
            "kind": "interval_breach",
            "direction": 1,
            "onset": 10,
            "detected_at": 11,
            "baseline": 0.1,
            "observed": 0.4,
        },
        "signal": {"aspect": aspect},
        "aspects": [aspect],
        "drivers": [],
        "quotes": [{"id": 1, "text": "way too spicy now", "evidence": "too spicy"}],
    }
    row = AlertRow(
        key=f"k|{brand}|{aspect}|{region}|{at.isoformat()}",
        rule="pref",
        type=type,
        severity=severity,
        status="open",
        title=f"{aspect} complaints rising in {region}",
        brand=brand,
        region=region,
        aspect=aspect,
        segment=json.dumps({"region": region}),
        metric="negative_mention_rate",
        baseline=0.1,
        observed=0.4,
        magnitude=0.3,
        confidence=0.99,
        onset=at - timedelta(weeks=2),
        first_detected_at=at,
        last_detected_at=at,
        deadline_at=at + timedelta(hours=48),
        details=json.dumps(details),
        created_at=at,
        updated_at=at,
    )
    session.add(row)
    session.flush()
    session.add(
        AlertEventRow(alert_id=row.id, at=at, actor="radar", action="raised", note=row.title)
    )
    session.commit()
    return row


LOOPBACK = ["127.0.0.1/32"]  # the webhook receivers of these tests listen on loopback


def _settings(url: str, port: int, **delivery) -> Settings:
    return Settings(
        database_url=url,
        delivery={
            "smtp_port": port,
            "signing_key": "k",
            "backoff_seconds": 60,
            "webhook_allow": LOOPBACK,
            **delivery,
        },
    )


@pytest.fixture
def store(db_url, smtp_server):
    """A store (SQLite and PostgreSQL) with one open alert in East and a daily digest
    subscriber (08:00 UTC)."""
    rt = Runtime(_settings(db_url, smtp_server.port))
    with rt.sessions() as s:
        make_alert(s, at=T0 - timedelta(days=3))
        subs.create(
            s,
            subs.SubscriptionIn(target="lead@example.test", regions=["East"]),
            actor="t",
            now=T0 - timedelta(days=10),
        )
    yield rt
    rt.close()


def _radar(url: str, port: int, now: datetime, **env) -> subprocess.CompletedProcess:
    e = {
        **os.environ,
        "RADAR_DATABASE_URL": url,
        "RADAR_DELIVERY__SMTP_PORT": str(port),
        "RADAR_DELIVERY__SIGNING_KEY": "k",
        "RADAR_DELIVERY__LEASE_SECONDS": "1",
        **env,
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "service.cli.main",
            "digest",
            "run",
            "--now",
            now.isoformat(),
            "--json",
        ],
        cwd=REPO,
        env=e,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _statuses(rt) -> list[tuple[str, int]]:
    from sqlalchemy import select

    with rt.sessions() as s:
        return [(r.status, r.attempts) for r in s.scalars(select(OutboxRow).order_by(OutboxRow.id))]


def test_killed_between_compose_and_send_delivers_once_after_restart(store, smtp_server):
    url, now = store.settings.database_url, T0 + timedelta(hours=8, minutes=1)
    killed = _radar(url, smtp_server.port, now, RADAR_FAILPOINTS="after_compose")
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert smtp_server.messages == [] and _statuses(store) == [
        ("pending", 0)
    ]  # composed and stored, not sent
    again = _radar(url, smtp_server.port, now + timedelta(minutes=1))
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(smtp_server.messages) == 1 and _statuses(store) == [("sent", 1)]
    assert _radar(url, smtp_server.port, now + timedelta(minutes=2)).returncode == 0
    assert len(smtp_server.messages) == 1  # cron again: nothing new


def test_killed_between_send_and_mark_sent_resends_the_same_message_id(store, smtp_server):
    url, now = store.settings.database_url, T0 + timedelta(hours=8, minutes=1)
    killed = _radar(url, smtp_server.port, now, RADAR_FAILPOINTS="after_send")
    assert killed.returncode == -9 and len(smtp_server.messages) == 1
    assert _statuses(store) == [("sending", 1)]  # the server has it; we never learned
    # within the lease nobody touches it; after it, the next run sends it again: the one
    # window no outbox closes, and the reason the Message-ID is fixed per message
    assert _radar(url, smtp_server.port, now).returncode == 0 and len(smtp_server.messages) == 1
    assert _radar(url, smtp_server.port, now + timedelta(seconds=5)).returncode == 0
    first, second = smtp_server.parsed()
    assert first["Message-ID"] == second["Message-ID"] and _statuses(store) == [("sent", 2)]


def test_temporary_failures_back_off_then_permanent_ones_dead_letter(store, smtp_server):
    service = store.delivery_service()
    now = T0 + timedelta(hours=8)
    smtp_server.replies = ["451 4.3.0 try again later", "451 4.3.0 try again later"]
    r1 = service.run(now)
    assert r1.dispatch.retrying and smtp_server.messages == []
    assert service.run(now + timedelta(seconds=59)).dispatch.retrying == []  # not due before 60 s
    assert service.run(now + timedelta(seconds=60)).dispatch.retrying  # second failure: 120 s more
    assert service.run(now + timedelta(seconds=60 + 119)).dispatch.sent == []
    assert (
        service.run(now + timedelta(seconds=60 + 120)).dispatch.sent
        and len(smtp_server.messages) == 1
    )
    assert _statuses(store) == [("sent", 3)]
    # the next day's digest is refused for good: dead at once, with the server's answer
    smtp_server.replies = ["550 5.1.1 mailbox unavailable"]
    r = service.run(now + timedelta(days=1))
    assert r.dispatch.dead and _statuses(store)[-1] == ("dead", 1)
    with TestClient(_app(store)) as c:
        dead = c.get("/v1/outbox", params={"status": "dead"}).json()["messages"]
        assert len(dead) == 1 and "550" in dead[0]["last_error"]
        assert c.post(f"/v1/outbox/{dead[0]['id']}/retry").json()["status"] == "pending"
        sent = c.get("/v1/outbox", params={"status": "sent"}).json()["messages"][0]
        assert (
            c.post(f"/v1/outbox/{sent['id']}/retry").status_code == 409
        )  # only dead letters go back
        assert c.post(f"/v1/outbox/{dead[0]['id']}/retry").status_code == 409  # queued already
    assert (
        service.dispatcher.run().sent and len(smtp_server.messages) == 2
    )  # retried by hand: queued for now


def test_unreachable_server_is_retried_then_dead_lettered(sqlite_url, smtp_server):
    rt = Runtime(_settings(sqlite_url, 1, max_attempts=3))  # nothing listens on port 1
    with rt.sessions() as s:
        make_alert(s, at=T0 - timedelta(days=1))
        subs.create(
            s, subs.SubscriptionIn(target="x@example.test"), actor="t", now=T0 - timedelta(days=5)
        )
    service = rt.delivery_service()
    now = T0 + timedelta(hours=9)
    for k in range(3):
        service.run(now + timedelta(hours=k))
    assert _statuses(rt) == [("dead", 3)]
    with rt.sessions() as s:
        from sqlalchemy import select

        assert "Connection" in s.scalars(select(OutboxRow)).one().last_error
    rt.close()


def test_two_schedulers_at_once_send_each_message_once(store, smtp_server):
    services = [store.delivery_service(), store.delivery_service()]
    now = T0 + timedelta(hours=8, minutes=3)
    threads = [threading.Thread(target=svc.run, args=(now,)) for svc in services]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(smtp_server.messages) == 1 and _statuses(store) == [("sent", 1)]


def _row(**kw) -> subs.SubscriptionRow:
    base = dict(
        id=1,
        frequency="daily",
        active=True,
        timezone="UTC",
        send_hour=8,
        send_weekday=0,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return subs.SubscriptionRow(**{**base, **kw})


def test_schedule_follows_the_local_clock_across_daylight_saving():
    ny = _row(timezone="America/New_York")
    # 2026-03-08: clocks go forward in New York; 08:00 local is 12:00 UTC on that day, 13:00 before
    p = subs.due_period(ny, datetime(2026, 3, 8, 12, 30, tzinfo=UTC))
    assert p.key == "daily:2026-03-08" and p.end == datetime(2026, 3, 8, 12, tzinfo=UTC)
    assert p.end - p.start == timedelta(hours=23)
    assert subs.due_period(ny, datetime(2026, 3, 8, 11, 59, tzinfo=UTC)).key == "daily:2026-03-07"
    berlin = _row(timezone="Europe/Berlin", send_hour=7)
    p = subs.due_period(berlin, datetime(2026, 10, 25, 6, 30, tzinfo=UTC))  # 07:30 CET, a 25 h day
    assert p.key == "daily:2026-10-25" and p.end - p.start == timedelta(hours=25)
    weekly = _row(frequency="weekly", send_weekday=4, timezone="Asia/Shanghai", send_hour=9)
    p = subs.due_period(weekly, datetime(2026, 3, 10, 3, tzinfo=UTC))  # Tuesday: last Friday's
    assert p.key == "weekly:2026-03-06" and p.end == datetime(2026, 3, 6, 1, tzinfo=UTC)
    assert p.end - p.start == timedelta(days=7)
    late = _row(created_at=datetime(2026, 3, 10, 9, tzinfo=UTC))
    assert (
        subs.due_period(late, datetime(2026, 3, 10, 10, tzinfo=UTC)) is None
    )  # ended before it existed
    assert subs.due_period(_row(frequency="immediate"), datetime(2026, 3, 10, tzinfo=UTC)) is None


def test_quiet_periods_send_nothing_or_one_line_by_choice(sqlite_url, smtp_server):
    rt = Runtime(_settings(sqlite_url, smtp_server.port))
    with rt.sessions() as s:
        for target, quiet in (("skip@example.test", "skip"), ("quiet@example.test", "all_quiet")):
            subs.create(
                s,
                subs.SubscriptionIn(
                    target=target, quiet=quiet, language="zh" if quiet == "all_quiet" else "en"
                ),
                actor="t",
                now=T0 - timedelta(days=2),
            )
    report = rt.delivery_service().run(T0 + timedelta(hours=8, minutes=1))
    assert len(report.quiet_skipped) == 1 and [m["To"] for m in smtp_server.parsed()] == [
        "quiet@example.test"
    ]
    msg = smtp_server.parsed()[0]
    assert "一切平稳" in msg["Subject"] and "一切平稳" in msg.get_body(("plain",)).get_content()
    rt.close()


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"errcode": 0, "errmsg": "ok"}')

    def log_message(self, *args):
        pass


def test_an_l1_alert_goes_at_once_to_a_signed_wecom_webhook(sqlite_url, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("RADAR_WEBHOOK_SECRET_ONCALL", "s3cret")
    rt = Runtime(_settings(sqlite_url, 1))
    try:
        with rt.sessions() as s:
            subs.create(
                s,
                subs.SubscriptionIn(
                    channel="webhook",
                    format="wecom",
                    frequency="immediate",
                    language="zh",
                    target=f"http://127.0.0.1:{server.server_port}/cgi-bin/webhook/send?key=abc",
                    secret_env="RADAR_WEBHOOK_SECRET_ONCALL",
                ),
                actor="t",
                now=T0,
                allow=LOOPBACK,
            )
            make_alert(
                s, at=T0 + timedelta(hours=1), severity="L2"
            )  # below its minimum (L1): not sent
            l1 = make_alert(
                s,
                at=T0 + timedelta(hours=2),
                severity="L1",
                aspect="health_safety",
                type="severe_complaint",
            )
        service = rt.delivery_service()
        report = service.run(T0 + timedelta(hours=2, minutes=1))
        assert report.dispatch.sent and len(_Receiver.received) == 1
        path, headers, body = _Receiver.received[0]
        assert path.endswith("key=abc") and verify(
            body, headers, b"s3cret", now=datetime.now().timestamp()
        )
        payload = json.loads(body)
        assert payload["msgtype"] == "markdown" and "[L1]" in payload["markdown"]["content"]
        assert (
            "健康与安全" in payload["markdown"]["content"]
            and f"/v1/alerts/{l1.id}" in payload["markdown"]["content"]
        )
        service.run(T0 + timedelta(hours=3))
        assert len(_Receiver.received) == 1  # once per alert
    finally:
        server.shutdown()
        rt.close()


def _app(rt):
    from service.api.app import create_app

    return create_app(runtime=rt)


def test_subscriptions_through_the_api(sqlite_url):
    from service.api.deps import Caller, get_caller

    rt = Runtime(_settings(sqlite_url, 1))
    with TestClient(_app(rt)) as c:
        r = c.post(
            "/v1/subscriptions",
            json={
                "target": "a@example.test",
                "regions": ["East"],
                "language": "zh",
                "timezone": "Asia/Shanghai",
                "send_hour": 8,
            },
        )
        assert (
            r.status_code == 201
            and r.json()["regions"] == ["East"]
            and r.json()["min_severity"] == "L3"
        )
        sid = r.json()["id"]
        bad = c.post(
            "/v1/subscriptions", json={"target": "a@example.test", "timezone": "Mars/Olympus"}
        )
        assert bad.status_code == 422 and "timezone" in json.dumps(bad.json())
        bad = c.post("/v1/subscriptions", json={"target": "not-an-address"})
        assert bad.status_code == 422 and "not an email address" in json.dumps(bad.json())
        hook = c.post(
            "/v1/subscriptions",
            json={
                "channel": "webhook",
                "format": "slack",
                "frequency": "immediate",
                "target": "https://hooks.slack.com/services/T0/B0/SECRET",
            },
        ).json()
        assert "SECRET" not in hook["target"] and hook["min_severity"] == "L1"
        assert c.patch(f"/v1/subscriptions/{sid}", json={"send_hour": 25}).status_code == 422
        assert (
            c.patch(f"/v1/subscriptions/{sid}", json={"send_hour": 9, "active": False}).json()[
                "active"
            ]
            is False
        )
        assert (
            c.get("/v1/subscriptions", params={"active": True}).json()["subscriptions"][0]["id"]
            == hook["id"]
        )
        c.app.dependency_overrides[get_caller] = lambda: Caller(id="v", role="viewer")
        assert (
            c.get("/v1/subscriptions").status_code == 403 and c.get("/v1/outbox").status_code == 403
        )
        c.app.dependency_overrides.clear()
        assert c.delete(f"/v1/subscriptions/{sid}").status_code == 204
        assert c.get(f"/v1/subscriptions/{sid}").status_code == 404
    rt.close()


def test_radar_subscriptions_and_digest_commands(sqlite_url, smtp_server, tmp_path):
    from typer.testing import CliRunner

    from service.cli.main import app

    env = {"RADAR_DATABASE_URL": sqlite_url, "RADAR_DELIVERY__SMTP_PORT": str(smtp_server.port)}
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "subscriptions",
            "add",
            "lead@example.test",
            "--region",
            "East,North",
            "--language",
            "zh",
            "--timezone",
            "Asia/Shanghai",
        ],
        env=env,
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["regions"] == ["East", "North"]
    r = runner.invoke(
        app, ["subscriptions", "add", "x@example.test", "--timezone", "Nowhere/City"], env=env
    )
    assert r.exit_code == 2 and "timezone" in r.output and "Nowhere/City" in r.output
    r = runner.invoke(app, ["subscriptions", "update", "1", "--set", "send_hour=7"], env=env)
    assert r.exit_code == 0 and json.loads(r.output)["send_hour"] == 7
    listed = json.loads(runner.invoke(app, ["subscriptions", "list", "--json"], env=env).output)
    assert [x["target"] for x in listed] == ["lead@example.test"]
    r = runner.invoke(app, ["digest", "run", "--json"], env=env)
    assert r.exit_code == 0 and "composed" in json.loads(r.output)
    assert runner.invoke(app, ["outbox", "list", "--status", "dead"], env=env).exit_code == 0


def test_radar_serve_runs_the_delivery_schedule_in_process(sqlite_url, smtp_server):
    import time

    from service.cli.main import _digest_job, _schedule

    rt = Runtime(_settings(sqlite_url, smtp_server.port))
    with (
        rt.sessions() as s
    ):  # due now: yesterday's subscriber, midnight UTC, wants "all quiet" lines
        subs.create(
            s,
            subs.SubscriptionIn(target="q@example.test", quiet="all_quiet", send_hour=0),
            actor="t",
            now=datetime.now(UTC) - timedelta(days=2),
        )
    stop = threading.Event()
    th = threading.Thread(
        target=_schedule, args=("digest", _digest_job(rt), 0.2, stop), daemon=True
    )
    th.start()
    deadline = time.time() + 20
    while not smtp_server.messages and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # a few more rounds of the schedule: still one message
    stop.set()
    th.join(5)
    assert len(smtp_server.messages) == 1 and not th.is_alive()
    rt.close()


def test_unsubscribed_before_the_send_is_cancelled_not_sent(store, smtp_server):
    from sqlalchemy import select

    service = store.delivery_service()
    now = T0 + timedelta(hours=8)
    service.run(now, send=False)  # composed, queued
    with store.sessions() as s:
        subs.unsubscribe(s, s.scalars(select(subs.SubscriptionRow)).one())
    report = service.run(now + timedelta(minutes=1))
    assert (
        report.dispatch.cancelled
        and smtp_server.messages == []
        and _statuses(store) == [("cancelled", 1)]
    )


def test_switching_to_immediate_does_not_replay_old_alerts(store, smtp_server):
    from sqlalchemy import select

    with store.sessions() as s:
        sub = s.scalars(select(subs.SubscriptionRow)).one()
        subs.update(
            s, sub, subs.SubscriptionPatch(frequency="immediate", min_severity="L3"), now=T0
        )
        make_alert(s, at=T0 + timedelta(minutes=5), aspect="packaging")
    report = store.delivery_service().run(T0 + timedelta(minutes=10))
    assert (
        len(report.composed) == 1 and len(smtp_server.messages) == 1
    )  # the new alert, not the one of 3 days ago
    msg = smtp_server.parsed()[0]
    assert msg["Subject"].startswith("[L2] Feedback Radar:") and "Packaging" in msg["Subject"]
    text = msg.get_body(("plain",)).get_content()
    assert "What changed" not in text


def test_webhooks_are_only_sent_signed_and_plain_smtp_login_is_refused(
    sqlite_url, smtp_server, monkeypatch
):
    from service.config import DeliverySettings
    from service.delivery.outbox import send_email

    monkeypatch.delenv("RADAR_WEBHOOK_SECRET", raising=False)
    rt = Runtime(_settings(sqlite_url, 1))
    with rt.sessions() as s:
        subs.create(
            s,
            subs.SubscriptionIn(
                channel="webhook", frequency="immediate", target="http://127.0.0.1:9/hook"
            ),
            actor="t",
            now=T0,
            allow=LOOPBACK,
        )
        make_alert(s, at=T0 + timedelta(minutes=1), severity="L1")
    report = rt.delivery_service().run(T0 + timedelta(minutes=2))
    assert report.dispatch.dead
    with rt.sessions() as s:
        from sqlalchemy import select

        assert "RADAR_WEBHOOK_SECRET is not set" in s.scalars(select(OutboxRow)).one().last_error
    rt.close()
    plain = DeliverySettings(smtp_port=smtp_server.port, smtp_username="radar", smtp_password="pw")
    r = send_email(plain, to="a@example.test", message=b"Subject: x\r\n\r\nx\r\n")
    assert (
        not r.ok
        and not r.retryable
        and "plain connection" in r.error
        and smtp_server.messages == []
    )
    with pytest.raises(Exception, match="secret_env"):
        subs.SubscriptionIn(
            channel="webhook", target="http://x.test/h", secret_env="RADAR_DELIVERY__SMTP_PASSWORD"
        )


# --- webhook targets, errors and logs (issue 20) -------------------------------------------

PROBE_TARGETS = [  # what an independent probe subscribed: each must be refused, naming the field
    ("http://169.254.169.254/latest/meta-data?token=PROBE-TOKEN-1", "link-local"),
    ("http://10.0.0.1/hook?token=PROBE-TOKEN-1", "private"),
    ("http://[::ffff:169.254.169.254]/hook?token=PROBE-TOKEN-1", "link-local"),
    ("http://0x7f000001/hook?token=PROBE-TOKEN-1", "loopback"),
    ("http://localhost:22/hook?token=PROBE-TOKEN-1", "loopback"),
    ("https://2130706433/hook?token=PROBE-TOKEN-1", "loopback"),
    ("http://[::1]:8080/hook?token=PROBE-TOKEN-1", "loopback"),
    ("http://0.0.0.0:8000/hook?token=PROBE-TOKEN-1", "unspecified"),
]


def _subscribe_webhook(c: TestClient, target: str):
    return c.post("/v1/subscriptions", json={"channel": "webhook", "target": target})


def test_webhook_targets_inside_the_network_are_refused_through_the_api(sqlite_url):
    rt = Runtime(_settings(sqlite_url, 1, webhook_allow=[]))
    with TestClient(_app(rt)) as c:
        for target, kind in PROBE_TARGETS:
            r = _subscribe_webhook(c, target)
            assert r.status_code == 422, (target, r.text)
            body = r.json()
            assert f"{kind} address" in json.dumps(body) and "webhook_allow" in json.dumps(body)
            assert [d["field"] for d in body["error"]["details"]] == ["body.target"], body
            assert "PROBE-TOKEN-1" not in r.text and "/hook" not in r.text
        assert _subscribe_webhook(c, "http://0177.0.0.1/h").status_code == 422
        assert c.get("/v1/subscriptions").json()["subscriptions"] == []  # nothing stored
    rt.close()
    rt = Runtime(_settings(sqlite_url, 1, webhook_allow=["127.0.0.0/8", "169.254.169.254"]))
    with TestClient(_app(rt)) as c:  # what the allow-list names is accepted, nothing more
        assert _subscribe_webhook(c, "http://0x7f000001/h").status_code == 201
        assert _subscribe_webhook(c, "http://169.254.169.254/h").status_code == 201
        assert _subscribe_webhook(c, "http://10.0.0.1/h").status_code == 422
    rt.close()


def test_radar_subscriptions_add_refuses_internal_webhook_targets(sqlite_url):
    from typer.testing import CliRunner

    from service.cli.main import app

    env = {"RADAR_DATABASE_URL": sqlite_url}
    runner = CliRunner()
    for target, kind in PROBE_TARGETS:
        r = runner.invoke(app, ["subscriptions", "add", target, "--channel", "webhook"], env=env)
        assert r.exit_code == 2, (target, r.output)
        assert "target: webhook target" in r.output and f"{kind} address" in r.output
        assert "PROBE-TOKEN-1" not in r.output
    allowed = {**env, "RADAR_DELIVERY__WEBHOOK_ALLOW": '["127.0.0.1/32"]'}
    r = runner.invoke(
        app, ["subscriptions", "add", "http://localhost:9/h", "--channel", "webhook"], env=allowed
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["target"] == "http://localhost:9/…"


def _l1_alert_for_webhook(rt: Runtime, target: str) -> Runtime:
    """An immediate webhook subscription to ``target`` (allowed on loopback) and an L1 alert."""
    with rt.sessions() as s:
        subs.create(
            s,
            subs.SubscriptionIn(channel="webhook", frequency="immediate", target=target),
            actor="t",
            now=T0,
            allow=LOOPBACK,
        )
        make_alert(s, at=T0 + timedelta(minutes=1), severity="L1")
    return rt


def _the_dead_letter(rt: Runtime) -> dict:
    """The one dead message, as ``GET /v1/outbox`` shows it."""
    with TestClient(_app(rt)) as c:
        (dead,) = c.get("/v1/outbox", params={"status": "dead"}).json()["messages"]
    return dead


def test_a_target_refused_at_send_time_is_dead_lettered_and_never_contacted(
    sqlite_url, receiver, monkeypatch
):
    """Allowed when subscribed; by the send the allow-list no longer names it (as when a
    name's DNS answer turns private): refused with the reason, dead at once, no request."""
    monkeypatch.setenv("RADAR_WEBHOOK_SECRET", "s3cret")
    receiver.answer(200, b"")
    _l1_alert_for_webhook(
        Runtime(_settings(sqlite_url, 1)), receiver.url + "/hook?token=TOK-55aa66bb"
    ).close()
    rt = Runtime(_settings(sqlite_url, 1, webhook_allow=[]))
    report = rt.delivery_service().run(T0 + timedelta(minutes=2))
    assert report.dispatch.dead and not report.dispatch.sent and receiver.requests == []
    dead = _the_dead_letter(rt)
    assert dead["attempts"] == 1
    assert dead["last_error"].startswith("refused: webhook target 127.0.0.1 is a loopback address")
    assert "TOK-55aa66bb" not in json.dumps(dead) and "/hook" not in json.dumps(dead)
    rt.close()


def test_a_failed_webhook_records_status_and_reason_and_logs_no_url_secrets(
    sqlite_url, receiver, monkeypatch, caplog
):
    monkeypatch.setenv("RADAR_WEBHOOK_SECRET", "s3cret")
    receiver.answer(
        400,
        b"invalid payload; internal host db-7.corp:5432 user=admin token=INNER-SECRET",
        "text/plain",
    )
    rt = _l1_alert_for_webhook(
        Runtime(_settings(sqlite_url, 1)),
        receiver.url + "/services/T0/B0/PATH-SECRET-77?token=TOK-88cc",
    )
    with caplog.at_level(logging.DEBUG):  # radar -v
        report = rt.delivery_service().run(T0 + timedelta(minutes=2))
    assert report.dispatch.dead and len(receiver.requests) == 1
    dead = _the_dead_letter(rt)
    assert dead["last_error"] == f"HTTP 400 Bad Request from {receiver.url}/…"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP Request: POST" in logged  # httpx's request line is there, redacted
    for secret in ("TOK-88cc", "PATH-SECRET-77", "/services", "INNER-SECRET", "db-7.corp"):
        assert secret not in json.dumps(dead) and secret not in logged
    rt.close()
