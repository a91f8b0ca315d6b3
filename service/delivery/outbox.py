"""The outbox: every digest and webhook call is composed, stored, then sent, then marked.

Guarantees.

* **Nothing lost.** A message exists in the ``outbox`` table (committed) before any attempt to
  send it; a crash at any later point leaves it there, ``pending`` or ``sending``, and the
  next run sends it.
* **Nothing sent twice, with one unavoidable window.** Composing is idempotent
  (``dedupe_key``: one digest per subscriber and period, one notice per alert and
  subscriber). A sender *claims* a message with a compare-and-set (``pending`` →
  ``sending`` with a lease) before sending, so two schedulers never send the same one. A
  crash before the send leaves a claimed message whose lease expires, and it is sent then,
  once. The window no protocol closes: the process dies after the SMTP server (or webhook
  receiver) accepted the message and before ``sent`` was committed. The next run sends it
  again, byte for byte: the same ``Message-ID`` header (deterministic, from the dedupe key)
  lets mail systems and readers drop the copy; webhook bodies carry the same ``id`` for
  receivers to de-duplicate on.
* **Retries with backoff, then a dead letter.** A failed send that may succeed later
  (connection refused, timeouts, SMTP 4xx, HTTP 5xx/429) is retried after
  ``backoff_seconds · 2^(attempt−1)`` (capped at 6 h); after ``max_attempts`` tries, or at
  once for a permanent failure (SMTP 5xx, a rejected recipient, HTTP 4xx), the message is
  ``dead`` with its last error, listed by ``GET /v1/outbox?status=dead`` and
  ``radar outbox list --status dead``, and can be retried by hand.

Fault injection for the crash tests: ``RADAR_FAILPOINTS=after_compose,after_send`` makes the
process kill itself (SIGKILL, no clean-up) at those points.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import smtplib
import ssl
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.config import DeliverySettings
from service.delivery.webhook import SendResult, send, shown_fields
from service.store.tables import OutboxRow, SubscriptionRow

log = logging.getLogger(__name__)
MAX_BACKOFF = timedelta(hours=6)
FAILPOINTS_ENV = "RADAR_FAILPOINTS"


def failpoint(name: str) -> None:
    """Die here, as a crash would, when ``RADAR_FAILPOINTS`` names this point (tests only)."""
    if name in os.environ.get(FAILPOINTS_ENV, "").split(","):
        os.kill(os.getpid(), signal.SIGKILL)


def enqueue(
    session: Session,
    subscription: SubscriptionRow,
    *,
    dedupe_key: str,
    subject: str | None,
    message_id: str,
    payload: bytes,
    now: datetime,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
) -> OutboxRow | None:
    """Store a message composed for ``subscription`` (sent by its channel, in its format, to its
    target) once; None when that ``dedupe_key`` was already composed."""
    row = OutboxRow(
        dedupe_key=dedupe_key,
        subscription_id=subscription.id,
        channel=subscription.channel,
        format=subscription.format,
        target=subscription.target,
        subject=subject,
        message_id=message_id,
        payload=payload,
        period_start=period_start,
        period_end=period_end,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError:  # another scheduler composed it first
        session.rollback()
        return None
    return row


# --- senders -------------------------------------------------------------------------------


def send_email(settings: DeliverySettings, *, to: str, message: bytes) -> SendResult:
    """One message over SMTP (plain, STARTTLS or TLS; login when a username is set)."""
    sender = parseaddr(settings.sender)[1] or settings.sender
    if (
        settings.smtp_username
        and settings.smtp_security == "none"
        and not settings.smtp_allow_plain_auth
    ):
        return SendResult(
            ok=False,
            status=None,
            retryable=False,
            error="refusing to send the SMTP password over a plain connection: set "
            "delivery.smtp_security to starttls or ssl (or smtp_allow_plain_auth)",
        )
    try:
        tls = ssl.create_default_context(
            cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None
        )
        if settings.smtp_security == "ssl":
            client = smtplib.SMTP_SSL(
                settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout, context=tls
            )
        else:
            client = smtplib.SMTP(
                settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout
            )
        with client:
            if settings.smtp_security == "starttls":
                client.starttls(context=tls)
            if settings.smtp_username:
                client.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            client.sendmail(sender, [to], message)
        return SendResult(ok=True, status=250, error=None, retryable=False)
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()))
        return SendResult(
            ok=False,
            status=code,
            error=f"recipient refused: {code} {_text(text)}",
            retryable=400 <= code < 500,
        )
    except smtplib.SMTPResponseException as exc:
        return SendResult(
            ok=False,
            status=exc.smtp_code,
            error=f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}",
            retryable=not (500 <= exc.smtp_code < 600),
        )
    except (OSError, smtplib.SMTPException) as exc:  # refused, timeouts, TLS, dropped connections
        return SendResult(
            ok=False, status=None, error=f"{type(exc).__name__}: {exc}"[:300], retryable=True
        )


def _text(raw) -> str:
    return (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw))[:200]


DEFAULT_SECRET_ENV = "RADAR_WEBHOOK_SECRET"


def webhook_secret(subscription: SubscriptionRow) -> bytes | None:
    """The HMAC secret of a webhook subscription, from the environment variable it names
    (``RADAR_WEBHOOK_SECRET`` when it names none); None when unset."""
    name = subscription.secret_env or DEFAULT_SECRET_ENV
    value = os.environ.get(name)
    return value.encode() if value else None


# --- dispatch ------------------------------------------------------------------------------


@dataclass
class DispatchReport:
    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    dead: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _claimable(due: datetime, clock: datetime):
    return or_(
        and_(OutboxRow.status == "pending", OutboxRow.next_attempt_at <= due),
        and_(OutboxRow.status == "sending", OutboxRow.lease_until < clock),
    )


def backoff(settings: DeliverySettings, attempts: int) -> timedelta:
    return min(timedelta(seconds=settings.backoff_seconds * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)


class Dispatcher:
    """Sends what the outbox holds that is due. ``send_email``/``send_webhook`` are injectable
    (tests count attempts), defaulting to SMTP and ``service.delivery.webhook.send``, which
    checks the target's addresses against ``webhook_allow`` on every send (a target whose DNS
    now answers a private address is refused, dead-lettered with the reason, never contacted).

    ``now`` decides what is due (a scheduler may act as of another moment); leases run on the
    later of ``now`` and the wall clock read at each claim, so a slow batch never holds a
    lease that has already run out, and a run acting as of the past still owns what it
    claims. A claim carries a random token and a message is settled only by its claimer."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: DeliverySettings,
        *,
        send_email_fn=None,
        send_webhook_fn=None,
    ):
        self.sessions = sessions
        self.settings = settings
        self.send_email_fn = send_email_fn or (
            lambda to, message: send_email(settings, to=to, message=message)
        )
        if send_webhook_fn is None:

            def send_webhook_fn(fmt, url, body, secret):
                return send(
                    fmt,
                    url,
                    body,
                    secret=secret,
                    timeout=settings.webhook_timeout,
                    allow=settings.webhook_allow,
                )

        self.send_webhook_fn = send_webhook_fn

    def run(self, now: datetime | None = None, *, limit: int = 500) -> DispatchReport:
        now = now or datetime.now(UTC)
        report = DispatchReport()
        with self.sessions() as session:
            ids = session.scalars(
                select(OutboxRow.id)
                .where(_claimable(now, max(now, _wall())))
                .order_by(OutboxRow.id)
                .limit(limit)
            ).all()
            for oid in ids:
                try:  # one message's trouble (a locked database, a bad row) never stops the others
                    self._one(session, oid, now, report)
                except Exception:
                    session.rollback()
                    log.exception(
                        "outbox %s: dispatch failed; it is retried when its lease ends", oid
                    )
        return report

    def _one(self, session: Session, oid: int, now: datetime, report: DispatchReport) -> None:
        token = secrets.token_hex(16)
        if not self._claim(session, oid, now, token):
            return  # another sender has it
        row = session.get(OutboxRow, oid)
        session.refresh(row)
        sub = session.get(SubscriptionRow, row.subscription_id) if row.subscription_id else None
        if sub is None or not sub.active:  # unsubscribed or removed since it was composed
            self._settle(
                session,
                oid,
                token,
                report.cancelled,
                status="cancelled",
                last_error="the subscription was removed or unsubscribed before it was sent",
            )
            return
        result = self._send(row, sub)
        failpoint("after_send")
        if result.ok:
            self._settle(
                session, oid, token, report.sent, status="sent", sent_at=_wall(), last_error=None
            )
        elif result.retryable and row.attempts < self.settings.max_attempts:
            self._settle(
                session,
                oid,
                token,
                report.retrying,
                status="pending",
                last_error=result.error,
                next_attempt_at=now + backoff(self.settings, row.attempts),
            )
        else:
            log.warning("outbox %s dead after %s tries: %s", oid, row.attempts, result.error)
            self._settle(session, oid, token, report.dead, status="dead", last_error=result.error)

    def _claim(self, session: Session, oid: int, now: datetime, token: str) -> bool:
        clock = max(now, _wall())
        res = session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == oid, _claimable(now, clock))
            .values(
                status="sending",
                attempts=OutboxRow.attempts + 1,
                claim_token=token,
                lease_until=clock + timedelta(seconds=self.settings.lease_seconds),
            )
        )
        session.commit()
        return res.rowcount == 1

    def _settle(self, session: Session, oid: int, token: str, into: list[int], **values) -> None:
        """Record the outcome, only if this sender still owns the message."""
        res = session.execute(
            update(OutboxRow)
            .where(
                OutboxRow.id == oid, OutboxRow.claim_token == token, OutboxRow.status == "sending"
            )
            .values(lease_until=None, claim_token=None, **values)
        )
        session.commit()
        if res.rowcount == 1:
            into.append(oid)
        else:
            log.warning(
                "outbox %s: the lease ran out during the send; another sender owns it now", oid
            )

    def _send(self, row: OutboxRow, sub: SubscriptionRow) -> SendResult:
        try:
            if row.channel == "email":
                return self.send_email_fn(row.target, row.payload)
            secret = webhook_secret(sub)
            if secret is None:
                return SendResult(
                    ok=False,
                    status=None,
                    retryable=False,
                    error=f"webhook secret {sub.secret_env or DEFAULT_SECRET_ENV} is not set in the "
                    "environment: webhooks are only sent signed",
                )
            return self.send_webhook_fn(row.format, row.target, row.payload, secret)
        except Exception as exc:  # a sender bug must not stop the other messages
            log.exception("outbox %s: sender failed", row.id)
            return SendResult(
                ok=False, status=None, error=f"{type(exc).__name__}: {exc}"[:300], retryable=True
            )


def _wall() -> datetime:
    return datetime.now(UTC)


def retry(session: Session, row: OutboxRow, *, now: datetime | None = None) -> OutboxRow:
    """Put a dead-lettered (or cancelled) message back in the queue now, with a fresh count of
    tries. Messages queued, being sent or sent are left alone."""
    if row.status not in ("dead", "cancelled"):
        raise ValueError(
            f"message {row.id} is {row.status}; only dead or cancelled messages are retried"
        )
    row.status, row.attempts, row.lease_until, row.claim_token = "pending", 0, None, None
    row.next_attempt_at = now or _wall()
    session.commit()
    return row


SHOWN = (
    "id",
    "dedupe_key",
    "subscription_id",
    "channel",
    "format",
    "target",
    "subject",
    "message_id",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
    "sent_at",
    "period_start",
    "period_end",
)


def outbox_dict(row: OutboxRow) -> dict:
    return shown_fields(row, SHOWN)
