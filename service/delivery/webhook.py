"""Webhooks: dress a :class:`Notice` for a chat tool or a generic receiver, sign it, send it.

Composing and sending are separate steps because the outbox stores each call as composed
(format, URL, JSON body bytes) and sends it later, retrying on failure. The body is fixed
when it is composed; the signature is made when it is *sent*, so a retry hours later carries
a fresh timestamp instead of one a receiver would reject as stale.

Formats (``FORMATS``):

* ``generic``: our own JSON (``type``, ``title``, ``severity``, ``language``, ``link``,
  ``lines``, ``data``) for receivers that process alerts by machine;
* ``slack``: an incoming-webhook message (``text`` fallback plus Block Kit blocks);
* ``wecom``: a 企业微信 group-robot ``markdown`` message;
* ``dingtalk``: a 钉钉 custom-robot ``markdown`` message.

The chat tools cap message sizes (Slack: 150 characters of header, 3000 of section text;
WeCom: 4096 UTF-8 bytes of content; DingTalk: 5000 characters of text) and reject a message
over the cap outright, so the lines are truncated with "…" to fit, keeping the title and
the link; a cut never splits a UTF-8 character or a Slack ``&amp;`` escape.

Verifying our signature (every format carries it; a generic receiver should check it)
-----------------------------------------------------------------------------------------
Each request has ``X-Radar-Timestamp`` (Unix seconds at sending) and
``X-Radar-Signature: v1=<hex>``, where ``<hex>`` is HMAC-SHA256 keyed with the shared
secret over ``b"<timestamp>." + <raw body bytes>``. A receiver:

1. computes the HMAC over the raw request body *exactly as received* (before parsing or
   re-serialising the JSON, which would change the bytes);
2. compares its hex digest with the one after ``v1=`` in constant time
   (``hmac.compare_digest``), so timing does not leak how much of a guess matched;
3. rejects a timestamp more than 5 minutes from its own clock, so a captured request
   cannot be replayed later (the timestamp is signed, so it cannot be moved either);
4. remembers the (timestamp, signature) pairs it accepted in the last 5 minutes and drops
   a repeat, which closes the replay window. The outbox re-signs every retry with a new
   timestamp, so a receiver that must not act twice on a redelivered notice dedupes on its
   content (e.g. the alert id in ``data``), not on the signature.

:func:`verify` does steps 1–3 (a Python receiver can call it).

DingTalk's own signature (加签)
-------------------------------
A DingTalk robot with "加签" security enabled rejects any call without its own signature in
the URL, whatever our headers say. Its scheme: ``timestamp`` = Unix milliseconds,
``sign`` = URL-encoded base64 of HMAC-SHA256 keyed with the robot's secret (the ``SEC…``
string) over ``f"{timestamp}\\n{secret}"``, both appended to the robot URL next to its
``access_token``; DingTalk refuses a timestamp more than an hour off. :func:`send` adds it
(:func:`dingtalk_signed_url`) for ``dingtalk`` whenever a secret is given, and the same
secret keys our ``X-Radar-Signature``.

Webhook URLs are credentials (WeCom's ``key`` and DingTalk's ``access_token`` are query
parameters; Slack's token is the URL path), so error texts name only the scheme and host,
and the HTTP client's request log lines are redacted the same way. Error texts never quote
what the receiver answered either (only the status and its standard reason, a chat robot's
numeric ``errcode``, or one of Slack's fixed error words): the outbox shows them to admins.

Where a webhook may go is ``service.delivery.targets``: every send resolves the host, refuses
private, loopback, link-local, multicast and reserved addresses that ``delivery.webhook_allow``
does not name, and connects to the address it checked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, quote_plus, urlsplit, urlunsplit

import httpx

from service.delivery.notice import Notice
from service.delivery.targets import Resolver, TargetRefused, endpoint, vet

FORMATS = ("generic", "slack", "wecom", "dingtalk")

ELLIPSIS = "…"
SLACK_HEADER_MAX = 150  # characters of a header block's plain_text
SLACK_SECTION_MAX = 3000  # characters of a section block's text
WECOM_CONTENT_MAX = 4096  # UTF-8 bytes of markdown.content
DINGTALK_TEXT_MAX = 5000  # characters of markdown.text

SIGNATURE_VERSION = "v1"
CONTENT_TYPE = "application/json; charset=utf-8"

# Error codes a chat robot answers with HTTP 200 that mean "try again later": WeCom 45009
# and DingTalk 130101 are their rate limits (about 20 messages a minute per robot); -1 is
# "system busy" on both, which their documentation says to retry.
RETRYABLE_ERRCODES = {"wecom": frozenset({45009, -1}), "dingtalk": frozenset({130101, -1})}

_LINK_LABEL = {"en": "Open in Radar", "zh": "在 Radar 中查看"}
_ERROR_MAX = 200


# --- composing ---------------------------------------------------------------------------


def compose(fmt: str, notice: Notice) -> bytes:
    """The JSON body of the webhook call for ``fmt`` (UTF-8, compact, non-ASCII kept as is:
    the chat tools display it and it is a third of the size of ``\\u`` escapes)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown webhook format {fmt!r}; expected one of {', '.join(FORMATS)}")
    payload = _COMPOSERS[fmt](notice)
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.encode("utf-8", "replace")


