"""The email a rendered digest or alert goes out as: an RFC 5322 message of
``multipart/alternative`` (the plain text, and a ``multipart/related`` HTML part whose charts
are PNG parts referenced by ``cid:``), with a deterministic ``Message-ID`` and the signed
one-click unsubscribe link.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr

from service.delivery.digest_render import Rendered
from service.delivery.subscriptions import unsubscribe_token
from service.store.tables import SubscriptionRow


def message_id(dedupe_key: str, sender: str) -> str:
    """Deterministic per message, so a resend after a crash carries the same ``Message-ID``."""
    domain = (parseaddr(sender)[1].rpartition("@")[2] or "radar.local").strip(">")
    return f"<radar.{hashlib.sha256(dedupe_key.encode()).hexdigest()[:24]}@{domain}>"


def unsubscribe_url(public_url: str, sub: SubscriptionRow, key: bytes) -> str:
    return f"{public_url.rstrip('/')}/v1/unsubscribe?token={unsubscribe_token(sub, key)}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def email_bytes(
    r: Rendered,
    *,
    to: str,
    sender: str,
    msg_id: str,
    date: datetime,
    language: str,
    unsubscribe_url: str | None,
) -> bytes:
    """The RFC 5322 message: alternative(text, related(html, png…)), CRLF line ends."""
    msg = EmailMessage(policy=SMTP)
    # a line break in a phrase or segment must not break the header
    msg["Subject"] = _one_line(r.subject)
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = msg_id
    msg["Auto-Submitted"] = "auto-generated"
    if unsubscribe_url:
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(r.text, subtype="plain", charset="utf-8")
    msg.add_alternative(r.html, subtype="html", charset="utf-8")
    html_part = msg.get_payload()[1]
    for cid, png, _alt in r.images:
        html_part.add_related(
            png,
            maintype="image",
            subtype="png",
            cid=f"<{cid}>",
            filename=cid.split("@")[0] + ".png",
            disposition="inline",
        )
    msg["Content-Language"] = language  # after the body: setting content clears Content-* headers
    return msg.as_bytes()
