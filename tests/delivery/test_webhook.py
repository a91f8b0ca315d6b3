"""Webhooks: every format arrives signed, well-formed and in one piece at a real HTTP
receiver on loopback; DingTalk's 加签 checks out; chat limits hold; send results tell the
outbox what to retry; errors never leak the URL's credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import socket
import threading
from datetime import UTC, datetime
from urllib.parse import parse_qs, quote_plus, urlsplit

import httpx
import pytest

from service.delivery.notice import Notice
from service.delivery.webhook import (
    DINGTALK_TEXT_MAX,
    FORMATS,
    SLACK_HEADER_MAX,
    SLACK_SECTION_MAX,
    WECOM_CONTENT_MAX,
    SendResult,
    compose,
    dingtalk_signed_url,
    redact_url,
    send,
    sign,
    signature_headers,
    verify,
)

SECRET = b"SECa1b2c3d4e5f6-shared-secret"
LOOPBACK = ("127.0.0.1/32",)  # delivery.webhook_allow for the loopback receiver (targets.py)
NOW = 1_735_700_000.0  # a fixed sending moment, for the tests that do not use the clock
DETECTED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)

ALERT = Notice(
    kind="alert",
    title="口味投诉激增 Taste complaints surge",
    lines=["品牌 Brand: 茶饮A", "“太甜” too sweet: 12% → 31%", "细分 Segment: 上海 Shanghai"],
    language="zh",
    severity="L1",
    link="https://radar.example.com/alerts/42?tab=items&lang=zh",
    data={"alert_id": 42, "aspect": "口味", "detected_at": DETECTED},
)
DIGEST = Notice(
    kind="digest",
    title="Weekly digest 每周摘要",
    lines=["1,204 reviews 条评价 (+8%)", "Top complaint 主要投诉: 排队 queues"],
    language="en",
    data={"period": "2025-W01", "counts": {"items": 1204}},
)
LABEL = {"en": "Open in Radar", "zh": "在 Radar 中查看"}
SUCCESS = {
    "generic": b"",
    "slack": b"ok",
    "wecom": b'{"errcode":0,"errmsg":"ok"}',
    "dingtalk": b'{"errcode":0,"errmsg":"ok"}',
}


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- every format, end to end ------------------------------------------------------------


def _check_structure(fmt: str, payload: dict, notice: Notice) -> None:
    shown_title = f"[{notice.severity}] {notice.title}" if notice.severity else notice.title
    label = LABEL[notice.language]
    if fmt == "generic":
        assert payload == {
            "type": notice.kind,
            "title": notice.title,
            "severity": notice.severity,
            "language": notice.language,
            "link": notice.link,
            "lines": notice.lines,
            "data": json.loads(json.dumps(notice.data, default=str)),
        }
        if "detected_at" in notice.data:
            assert payload["data"]["detected_at"] == str(DETECTED)
    elif fmt == "slack":
        assert payload["text"] == shown_title
        blocks = payload["blocks"]
        assert blocks[0] == {
            "type": "header",
            "text": {"type": "plain_text", "text": shown_title, "emoji": True},
        }
        assert blocks[1]["type"] == "section" and blocks[1]["text"]["type"] == "mrkdwn"
        assert blocks[1]["text"]["text"] == "\n".join("• " + line for line in notice.lines)
        if notice.link:
            assert len(blocks) == 3 and blocks[2]["type"] == "context"
            escaped = notice.link.replace("&", "&amp;")
            assert blocks[2]["elements"] == [{"type": "mrkdwn", "text": f"<{escaped}|{label}>"}]
        else:
            assert len(blocks) == 2
    elif fmt == "wecom":
        assert payload["msgtype"] == "markdown"
        content = payload["markdown"]["content"]
        expected = f"**{shown_title}**\n" + "\n".join("- " + line for line in notice.lines)
        if notice.link:
            expected += f"\n\n[{label}]({notice.link})"
        assert content == expected
    else:
        assert payload["msgtype"] == "markdown"
        assert payload["markdown"]["title"] == shown_title
        expected = f"### {shown_title}\n\n" + "\n".join("- " + line for line in notice.lines)
        if notice.link:
            expected += f"\n\n[{label}]({notice.link})"
        assert payload["markdown"]["text"] == expected
    if not notice.link:
        assert label not in json.dumps(payload, ensure_ascii=False)


@pytest.mark.parametrize("notice", [ALERT, DIGEST], ids=["alert", "digest"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_arrives_signed_intact_and_well_formed(receiver, fmt, notice):
    receiver.answer(200, SUCCESS[fmt], "application/json" if fmt != "slack" else "text/plain")
    body = compose(fmt, notice)

    result = send(fmt, receiver.url + "/hook", body, secret=SECRET, allow=LOOPBACK)

    assert result == SendResult(ok=True, status=200, error=None, retryable=False)
    got = receiver.last
    assert got.path == "/hook" and got.body == body
    assert got.headers["Content-Type"] == "application/json; charset=utf-8"
    # The signature verifies over the raw bytes received, with any header case ...
    assert verify(got.body, got.headers, SECRET)
    assert verify(got.body, {k.lower(): v for k, v in got.headers.items()}, SECRET)
    # ... and not with another secret or a body changed by one byte.
    assert not verify(got.body, got.headers, b"another secret")
    tampered = got.body.replace(b'"', b"'", 1)
    assert tampered != got.body and not verify(tampered, got.headers, SECRET)
    # UTF-8 on the wire, Chinese as is (not \u escapes), and the format's structure.
    text = got.body.decode("utf-8")
    assert "\\u" not in text
    assert ("口味投诉激增" if notice is ALERT else "每周摘要").encode("utf-8") in got.body
    for line in notice.lines:
        assert line.encode("utf-8") in got.body
    _check_structure(fmt, json.loads(text), notice)


def test_slack_escapes_control_characters():
    notice = Notice(
        kind="alert",
        title="A & B <!channel>",
        lines=["x < y & <@U123> > z"],
        link="https://r.example/a?b=1&c=<2>",
    )
    payload = json.loads(compose("slack", notice))
    assert payload["text"] == "A &amp; B &lt;!channel&gt;"
    assert payload["blocks"][1]["text"]["text"] == "• x &lt; y &amp; &lt;@U123&gt; &gt; z"
    link = payload["blocks"][2]["elements"][0]["text"]
    assert link == "<https://r.example/a?b=1&amp;c=&lt;2&gt;|Open in Radar>"


# --- DingTalk 加签 -----------------------------------------------------------------------


def _dingtalk_sign(secret: str, ms: int) -> str:
    mac = hmac.new(secret.encode(), f"{ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def test_dingtalk_url_carries_a_valid_native_signature_and_keeps_the_token(receiver):
    receiver.answer(200, {"errcode": 0, "errmsg": "ok"})
    body = compose("dingtalk", ALERT)

    result = send(
        "dingtalk",
        receiver.url + "/robot/send?access_token=tok%2Babc123",
        body,
        secret=SECRET,
        now=NOW,
        allow=LOOPBACK,
    )

    assert result.ok
    got = receiver.last
    assert got.path == "/robot/send"
    assert got.query.startswith("access_token=tok%2Babc123&")  # byte for byte
    params = parse_qs(got.query)
    assert params["access_token"] == ["tok+abc123"]
    ms = int(NOW * 1000)
    assert params["timestamp"] == [str(ms)]
    expected = _dingtalk_sign(SECRET.decode(), ms)
    assert params["sign"] == [expected]
    assert f"sign={quote_plus(expected)}" in got.query  # URL-encoded, as DingTalk wants
    assert verify(got.body, got.headers, SECRET, now=NOW + 1)  # and our own one too


def test_dingtalk_signed_url_replaces_an_earlier_signature():
    url = "https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp=1&sign=old"
    signed = dingtalk_signed_url(url, "SECxyz", 1_700_000_000_123)
    parts = urlsplit(signed)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "oapi.dingtalk.com", "/robot/send")
    params = parse_qs(parts.query)
    assert params == {
        "access_token": ["abc"],
        "timestamp": ["1700000000123"],
        "sign": [_dingtalk_sign("SECxyz", 1_700_000_000_123)],
    }


def test_without_a_secret_nothing_is_signed(receiver):
    receiver.answer(200, {"errcode": 0})
    body = compose("dingtalk", DIGEST)
    result = send(
        "dingtalk", receiver.url + "/robot/send?access_token=t", body, secret=None, allow=LOOPBACK
    )
    assert result.ok
    got = receiver.last
    assert got.query == "access_token=t"
    assert "X-Radar-Signature" not in got.headers and "X-Radar-Timestamp" not in got.headers


# --- verify ------------------------------------------------------------------------------


def test_verify_accepts_the_window_and_rejects_stale_or_future_timestamps():
    body = b'{"a":1}'
    headers = signature_headers(body, SECRET, NOW)
    assert headers == {
        "Content-Type": "application/json; charset=utf-8",
        "X-Radar-Timestamp": str(int(NOW)),
        "X-Radar-Signature": "v1=" + sign(body, SECRET, int(NOW)),
    }
    assert verify(body, headers, SECRET, now=NOW + 299)
    assert not verify(body, headers, SECRET, now=NOW + 301)  # stale: a replay
    assert not verify(body, headers, SECRET, now=NOW - 301)  # from the future
    assert verify(body, headers, SECRET, now=NOW + 3000, tolerance_s=3600)


def test_sign_is_hmac_sha256_over_timestamp_dot_body():
    expected = hmac.new(b"k", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign(b"{}", b"k", 1_700_000_000) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Radar-Timestamp": str(int(NOW))},
        {"X-Radar-Timestamp": "abc", "X-Radar-Signature": "GOOD"},
        {"X-Radar-Timestamp": "-5", "X-Radar-Signature": "GOOD"},
        {"X-Radar-Timestamp": "1.7e9", "X-Radar-Signature": "GOOD"},
        {"X-Radar-Timestamp": "9" * 5000, "X-Radar-Signature": "GOOD"},
        {
            "X-Radar-Timestamp": "１７３５７０００００",
            "X-Radar-Signature": "GOOD",
        },  # full-width digits
        {"X-Radar-Timestamp": str(int(NOW)), "X-Radar-Signature": "deadbeef"},
        {"X-Radar-Timestamp": str(int(NOW)), "X-Radar-Signature": "v2=HEX"},
        {"X-Radar-Timestamp": str(int(NOW)), "X-Radar-Signature": "v1=ü"},
        {"X-Radar-Timestamp": str(int(NOW)), "X-Radar-Signature": "v1="},
    ],
    ids=lambda h: ",".join(f"{k}={v[:12]}" for k, v in h.items()) or "none",
)
def test_verify_rejects_malformed_headers_without_raising(headers):
    body = b"{}"
    good = "v1=" + sign(body, SECRET, int(NOW))
    filled = {k: v.replace("GOOD", good).replace("HEX", good[3:]) for k, v in headers.items()}
    assert verify(body, filled, SECRET, now=NOW) is False


def test_verify_accepts_any_of_several_signatures_for_secret_rotation():
    body = b"{}"
    headers = signature_headers(body, SECRET, NOW)
    headers["X-Radar-Signature"] = "v1=" + "0" * 64 + ", " + headers["X-Radar-Signature"]
    assert verify(body, headers, SECRET, now=NOW)


# --- truncation --------------------------------------------------------------------------


def _long_notice(pad: int) -> Notice:
    line = "口味太甜了🍵 too sweet & <b> " * 20
    return Notice(
        kind="alert",
        title="很长的标题 A very long title " * 20,
        lines=["a" * pad + f"第{i}行 line {i}: {line}" for i in range(300)],
        language="zh",
        severity="L2",
        link="https://radar.example.com/alerts/7",
    )


@pytest.mark.parametrize("pad", [0, 1, 2, 3])  # moves the cut across a multi-byte character
def test_long_notices_fit_every_chat_limit(pad):
    notice = _long_notice(pad)
    footer = "\n\n[在 Radar 中查看](https://radar.example.com/alerts/7)"

    wecom = json.loads(compose("wecom", notice).decode("utf-8"))["markdown"]["content"]
    assert len(wecom.encode("utf-8")) <= WECOM_CONTENT_MAX
    assert len(wecom.encode("utf-8")) > WECOM_CONTENT_MAX - 8  # cut at the limit, not far below
    assert wecom.startswith("**[L2] 很长的标题") and wecom.endswith("…" + footer)

    ding = json.loads(compose("dingtalk", notice).decode("utf-8"))["markdown"]
    assert len(ding["text"]) <= DINGTALK_TEXT_MAX
    assert ding["text"].startswith("### [L2] 很长的标题") and ding["text"].endswith("…" + footer)

    blocks = json.loads(compose("slack", notice).decode("utf-8"))["blocks"]
    header, section = blocks[0]["text"]["text"], blocks[1]["text"]["text"]
    assert len(header) <= SLACK_HEADER_MAX and header.endswith("…")
    assert len(section) <= SLACK_SECTION_MAX and section.endswith("…")
    assert not re.search(r"&(?!amp;|lt;|gt;)", section)  # no escape cut in half
    assert (
        blocks[2]["elements"][0]["text"] == "<https://radar.example.com/alerts/7|在 Radar 中查看>"
    )


@pytest.mark.parametrize(
    "fmt, head, measure, limit",
    [
        ("wecom", "**t**\n- ", lambda s: len(s.encode()), WECOM_CONTENT_MAX),
        ("dingtalk", "### t\n\n- ", len, DINGTALK_TEXT_MAX),
    ],
)
def test_a_message_exactly_at_the_limit_is_not_cut(fmt, head, measure, limit):
    def text(n):
        payload = json.loads(compose(fmt, Notice(kind="digest", title="t", lines=["x" * n])))
        return payload["markdown"]["content" if fmt == "wecom" else "text"]

    exact = text(limit - measure(head))
    assert measure(exact) == limit and not exact.endswith("…")
    over = text(limit - measure(head) + 1)
    assert measure(over) <= limit and over.endswith("…")


# --- send results ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt, status, reply, ok, retryable, says",
    [
        ("generic", 500, b"oops", False, True, "HTTP 500"),
        ("generic", 503, b"", False, True, "HTTP 503"),
        ("generic", 400, b"bad payload", False, False, "HTTP 400"),
        ("generic", 204, b"", True, False, None),
        ("slack", 429, b"rate_limited", False, True, "HTTP 429"),
        ("slack", 404, b"no_service", False, False, "no_service"),
        ("slack", 200, b"ok", True, False, None),
        ("wecom", 200, {"errcode": 93000, "errmsg": "invalid webhook url"}, False, False, "93000"),
        ("wecom", 200, {"errcode": 45009, "errmsg": "api freq out of limit"}, False, True, "45009"),
        ("wecom", 200, {"errcode": 0, "errmsg": "ok"}, True, False, None),
        ("wecom", 200, b"<html>captive portal</html>", False, False, "without an errcode"),
        ("dingtalk", 200, {"errcode": 0, "errmsg": "ok"}, True, False, None),
        ("dingtalk", 200, {"errcode": 130101, "errmsg": "send too fast"}, False, True, "130101"),
        ("dingtalk", 200, {"errcode": 310000, "errmsg": "sign not match"}, False, False, "310000"),
    ],
)
def test_send_results_tell_what_to_retry(receiver, fmt, status, reply, ok, retryable, says):
    receiver.answer(status, reply)
    result = send(
        fmt, receiver.url + "/hook", compose(fmt, ALERT), secret=SECRET, now=NOW, allow=LOOPBACK
    )
    assert (result.ok, result.status, result.retryable) == (ok, status, retryable)
    if ok:
        assert result.error is None
    else:
        assert says in result.error and len(result.error) <= 200
    assert len(receiver.requests) == 1


def test_connection_refused_is_retryable_and_leaks_no_secret(closed_port):
    url = f"http://127.0.0.1:{closed_port}/robot/send?access_token=TOKEN-9f8e7d6c"
    result = send(
        "dingtalk", url, compose("dingtalk", ALERT), secret=SECRET, timeout=2, allow=LOOPBACK
    )
    assert (result.ok, result.status, result.retryable) == (False, None, True)
    assert f"127.0.0.1:{closed_port}" in result.error
    for secret_part in ("TOKEN-9f8e7d6c", "access_token", "?", "sign=", SECRET.decode(), "/robot"):
        assert secret_part not in result.error


def test_an_error_page_echoing_the_url_is_redacted(receiver):
    receiver.answer(
        400, b"bad request: POST /services/T0001/B0002/XyZsecretToken?key=KEY-123456", "text/plain"
    )
    url = receiver.url + "/services/T0001/B0002/XyZsecretToken?key=KEY-123456"
    result = send("slack", url, compose("slack", DIGEST), secret=SECRET, allow=LOOPBACK)
    assert not result.ok and not result.retryable and "HTTP 400" in result.error
    for secret_part in ("XyZsecretToken", "KEY-123456", "key=", SECRET.decode()):
        assert secret_part not in result.error


def test_an_error_page_echoing_the_secret_or_another_url_is_not_stored(receiver):
    # The receiver's body never reaches the error (issue 20): not redacted, left out.
    page = b"bad secret " + SECRET + b"; see https://proxy.internal/auth?token=ZZZ-987"
    receiver.answer(401, page, "text/plain")
    result = send(
        "generic", receiver.url + "/hook", compose("generic", DIGEST), secret=SECRET, allow=LOOPBACK
    )
    assert (result.ok, result.status, result.retryable) == (False, 401, False)
    assert result.error == f"HTTP 401 Unauthorized from {receiver.url}/…"
    for secret_part in (SECRET.decode(), "token=", "ZZZ-987", "proxy.internal", "bad secret"):
        assert secret_part not in result.error


def test_a_receiver_that_never_answers_times_out_as_retryable():
    with socket.socket() as listener:  # accepts connections (backlog) but never replies
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook?key=K-abcdef"
        result = send(
            "generic", url, compose("generic", DIGEST), secret=SECRET, timeout=0.3, allow=LOOPBACK
        )
    assert (result.ok, result.status, result.retryable) == (False, None, True)
    assert "timeout" in result.error and "K-abcdef" not in result.error


def test_a_given_client_is_used_and_left_open(receiver):
    receiver.answer(200, b"ok")
    with httpx.Client() as client:
        for _ in range(2):
            assert send(
                "slack",
                receiver.url + "/s",
                compose("slack", DIGEST),
                secret=None,
                client=client,
                allow=LOOPBACK,
            ).ok
        assert not client.is_closed
    assert len(receiver.requests) == 2


def test_redact_url_keeps_only_scheme_and_host():
    assert (
        redact_url("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc")
        == "https://qyapi.weixin.qq.com/…"
    )
    assert redact_url("https://user:pw@h.example:8443") == "https://h.example:8443"
    assert redact_url("not a url") == "…"


# --- unknown format ----------------------------------------------------------------------


def test_an_unknown_format_is_named():
    with pytest.raises(ValueError, match="'teams'"):
        compose("teams", ALERT)
    with pytest.raises(ValueError, match="'teams'"):
        send("teams", "http://127.0.0.1:9/", b"{}", secret=None)


# --- where a webhook may go (issue 20) ---------------------------------------------------


def _resolver(answers: dict[str, list[str]], calls: list[str] | None = None):
    """A stand-in for socket.getaddrinfo: ``answers`` per host (a list of lists answers each
    call in turn), real resolution for anything else."""

    def resolve(host, port, *args, **kwargs):
        if calls is not None:
            calls.append(host)
        key = host.lower().rstrip(".")  # as DNS compares names
        if key not in answers:
            return socket.getaddrinfo(host, port, *args, **kwargs)
        found = answers[key]
        if found and isinstance(found[0], list):
            found = found.pop(0) if len(found) > 1 else found[0]
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in found
        ]

    return resolve


@pytest.mark.parametrize(
    "address, kind",
    [
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:169.254.169.254", "link-local"),  # IPv4-mapped
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.1.2.3", "private"),
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 around 169.254.169.254
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 around 169.254.169.254
    ],
)
def test_internal_addresses_are_refused_by_kind(address, kind):
    import ipaddress

    from service.delivery.targets import refusal

    assert refusal(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_global_addresses_pass(address):
    import ipaddress

    from service.delivery.targets import refusal

    assert refusal(ipaddress.ip_address(address)) is None


# Each form is resolved by the system's getaddrinfo, as the connection would be.
PROBE_HOSTS = [
    ("169.254.169.254", "link-local"),
    ("10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "link-local"),
    ("0x7f000001", "loopback"),  # hex integer IPv4
    ("2130706433", "loopback"),  # decimal integer IPv4
    ("127.1", "loopback"),  # short form
    ("localhost", "loopback"),
    ("0.0.0.0", "unspecified"),
]


@pytest.mark.parametrize("host, kind", PROBE_HOSTS)
def test_vet_resolves_every_disguise(host, kind):
    from service.delivery.targets import TargetRefused, vet

    with pytest.raises(TargetRefused, match=f"{kind} address.*delivery.webhook_allow"):
        vet(host, 22, ())


def test_the_allow_list_names_hosts_or_networks():
    from service.delivery.targets import TargetRefused, vet

    resolve = _resolver(
        {
            "hooks.internal": ["10.1.2.3"],
            "mixed.example": ["93.184.215.14", "10.9.9.9"],
            "other.internal": ["10.1.2.4"],
        }
    )
    # a network admits its addresses, also IPv4-mapped ones; a bare address is a /32
    assert vet("127.0.0.1", 80, ["127.0.0.1/32"]) == ["127.0.0.1"]
    assert vet("::ffff:127.0.0.1", 80, ["127.0.0.0/8"]) == ["::ffff:127.0.0.1"]
    assert vet("10.1.2.3", 80, ["10.1.2.3"]) == ["10.1.2.3"]
    assert vet("other.internal", 80, ["10.1.0.0/16"], resolve=resolve) == ["10.1.2.4"]
    # a host name admits that name (any case, trailing dot) and nothing else
    assert vet("Hooks.Internal.", 80, ["hooks.internal"], resolve=resolve) == ["10.1.2.3"]
    with pytest.raises(
        TargetRefused, match="other.internal resolves to 10.1.2.4, which is a private"
    ):
        vet("other.internal", 80, ["hooks.internal"], resolve=resolve)
    with pytest.raises(TargetRefused, match="loopback"):
        vet("127.0.0.2", 80, ["127.0.0.1/32"])
    # one internal address among public ones refuses the host
    with pytest.raises(TargetRefused, match="mixed.example resolves to 10.9.9.9"):
        vet("mixed.example", 443, (), resolve=resolve)
    assert vet("mixed.example", 443, ["10.9.9.0/24"], resolve=resolve) == [
        "93.184.215.14",
        "10.9.9.9",
    ]


@pytest.mark.parametrize("host, kind", PROBE_HOSTS)
def test_a_send_to_an_internal_target_is_refused_without_connecting(receiver, host, kind):
    port = urlsplit(receiver.url).port
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/hook?token=TOKEN-4c3b2a19"
    result = send("generic", url, compose("generic", ALERT), secret=SECRET, timeout=2)
    assert (result.ok, result.status, result.retryable) == (False, None, False)
    assert result.error.startswith("refused: webhook target") and f"{kind} address" in result.error
    assert "TOKEN-4c3b2a19" not in result.error and "/hook" not in result.error
    assert receiver.requests == []  # the loopback receiver would have answered every one of them


def test_the_send_connects_to_the_address_it_checked(receiver):
    """The host is resolved once, checked, and the request goes to that address with the
    name in Host: this name is unknown to the system's DNS, so only the checked address can
    have carried it."""
    calls: list[str] = []
    resolve = _resolver({"hooks.example.test": ["127.0.0.1"]}, calls)
    port = urlsplit(receiver.url).port
    receiver.answer(200, b"")
    url = f"http://hooks.example.test:{port}/hook?token=T-1"

    refused = send("generic", url, compose("generic", ALERT), secret=SECRET, resolve=resolve)
    assert (
        not refused.ok
        and "hooks.example.test resolves to 127.0.0.1, which is a loopback" in refused.error
    )

    result = send(
        "generic",
        url,
        compose("generic", ALERT),
        secret=SECRET,
        resolve=resolve,
        allow=["hooks.example.test"],
    )
    assert result.ok, result.error
    assert calls == ["hooks.example.test", "hooks.example.test"]  # once per send
    got = receiver.last
    assert got.path == "/hook" and got.query == "token=T-1"
    assert got.headers["Host"] == f"hooks.example.test:{port}"


def test_dns_rebinding_after_the_check_is_not_followed():
    """A resolver that answers a public address to the check and loopback afterwards: the
    request goes to the public address (recorded here, no network) and DNS is not asked again."""
    calls: list[str] = []
    resolve = _resolver({"rebind.example": [["93.184.215.14"], ["127.0.0.1"]]}, calls)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        result = send(
            "generic",
            "https://rebind.example/hook?token=T-2",
            compose("generic", DIGEST),
            secret=SECRET,
            resolve=resolve,
            client=client,
        )
    assert result.ok
    assert calls == ["rebind.example"]
    (request,) = seen
    assert request.url.host == "93.184.215.14" and request.url.query == b"token=T-2"
    assert request.headers["Host"] == "rebind.example"
    assert (
        request.extensions["sni_hostname"] == "rebind.example"
    )  # TLS checks the name's certificate
    # and the next send asks again and refuses what it hears now
    again = send(
        "generic",
        "https://rebind.example/hook?token=T-2",
        compose("generic", DIGEST),
        secret=SECRET,
        resolve=resolve,
        client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    assert not again.ok and not again.retryable and "127.0.0.1, which is a loopback" in again.error
    assert len(seen) == 1


def test_an_unresolvable_host_is_a_retryable_error_naming_only_the_host():
    result = send(
        "slack",
        "https://no-such-host.invalid/services/T0/B0/XSECRETX",
        compose("slack", DIGEST),
        secret=None,
    )
    assert (result.ok, result.status, result.retryable) == (False, None, True)
    assert "cannot resolve the host of https://no-such-host.invalid/…" in result.error
    assert "XSECRETX" not in result.error


# --- what a failed send stores (issue 20) -------------------------------------------------


@pytest.mark.parametrize(
    "fmt, status, reply, expected",
    [
        ("generic", 400, b"internal: db password hunter2 at 10.0.0.7", "HTTP 400 Bad Request"),
        ("generic", 500, b"<html>Traceback: secret stuff</html>", "HTTP 500 Internal Server Error"),
        ("generic", 418, b"teapot secret stuff", "HTTP 418 I'm a teapot"),
        ("generic", 599, b"secret stuff", "HTTP 599"),
        ("slack", 403, b"secret stuff", "HTTP 403 Forbidden"),
        ("slack", 404, b"no_service", "HTTP 404 Not Found (no_service)"),
        ("wecom", 200, {"errcode": 93000, "errmsg": "secret stuff"}, "wecom errcode 93000"),
        ("dingtalk", 200, {"errcode": 310000, "errmsg": "secret stuff"}, "dingtalk errcode 310000"),
        ("wecom", 200, b"<html>secret stuff</html>", "wecom answered without an errcode"),
    ],
)
def test_a_failed_send_stores_the_status_and_reason_never_the_body(
    receiver, fmt, status, reply, expected
):
    receiver.answer(status, reply, "text/plain")
    result = send(
        fmt,
        receiver.url + "/hook?token=TOK-12345",
        compose(fmt, ALERT),
        secret=SECRET,
        now=NOW,
        allow=LOOPBACK,
    )
    assert not result.ok and result.status == status
    assert result.error.startswith(expected)
    for leaked in ("secret stuff", "hunter2", "10.0.0.7", "Traceback", "TOK-12345", "/hook"):
        assert leaked not in result.error


def test_a_reason_phrase_chosen_by_the_receiver_is_not_stored():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def answer():
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 400 leaked internal secret\r\nContent-Length: 0\r\n\r\n")

        thread = threading.Thread(target=answer)
        thread.start()
        result = send(
            "generic", f"http://127.0.0.1:{port}/h", b"{}", secret=None, timeout=5, allow=LOOPBACK
        )
        thread.join(5)
    assert result.error == f"HTTP 400 Bad Request from http://127.0.0.1:{port}/…"


# --- logs (issue 20) ----------------------------------------------------------------------


def test_debug_logs_of_a_send_carry_no_url_secrets(receiver, caplog):
    receiver.answer(200, {"errcode": 0, "errmsg": "ok"})
    url = receiver.url + "/cgi-bin/webhook/send?key=KEY-5e4d3c2b1a"
    with caplog.at_level(logging.DEBUG):
        result = send("wecom", url, compose("wecom", ALERT), secret=SECRET, allow=LOOPBACK)
        assert result.ok
        failed = send(
            "wecom",
            "http://user:PW-998877@127.0.0.1:9/s/T0KEN-PATH-776655?key=KEY-5e4d3c2b1a",
            compose("wecom", ALERT),
            secret=SECRET,
            allow=LOOPBACK,
            timeout=1,
        )
        assert not failed.ok
    messages = [r.getMessage() for r in caplog.records]
    assert any("HTTP Request: POST" in m for m in messages)  # httpx did log the request ...
    text = "\n".join(messages)
    for secret in (
        "KEY-5e4d3c2b1a",
        "key=",
        "/cgi-bin",
        "PW-998877",
        "T0KEN-PATH",
        SECRET.decode(),
    ):
        assert secret not in text  # ... without its path, query or password
    assert f"POST {receiver.url}/…" in text