def _generic(notice: Notice) -> dict:
    return {
        "type": notice.kind,
        "title": notice.title,
        "severity": notice.severity,
        "language": notice.language,
        "link": notice.link,
        "lines": list(notice.lines),
        "data": notice.data,
    }


def _slack(notice: Notice) -> dict:
    title = _chat_title(notice)
    blocks: list[dict] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _cut_chars(title, SLACK_HEADER_MAX),
                "emoji": True,
            },
        }
    ]
    lines = _clean_lines(notice)
    if lines:
        bullets = "\n".join("• " + _slack_escape(line) for line in lines)
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _cut_slack(bullets, SLACK_SECTION_MAX)},
            }
        )
    if notice.link:
        url = _slack_escape(notice.link.replace("|", "%7C"))
        link = f"<{url}|{_slack_escape(_link_label(notice))}>"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": link}]})
    return {"text": _slack_escape(title), "blocks": blocks}


def _wecom(notice: Notice) -> dict:
    head, body, foot = _markdown_parts(notice, heading=f"**{_chat_title(notice)}**", gap="\n")
    content = _fit(head, body, foot, WECOM_CONTENT_MAX, _utf8_len, _cut_bytes)
    return {"msgtype": "markdown", "markdown": {"content": content}}


def _dingtalk(notice: Notice) -> dict:
    title = _chat_title(notice)
    head, body, foot = _markdown_parts(notice, heading=f"### {title}", gap="\n\n")
    text = _fit(head, body, foot, DINGTALK_TEXT_MAX, len, _cut_chars)
    return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}


_COMPOSERS = {"generic": _generic, "slack": _slack, "wecom": _wecom, "dingtalk": _dingtalk}


def _chat_title(notice: Notice) -> str:
    """The title as a chat shows it: the severity first, because that decides who looks."""
    title = " ".join(notice.title.split()) or "Feedback Radar"
    return f"[{notice.severity}] {title}" if notice.severity else title


def _clean_lines(notice: Notice) -> list[str]:
    """One visual line each: an embedded newline would break a bullet list apart."""
    return [" ".join(line.split()) for line in notice.lines if line and line.strip()]


def _link_label(notice: Notice) -> str:
    return _LINK_LABEL.get(notice.language, _LINK_LABEL["en"])


def _markdown_parts(notice: Notice, *, heading: str, gap: str) -> tuple[str, str, str]:
    """Heading, bulleted lines and link footer, kept apart so that only the lines are cut."""
    lines = _clean_lines(notice)
    body = gap + "\n".join("- " + line for line in lines) if lines else ""
    foot = f"\n\n[{_link_label(notice)}]({_markdown_url(notice.link)})" if notice.link else ""
    return heading, body, foot


def _markdown_url(url: str) -> str:
    """Spaces and parentheses would end a markdown link target early."""
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def _slack_escape(text: str) -> str:
    """Slack reads ``<…>`` as links or mentions (``<!channel>``) and ``&`` as an entity."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "replace"))


def _cut_chars(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(limit - len(ELLIPSIS), 0)] + ELLIPSIS


def _cut_slack(text: str, limit: int) -> str:
    """Like ``_cut_chars``, but never leaves half an ``&amp;``/``&lt;``/``&gt;`` behind."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - len(ELLIPSIS), 0)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + ELLIPSIS


