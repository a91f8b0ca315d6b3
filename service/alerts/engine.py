"""The alert engine: evaluate every rule as of a moment, then raise, update or leave alerts.

``evaluate`` never writes: each enabled rule goes to its family's evaluator
(``service.alerts.families``); a rule that cannot run on this store (a dimension no item has, an
aspect the taxonomy lacks) or that fails is reported in the result and skipped, and the other
rules still run. Findings of one incident are then folded together across families: the single
severe complaints inside a crisis burst belong to the crisis (``fold_into_crises``).

``run`` hands each finding to ``service.alerts.lifecycle.apply`` (raise, update, cool down) and
commits; the same ``as_of`` run twice changes nothing.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from service.alerts import lifecycle
from service.alerts.families import Context, evaluator_for
from service.alerts.findings import Finding, RunReport
from service.alerts.rules import AlertConfig
from service.store import alerts as alerts_repo
from service.store.repo import FeedbackFilter, UnknownDimension

log = logging.getLogger(__name__)


class AlertEngine:
    def __init__(
        self, config: AlertConfig, *, aspects: list[str], our_brand: str, competitors=None
    ):
        self.config = config
        self.aspects = aspects
        self.our_brand = our_brand
        self.competitors = competitors  # brand names and aliases, left out of an alert's phrases

    def evaluate(
        self, session: Session, as_of: datetime, scope: FeedbackFilter | None = None
    ) -> tuple[list[Finding], list[dict]]:
        """Every enabled rule's findings, and the rules that could not run on this store (each
        ``{"rule", "reason"}``)."""
        ctx = Context(
            session=session,
            as_of=as_of,
            scope=scope or FeedbackFilter(),
            aspects=self.aspects,
            our_brand=self.our_brand,
            competitors=self.competitors,
        )
        findings, skipped = [], []
        for rule in self.config.rules:
            if not rule.enabled:
                continue
            unknown = sorted(set(getattr(rule, "aspects", None) or []) - set(self.aspects))
            if getattr(rule, "aspect", None) and rule.aspect not in self.aspects:
                unknown.append(rule.aspect)
            if unknown:
                skipped.append(
                    {
                        "rule": rule.name,
                        "reason": f"unknown aspect(s) {unknown}: the taxonomy has "
                        f"{sorted(self.aspects)}",
                    }
                )
                continue
            try:
                found = evaluator_for(rule)(ctx, rule)
                findings += found
                ctx.found += found
            except Exception as exc:  # noqa: BLE001 - one failing rule never stops the others
                session.rollback()  # evaluation writes nothing; a failed statement must not poison the next rule
                if isinstance(exc, UnknownDimension):
                    skipped.append(
                        {"rule": rule.name, "reason": f"cannot run on this store: {exc}"}
                    )
                    continue
                log.exception("alert rule %s failed", rule.name)
                skipped.append(
                    {"rule": rule.name, "reason": f"failed: {type(exc).__name__}: {exc}"}
                )
        return self._fold_into_crises(session, findings), skipped

    @staticmethod
    def _fold_into_crises(session: Session, findings: list[Finding]) -> list[Finding]:
        """One incident per burst: a severe complaint about an item of a crisis burst (this
        run's, or an open crisis alert's) is part of that crisis, not an alert of its own. It
        is listed in the crisis's ``also`` (``folded_into`` names an open alert when the crisis
        itself was not found again this run)."""
        crises = [f for f in findings if f.type == "crisis_spike"]
        open_items: dict[str | None, list[tuple[int, set[int]]]] = {}
        for f in findings:
            if f.type == "severe_complaint" and f.brand not in open_items:
                open_items[f.brand] = [
                    (row.id, set(json.loads(row.details or "{}").get("items", [])))
                    for row in alerts_repo.unresolved(
                        session, rule="", brand=f.brand, types=["crisis_spike"]
                    )
                ]
        out = []
        for f in findings:
            item = f.segment.get("item") if f.type == "severe_complaint" else None
            if item is None:
                out.append(f)
                continue
            home = next((c for c in crises if c.brand == f.brand and item in c.items), None)
            if home is not None:
                home.details.setdefault("also", []).append(
                    {"title": f.title, "item": item, "aspect": f.aspect}
                )
                continue
            alert_id = next((a for a, items in open_items.get(f.brand, []) if item in items), None)
            if alert_id is None:
                out.append(f)
            else:
                f.details["folded_into"] = alert_id
                out.append(f)
        return out

    def run(
        self, session: Session, as_of: datetime | None = None, *, actor: str = "radar"
    ) -> RunReport:
        as_of = (as_of or datetime.now(UTC)).astimezone(UTC)
        findings, skipped = self.evaluate(session, as_of)
        report = RunReport(as_of=as_of, skipped=skipped)
        for f in findings:
            if "folded_into" in f.details:
                lifecycle.fold(
                    session,
                    f,
                    alert_id=f.details["folded_into"],
                    as_of=as_of,
                    actor=actor,
                    report=report,
                )
            else:
                lifecycle.apply(session, f, as_of, actor, report, self.config)
        lifecycle.absorb_into_crises(session, as_of=as_of, actor=actor, report=report)
        session.commit()
        return report
