"""``threshold``: a metric of the latest complete period crossing a fixed bound."""

from __future__ import annotations

from dataclasses import replace

from service.alerts.families import Context, register
from service.alerts.findings import Finding
from service.alerts.rules import Threshold
from service.analytics.trends import BUCKETS, floor, series


@register(Threshold)
def evaluate(ctx: Context, rule: Threshold) -> list[Finding]:
    session, as_of, scope = ctx.session, ctx.as_of, ctx.scope
    until = floor(as_of, rule.bucket)
    since = until - BUCKETS[rule.bucket]
    out = []
    base = replace(scope, regions=tuple(rule.regions) or scope.regions)
    for brand in ctx.brands(rule, replace(base, since=since, until=until)):
        s = series(
            session,
            flt=replace(base, brands=(brand,)),
            since=since,
            until=until,
            bucket=rule.bucket,
            aspect=rule.aspect,
        )
        if s.mentions[-1] < rule.min_mentions:
            continue
        value = float(s.mentions[-1]) if rule.metric == "volume" else getattr(s, rule.metric)[-1]
        if value is None:
            continue
        crossed = (rule.above is not None and value > rule.above) or (
            rule.below is not None and value < rule.below
        )
        if not crossed:
            continue
        bound = rule.above if rule.above is not None and value > rule.above else rule.below
        out.append(
            Finding.of(
                rule,
                key=f"{rule.name}|{brand}|{rule.aspect}|{','.join(rule.regions)}",
                brand=brand,
                region=rule.regions[0] if len(rule.regions) == 1 else None,
                aspect=rule.aspect,
                segment={"regions": rule.regions} if rule.regions else {},
                title=f"{rule.metric} of {rule.aspect or 'all feedback'} for {brand} at {value:.3g} (bound {bound})",
                metric=rule.metric,
                baseline=bound,
                observed=value,
                magnitude=value - bound,
                confidence=None,
                onset=since,
                details={"period": since.isoformat(), "mentions": int(s.mentions[-1])},
            )
        )
    return out