def _cut_bytes(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes, ending in "…"; backs off to a character boundary."""
    raw = text.encode("utf-8", "replace")
    if len(raw) <= limit:
        return text
    room = limit - _utf8_len(ELLIPSIS)
    if room <= 0:
        return ""
    while room > 0 and (raw[room] & 0xC0) == 0x80:  # raw[room] continues a character
        room -= 1
    return raw[:room].decode("utf-8") + ELLIPSIS


def _fit(
    head: str,
    body: str,
    foot: str,
    limit: int,
    measure: Callable[[str], int],
    cut: Callable[[str, int], str],
) -> str:
    """``head + body + foot`` within ``limit``, cutting the body first so that the title and
    the link survive; only a head and foot that alone overflow get cut themselves."""
    full = head + body + foot
    if measure(full) <= limit:
        return full
    room = limit - measure(head) - measure(foot)
    if room > measure(ELLIPSIS):
        return head + cut(body, room) + foot
    return cut(full, limit)


# --- signing -----------------------------------------------------------------------------


def sign(body: bytes, secret: bytes, timestamp: int) -> str:
    """Hex HMAC-SHA256 over ``b"<timestamp>." + body``: signing the timestamp with the body
    stops a replayer from refreshing an old request's timestamp."""
    return hmac.new(secret, f"{int(timestamp)}.".encode() + body, hashlib.sha256).hexdigest()


def signature_headers(body: bytes, secret: bytes, now: float) -> dict[str, str]:
    """The request headers for ``body`` sent at ``now`` (Unix seconds)."""
    ts = int(now)
    return {
        "Content-Type": CONTENT_TYPE,
        "X-Radar-Timestamp": str(ts),
        "X-Radar-Signature": f"{SIGNATURE_VERSION}={sign(body, secret, ts)}",
    }


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secret: bytes,
    *,
    tolerance_s: int = 300,
    now: float | None = None,
) -> bool:
    """Whether ``body`` with these request ``headers`` was signed with ``secret`` within
    ``tolerance_s`` seconds of ``now`` (either side, for clock skew). Header names are
    matched case-insensitively (proxies and frameworks change case); anything malformed is
    simply not verified. Replays inside the window are the receiver's to drop (module
    docstring)."""
    try:
        lowered = {str(k).lower(): v for k, v in headers.items()}
        ts_text = str(lowered.get("x-radar-timestamp", "")).strip()
        sig_text = str(lowered.get("x-radar-signature", "")).strip()
    except Exception:  # noqa: BLE001 - a hostile or odd mapping is "not verified"
        return False
    if not (ts_text.isascii() and ts_text.isdigit()) or len(ts_text) > 12:
        return False
    ts = int(ts_text)
    current = time.time() if now is None else now
    if not abs(current - ts) <= tolerance_s:  # written so that a NaN clock fails too
        return False
    expected = sign(body, secret, ts).encode()
    # Several comma-separated signatures are allowed, so a secret can be rotated.
    for part in sig_text.split(","):
        version, _, digest = part.strip().partition("=")
        if version == SIGNATURE_VERSION and hmac.compare_digest(
            expected, digest.strip().encode("utf-8", "replace")
        ):
            return True
    return False


def dingtalk_signed_url(url: str, secret: str, now_ms: int) -> str:
    """``url`` with DingTalk's 加签 ``timestamp`` and ``sign`` appended (module docstring).
    The rest of the query (``access_token``) is kept byte for byte; a ``timestamp``/``sign``
    already there (a stored URL signed before) is replaced, not repeated."""
    ms = int(now_ms)
    digest = hmac.new(secret.encode("utf-8"), f"{ms}\n{secret}".encode(), hashlib.sha256)
    signature = quote_plus(base64.b64encode(digest.digest()).decode("ascii"))
    parts = urlsplit(url)
    kept = [
        piece
        for piece in parts.query.split("&")
        if piece and piece.split("=", 1)[0] not in ("timestamp", "sign")
    ]
    query = "&".join([*kept, f"timestamp={ms}", f"sign={signature}"])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


# --- sending -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    """How one attempt went. ``retryable`` tells the outbox whether trying the same call
    again later can succeed (a network error, an overloaded or rate-limiting receiver) or
    cannot (a bad URL, a rejected message): those need a person. ``error`` is short and safe
    to store and show: it never contains the secret or the URL's path or query."""

    ok: bool
    status: int | None
    error: str | None
    retryable: bool


