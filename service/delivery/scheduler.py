"""``radar digest run``: compose what is due into the outbox, then send what the outbox holds.

What is due, as of ``now``:

* for each active ``daily``/``weekly`` subscription, its latest ended period
  (``subscriptions.due_period``) unless that period was composed already. A period with
  nothing in scope composes a one-line "all quiet" message when the subscriber asked for it
  and nothing otherwise (re-checked on each run, with the same answer: the content is taken as
  of the period's end);
* for each active ``immediate`` subscription, each alert in its scope raised since the
  subscription was made and not yet composed for it.

Idempotent per subscriber and period (the outbox's ``dedupe_key``), so safe under cron every
minute and beside ``radar serve --digest-every``; two runs at once compose each message once
and send it once (see ``service.delivery.outbox``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from service.config import Settings
from service.delivery import digest as dg
from service.delivery.outbox import Dispatcher, DispatchReport, enqueue, failpoint
from service.delivery.subscriptions import Period, alerts_in_scope, due_period
from service.delivery.webhook import compose
from service.store import alerts as alerts_repo
from service.store import outbox as outbox_repo
from service.store import subscriptions as subs_repo
from service.store.alerts import alert_dict
from service.store.tables import SubscriptionRow

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    now: datetime
    composed: list[str] = field(default_factory=list)
    quiet_skipped: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    dispatch: DispatchReport | None = None

    def to_dict(self) -> dict:
        return {**asdict(self), "now": self.now.isoformat()}


class DeliveryService:
    def __init__(
        self,
        settings: Settings,
        sessions,
        *,
        dispatcher: Dispatcher | None = None,
        charts: bool = True,
    ):
        self.settings = settings
        self.delivery = settings.delivery
        self.sessions = sessions
        self.dispatcher = dispatcher or Dispatcher(sessions, settings.delivery)
        self.charts = charts

    @property
    def _key(self) -> bytes:
        return self.delivery.signing_key.get_secret_value().encode()

    def run(self, now: datetime | None = None, *, send: bool = True) -> RunReport:
        now = (now or datetime.now(UTC)).astimezone(UTC)
        report = RunReport(now=now)
        with self.sessions() as session:
            subs = subs_repo.list_subscriptions(session, active=True).rows
            for sub in subs:
                sid = sub.id
                try:  # one subscriber's problem never stops the others
                    if sub.frequency == "immediate":
                        self._compose_alerts(session, sub, now, report)
                    else:
                        self._compose_digest(session, sub, now, report)
                except Exception as exc:
                    session.rollback()
                    log.exception("subscription %s: compose failed", sid)
                    report.failed.append(
                        {"subscription_id": sid, "error": f"{type(exc).__name__}: {exc}"[:300]}
                    )
        failpoint("after_compose")
        if send:
            report.dispatch = self.dispatcher.run(now)
        return report

    def _compose_digest(
        self, session: Session, sub: SubscriptionRow, now: datetime, report: RunReport
    ) -> None:
        period = due_period(sub, now)
        if period is None:
            return
        key = f"digest:{_who(sub)}:{period.key}"
        if outbox_repo.has_message(session, dedupe_key=key):
            return
        last = outbox_repo.last_period_end(session, prefix=f"digest:{_who(sub)}:")
        since = (
            min(last, period.start) if last is not None else period.start
        )  # the last digest sent, or skipped gaps
        d = dg.build_digest(
            session,
            sub,
            period,
            our_brand=self.settings.competitors.our_brand,
            changes_since=since,
            regions=False,
        )
        if d.empty and sub.quiet == "skip":
            report.quiet_skipped.append(key)
            return
        d.regions = dg.digest_regions(
            session, sub, period, our_brand=self.settings.competitors.our_brand
        )
        d.benchmark = dg.digest_benchmark(
            session, sub, period, our_brand=self.settings.competitors.our_brand
        )
        taxonomy, public = self.settings.taxonomy, self.delivery.public_url
        self._enqueue(
            session,
            sub,
            key,
            now=now,
            date=period.end,
            email=lambda unsub: dg.render_digest(
                d,
                public_url=public,
                unsubscribe_url=unsub,
                taxonomy=taxonomy,
                max_charts=self.delivery.max_charts,
                charts=self.charts,
            ),
            notice=lambda: dg.digest_notice(d, public_url=public, taxonomy=taxonomy),
            report=report,
            period_start=period.start,
            period_end=period.end,
        )

    def _compose_alerts(
        self, session: Session, sub: SubscriptionRow, now: datetime, report: RunReport
    ) -> None:
        rows = alerts_repo.raised_between(
            session, scope=alerts_in_scope(sub), start=sub.immediate_since, end=now
        )
        prefix = f"alert:{_who(sub)}:"
        done = outbox_repo.keys_with_prefix(session, prefix=prefix)
        taxonomy, public = self.settings.taxonomy, self.delivery.public_url
        for row in rows:
            key = f"{prefix}{row.id}"
            if key in done:
                continue
            alert = alert_dict(row)
            self._enqueue(
                session,
                sub,
                key,
                now=now,
                date=row.first_detected_at,
                email=lambda unsub, alert=alert: dg.render_alert(
                    alert,
                    sub,
                    public_url=public,
                    unsubscribe_url=unsub,
                    taxonomy=taxonomy,
                    charts=self.charts,
                ),
                notice=lambda alert=alert: dg.alert_notice(
                    alert, sub, public_url=public, taxonomy=taxonomy
                ),
                report=report,
            )

    def _enqueue(
        self,
        session: Session,
        sub: SubscriptionRow,
        key: str,
        *,
        now: datetime,
        date: datetime,
        email,
        notice,
        report: RunReport,
        period_start: datetime | None = None,
        period_end: datetime | None = None,
    ) -> None:
        """One message for ``sub`` into the outbox under ``key``: an email rendered by
        ``email(unsubscribe_url)``, or the webhook body of ``notice()`` in the subscription's
        format; a digest gives its period."""
        if sub.channel == "email":
            unsub = dg.unsubscribe_url(self.delivery.public_url, sub, self._key)
            r = email(unsub)
            msg_id = dg.message_id(key, self.delivery.sender)
            payload = dg.email_bytes(
                r,
                to=sub.target,
                sender=self.delivery.sender,
                msg_id=msg_id,
                date=date,
                language=sub.language,
                unsubscribe_url=unsub,
            )
            subject = r.subject
        else:
            n = notice()
            n.data["id"] = key
            payload, subject, msg_id = compose(sub.format, n), n.title, key
        if enqueue(
            session,
            sub,
            dedupe_key=key,
            subject=subject,
            message_id=msg_id,
            payload=payload,
            now=now,
            period_start=period_start,
            period_end=period_end,
        ):
            report.composed.append(key)


def _who(sub: SubscriptionRow) -> str:
    """The subscription in a dedupe key: its id and a piece of its random salt, since SQLite
    reuses the id of a deleted row and a new subscriber must not inherit the old one's sends."""
    return f"{sub.id}.{sub.token_salt[:8]}"


def preview(
    settings: Settings,
    session: Session,
    sub: SubscriptionRow,
    now: datetime,
    *,
    charts: bool = False,
) -> dict:
    """What the subscriber's latest period looks like (composes nothing into the outbox)."""
    period = due_period(sub, now)
    if period is None:
        period = Period(
            key="preview",
            start=now - timedelta(days=7 if sub.frequency == "weekly" else 1),
            end=now,
        )
    d = dg.build_digest(session, sub, period, our_brand=settings.competitors.our_brand)
    r = dg.render_digest(
        d,
        public_url=settings.delivery.public_url,
        unsubscribe_url=None,
        taxonomy=settings.taxonomy,
        charts=charts,
    )
    return {
        "period": {
            "key": period.key,
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
        },
        "subject": r.subject,
        "text": r.text,
        "alerts": len(d.alerts),
        "changes": {k: len(v) for k, v in d.changes.items()},
    }
