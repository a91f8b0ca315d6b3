"""Digests from the demo data (real model, the alerts of the weekly replay) through a real
SMTP server on loopback: parts, inline charts, scope, language, idempotency, unsubscribe."""

from __future__ import annotations

import re
from datetime import timedelta
from io import BytesIO

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.delivery import subscriptions as subs
from service.delivery.scheduler import DeliveryService

PNG = b"\x89PNG\r\n\x1a\n"


def _service(rt, port: int, **delivery):
    settings = Settings(
        database_url=rt.settings.database_url,
        delivery={
            "smtp_port": port,
            "sender": "Radar <radar@example.test>",
            "public_url": "http://radar.example.test",
            "signing_key": "k3y",
            **delivery,
        },
    )
    return DeliveryService(settings, rt.sessions), settings


def _parts(msg):
    """(text/plain part, the HTML part, {content id: image part}) of a digest."""
    assert msg.get_content_type() == "multipart/alternative"
    plain, related = msg.get_payload()
    assert (
        plain.get_content_type() == "text/plain"
        and related.get_content_type() == "multipart/related"
    )
    html_part, *images = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    return plain, html_part, {p["Content-ID"].strip("<>"): p for p in images}


@pytest.fixture
def demo_digests(demo_store, demo_alerts, smtp_server):
    """Two subscribers on the demo data: the East regional lead (Chinese, daily at 08:00
    Shanghai time) and a global manager (English, weekly on Monday 09:00 UTC)."""
    rt, _, cfg = demo_store
    end = cfg.start + timedelta(weeks=cfg.weeks)  # the replay's last run
    with rt.sessions() as s:
        lead = subs.create(
            s,
            subs.SubscriptionIn(
                target="lead.east@example.test",
                name="East lead",
                regions=["East"],
                language="zh",
                timezone="Asia/Shanghai",
                send_hour=8,
            ),
            actor="test",
            now=end - timedelta(days=30),
        )
        boss = subs.create(
            s,
            subs.SubscriptionIn(
                target="boss@example.test",
                frequency="weekly",
                send_hour=9,
                send_weekday=0,
                language="en",
            ),
            actor="test",
            now=end - timedelta(days=1),
        )  # the week before is not its
    service, settings = _service(rt, smtp_server.port)
    yield rt, service, settings, lead, boss, end, smtp_server
    with rt.sessions() as s:  # the demo store is shared: leave no subscriber behind
        for sid in (lead.id, boss.id):
            row = s.get(subs.SubscriptionRow, sid)
            s.delete(row)
        s.commit()


def test_a_digest_from_the_demo_data_arrives_whole(demo_digests):
    rt, service, settings, lead, boss, end, inbox = demo_digests
    now = end + timedelta(
        hours=2
    )  # Monday 02:00 UTC: 10:00 in Shanghai; the weekly one is not due yet
    report = service.run(now)
    assert report.failed == [] and report.dispatch.dead == [], report.to_dict()
    assert len(inbox.messages) == 1 and inbox.recipients == [["lead.east@example.test"]]
    msg = inbox.parsed()[0]
    assert (
        "摘要" in msg["Subject"]
        and msg["To"] == "lead.east@example.test"
        and msg["Content-Language"] == "zh"
    )
    assert re.fullmatch(r"<radar\.[0-9a-f]{24}@example\.test>", msg["Message-ID"])
    plain, html_part, images = _parts(msg)
    text, body = plain.get_content(), html_part.get_content()
    # the scope: only the East region's alert, the taste shift in East × 18-24; not the
    # competitor's brand-wide packaging surge
    assert "口味投诉" in text and "East × 18-24" in text and "包装投诉" not in text, text
    assert not re.search(r", (West|North|South|Central)\)", text), (
        text
    )  # single complaints: East's only
    assert "您关注范围内的告警" in text and "退订" in text
    # every cid: in the HTML is an attached PNG with alt text, and every image is used
    cids = re.findall(r'src="cid:([^"]+)"', body)
    assert cids and set(cids) == set(images), (cids, list(images))
    assert len(re.findall(r'<img [^>]*alt="[^"]+"', body)) == len(cids)
    import matplotlib.image as mpimg

    for _cid, part in images.items():
        data = part.get_content()
        assert part.get_content_type() == "image/png" and data.startswith(PNG)
        assert mpimg.imread(BytesIO(data), format="png").shape[1] >= 400
    # the alert links and the signed unsubscribe link
    assert re.search(r'href="http://radar\.example\.test/v1/alerts/\d+"', body)
    unsub = re.search(
        r"<(http://radar\.example\.test/v1/unsubscribe\?token=[^>]+)>", msg["List-Unsubscribe"]
    ).group(1)
    assert unsub in text
    # idempotent: the same period is not sent again, however often cron runs
    assert service.run(now + timedelta(minutes=1)).composed == [] and len(inbox.messages) == 1


def test_the_global_manager_gets_english_and_every_region(demo_digests):
    rt, service, settings, lead, boss, end, inbox = demo_digests
    service.run(end + timedelta(hours=9, minutes=5))  # Monday 09:05 UTC: both due
    by_to = {m["To"]: m for m in inbox.parsed()}
    assert set(by_to) == {"lead.east@example.test", "boss@example.test"}
    msg = by_to["boss@example.test"]
    assert (
        msg["Subject"].startswith("Feedback Radar weekly digest")
        and msg["Content-Language"] == "en"
    )
    plain, html_part, images = _parts(msg)
    text = plain.get_content()
    assert (
        "Taste and flavour complaints" in text and "Packaging complaints" in text
    )  # both alerts, all regions
    assert "What changed since the last digest" in text and "摘要" not in text
    assert len(images) >= 3  # two alert charts and sentiment by region


def test_unsubscribe_through_the_signed_link_stops_the_digest(demo_digests):
    from service.api.app import create_app

    rt, service, settings, lead, boss, end, inbox = demo_digests
    service.run(end + timedelta(hours=2))
    link = re.search(
        r"<(http://radar\.example\.test(/v1/unsubscribe\?token=[^>]+))>",
        inbox.parsed()[0]["List-Unsubscribe"],
    ).group(2)
    from service.runtime import Runtime

    with TestClient(
        create_app(runtime=Runtime(settings, scorer=rt.scorer))
    ) as c:  # the digests' signing key
        assert (
            c.get(link.replace("token=", "token=9")).status_code == 404
        )  # a forged token does nothing
        assert c.get(link[:-3] + "abc").status_code == 404
        page = c.get(link)  # a GET only asks (mail scanners follow links)
        assert page.status_code == 200 and 'method="post"' in page.text
        assert c.get(f"/v1/subscriptions/{lead.id}").json()["active"] is True
        done = c.post(link)  # the button, or a mail client's one-click POST
        assert done.status_code == 200 and "将不再收到" in done.text
        assert c.get(f"/v1/subscriptions/{lead.id}").json()["active"] is False
    service.run(end + timedelta(days=1, hours=2))  # the next day's digest is not sent to the lead
    assert [m["To"] for m in inbox.parsed()].count("lead.east@example.test") == 1