def send(
    fmt: str,
    url: str,
    body: bytes,
    *,
    secret: bytes | None,
    timeout: float = 10.0,
    now: float | None = None,
    client: httpx.Client | None = None,
    allow: Iterable[str] = (),
    resolve: Resolver = socket.getaddrinfo,
) -> SendResult:
    """POST a composed ``body`` to ``url``, signed at this moment (``now``, default the
    clock) when a ``secret`` is given. Never raises for HTTP or network failures: the outbox
    needs a result to record and a verdict on retrying. ``client`` lets a caller reuse
    connections (it is not closed here); redirects are not followed, as a webhook that
    redirects is misconfigured.

    The host is resolved here, each address is checked (``service.delivery.targets``: no
    private, loopback, link-local, multicast or reserved address unless ``allow`` names the
    host or its network) and the request goes to a checked address, with the URL's host as
    ``Host`` and TLS server name, so a DNS answer that changes after the check is never used.
    A refused target is a permanent failure: nothing is sent."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown webhook format {fmt!r}; expected one of {', '.join(FORMATS)}")
    moment = time.time() if now is None else now
    if secret is not None:
        headers = signature_headers(body, secret, moment)
    else:
        headers = {"Content-Type": CONTENT_TYPE}
    target = url
    if fmt == "dingtalk" and secret is not None:
        try:
            target = dingtalk_signed_url(url, secret.decode("utf-8"), int(moment * 1000))
        except UnicodeDecodeError:
            return SendResult(False, None, "dingtalk secret is not UTF-8 text", False)

    def fail(status: int | None, what: str, retryable: bool) -> SendResult:
        return SendResult(False, status, _scrub(what, url=target, secret=secret), retryable)

    where = redact_url(url)
    try:
        parsed = httpx.URL(target)
        if parsed.scheme not in ("http", "https") or not parsed.raw_host:
            return fail(None, f"bad webhook URL {where}: not an http(s) URL with a host", False)
        host, port = endpoint(parsed)
        addresses = vet(host, port, allow, resolve=resolve)
    except httpx.InvalidURL as exc:
        return fail(None, f"bad webhook URL {where}: {exc}", False)
    except TargetRefused as exc:
        return fail(None, f"refused: {exc}", False)
    except (OSError, UnicodeError) as exc:  # the name does not resolve (now): DNS may recover
        return fail(None, f"cannot resolve the host of {where}: {exc}", True)

    hide_urls_in_http_logs()
    headers["Host"] = parsed.netloc.decode("ascii")
    extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
    try:
        response = _post_first(addresses, parsed, body, headers, extensions, timeout, client)
    except httpx.TimeoutException as exc:
        return fail(None, f"timeout ({type(exc).__name__}) posting to {where}", True)
    except httpx.UnsupportedProtocol as exc:
        return fail(None, f"bad webhook URL {where}: {exc}", False)
    except httpx.TransportError as exc:
        return fail(None, f"network error ({type(exc).__name__}) posting to {where}: {exc}", True)
    except httpx.InvalidURL as exc:
        return fail(None, f"bad webhook URL {where}: {exc}", False)
    except httpx.HTTPError as exc:  # decoding and other protocol trouble: worth another try
        return fail(None, f"HTTP error ({type(exc).__name__}) posting to {where}: {exc}", True)

    status = response.status_code
    if not 200 <= status < 300:
        retryable = status >= 500 or status in (408, 429)
        return fail(
            status, f"{_status_line(status)}{_slack_code(fmt, response)} from {where}", retryable
        )
    if fmt in ("wecom", "dingtalk"):
        # These robots answer 200 to everything and put the verdict in the JSON: only the
        # number is kept, their ``errmsg`` is text from the receiver (see _status_line).
        try:
            code = int(response.json()["errcode"])
        except Exception:  # noqa: BLE001 - any unreadable answer is a failure
            return fail(status, f"{fmt} answered without an errcode", False)
        if code != 0:
            return fail(status, f"{fmt} errcode {code}", code in RETRYABLE_ERRCODES[fmt])
    return SendResult(True, status, None, False)


def _post_first(
    addresses: list[str],
    url: httpx.URL,
    body: bytes,
    headers: dict[str, str],
    extensions: dict,
    timeout: float,
    client: httpx.Client | None,
) -> httpx.Response:
    """POST to the first of the checked ``addresses`` that takes the connection."""

    def post(c: httpx.Client, address: str) -> httpx.Response:
        request = c.build_request(
            "POST",
            url.copy_with(host=address),
            content=body,
            headers=headers,
            extensions=extensions,
            timeout=timeout,
        )
        return c.send(request, follow_redirects=False)

    def each(c: httpx.Client) -> httpx.Response:
        for address in addresses[:-1]:
            try:
                return post(c, address)
            except httpx.ConnectError:
                continue
        return post(c, addresses[-1])

    if client is not None:
        return each(client)
    with httpx.Client(timeout=timeout, follow_redirects=False) as own:
        return each(own)


def _status_line(status: int) -> str:
    """``HTTP 400 Bad Request``: the standard reason phrase, never the one the receiver sent
    nor its body. A failed send's error is stored and shown (``GET /v1/outbox``), and text
    a target chose would turn Radar into a reader of whatever the URL points at."""
    reason = httpx.codes.get_reason_phrase(status)
    return f"HTTP {status} {reason}" if reason else f"HTTP {status}"


# Slack answers a rejected incoming-webhook call with one of these words as the whole body; a
# word from this fixed list tells the admin what to fix and carries nothing of the receiver's.
SLACK_ERRORS = frozenset(
    {
        "invalid_payload",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_token",
        "user_not_found",
        "channel_not_found",
        "channel_is_archived",
        "action_prohibited",
        "posting_to_general_channel_denied",
        "too_many_attachments",
        "no_service",
        "no_service_id",
        "no_team",
        "team_disabled",
        "no_active_hooks",
        "rate_limited",
    }
)


def _slack_code(fmt: str, response: httpx.Response) -> str:
    if fmt != "slack":
        return ""
    try:
        word = response.content[:64].strip().decode("ascii")
    except UnicodeDecodeError:
        return ""
    return f" ({word})" if word in SLACK_ERRORS else ""


def redact_url(url: str) -> str:
    """Scheme and host only (``https://host/…``): webhook URLs carry their credential in
    the query (WeCom ``key``, DingTalk ``access_token``) or in the path (Slack)."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rsplit("@", 1)[-1]
    except ValueError:
        return ELLIPSIS
    if not parts.scheme or not host:
        return ELLIPSIS
    rest = "/" + ELLIPSIS if (parts.path.strip("/") or parts.query or parts.fragment) else ""
    return f"{parts.scheme}://{host}{rest}"


def shown_fields(row, names: Iterable[str]) -> dict:
    """The fields ``names`` of a stored subscription or message as they are shown: datetimes in
    ISO 8601, a webhook's target through ``redact_url`` (an email address as it is)."""
    shown = {}
    for name in names:
        value = getattr(row, name)
        shown[name] = value.isoformat() if isinstance(value, datetime) else value
    if "target" in shown and row.channel != "email":
        shown["target"] = redact_url(row.target)
    return shown


_URL_RE = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^\s/?#'\"<>]+)[^\s'\"<>]*")


def _scrub(text: str, *, url: str, secret: bytes | None) -> str:
    """``text`` without anything secret from ``url`` or ``secret``, one line, short. An
    exception or a server's error page may echo the URL or parts of it."""
    hidden: set[str] = set()
    if secret:
        hidden.add(secret.decode("utf-8", "replace"))
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is not None:
        hidden.update({url, parts.query, parts.path})
        hidden.update(value for _, value in parse_qsl(parts.query) if len(value) >= 4)
        hidden.update(seg for seg in parts.path.split("/") if len(seg) >= 8)
    for item in sorted((h for h in hidden if h and len(h) >= 4), key=len, reverse=True):
        text = text.replace(item, ELLIPSIS)
    text = _URL_RE.sub(_redact_match, text)
    text = " ".join(text.split())
    return _cut_chars(text, _ERROR_MAX)


def _redact_match(match: re.Match) -> str:
    found = match.group(0)
    url = found.rstrip(":,;.)]")  # punctuation after a URL belongs to the sentence
    return redact_url(url) + found[len(url) :]


class _RedactUrls(logging.Filter):
    """Rewrites a log record's URLs to scheme and host (``redact_url``). httpx logs every
    request at INFO as ``HTTP Request: POST <full URL> …``, which with ``radar -v`` would
    write a webhook's token (query, path or userinfo) to the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the logging module's to report
            return True
        redacted = _URL_RE.sub(_redact_match, message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


HTTP_LOGGERS = ("httpx",)


def hide_urls_in_http_logs() -> None:
    """Install :class:`_RedactUrls` on the HTTP client's logger (once). A filter on the logger
    applies whatever handlers, levels or formats the process configured."""
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactUrls) for f in logger.filters):
            logger.addFilter(_RedactUrls())
