"""``severe_complaint``: one strongly negative item on a severity aspect (health and safety)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from service.alerts.families import Context, register
from service.alerts.findings import Finding
from service.alerts.rules import SevereComplaint
from service.store.tables import AspectScoreRow, FeedbackRow


@register(SevereComplaint)
def evaluate(ctx: Context, rule: SevereComplaint) -> list[Finding]:
    session, as_of, scope = ctx.session, ctx.as_of, ctx.scope
    flt = replace(scope, since=as_of - timedelta(hours=rule.lookback_hours), until=as_of)
    if rule.brands:
        flt = replace(flt, brands=tuple(ctx.brands(rule, flt)))
    stmt = flt.apply(
        select(
            FeedbackRow.id,
            FeedbackRow.text,
            FeedbackRow.brand,
            FeedbackRow.region,
            FeedbackRow.created_at,
            AspectScoreRow.aspect,
            AspectScoreRow.sentiment_score,
            AspectScoreRow.evidence,
        )
        .join(AspectScoreRow, AspectScoreRow.feedback_id == FeedbackRow.id)
        .where(
            AspectScoreRow.aspect.in_(rule.aspects),
            AspectScoreRow.sentiment_score <= rule.max_sentiment_score,
            AspectScoreRow.confidence >= rule.min_confidence,
        )
    )
    if rule.max_confidence is not None:
        stmt = stmt.where(AspectScoreRow.confidence < rule.max_confidence)
    out = []
    for fid, text, brand, region, created, aspect, score, evidence in session.execute(stmt):
        out.append(
            Finding.of(
                rule,
                key=f"{rule.name}|item:{fid}",
                title=f"Severe {aspect} complaint about {brand}: “{(evidence or text)[:80]}”",
                brand=brand,
                region=region,
                aspect=aspect,
                segment={"item": fid},
                metric="sentiment_score",
                baseline=None,
                observed=score,
                magnitude=None,
                confidence=None,
                onset=created,
                details={"quotes": [{"id": fid, "text": text, "evidence": evidence}]},
            )
        )
    return out
