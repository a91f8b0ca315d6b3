"""Rule families: one evaluator per family of rule types, behind a small registry.

An evaluator is a function ``evaluate(ctx, rule) -> list[Finding]`` registered for the rule
types it serves (``@register(PreferenceShift, NegativeSurge)``). It reads the store (series come
from ``service.analytics``), never writes, and knows nothing of alerts' lifecycle: the engine
turns its findings into alerts (``service.alerts.lifecycle``). Adding a rule type is a rule
model in ``service.alerts.rules`` and a module here.

- ``series``: ``preference_shift`` (a segment cell), ``negative_surge`` (a whole brand)
- ``gap``: ``competitor_gap``
- ``crisis``: ``crisis_spike`` (bursts of negative posts, one incident each)
- ``severe``: ``severe_complaint`` (one item on a severity aspect)
- ``threshold``: ``threshold`` (a metric crossing a fixed bound)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.repo import FeedbackFilter
from service.store.tables import FeedbackRow

Evaluator = Callable[["Context", object], list]
_REGISTRY: dict[type, Evaluator] = {}


@dataclass
class Context:
    """What every evaluator reads: the session, the moment, the caller's scope, the taxonomy's
    aspects, our brand and the brand list (names and aliases)."""

    session: Session
    as_of: datetime
    scope: FeedbackFilter
    aspects: list[str]
    our_brand: str
    competitors: object | None = None
    # the findings of the rules evaluated before this one, this run
    found: list = field(default_factory=list)

    def brands(self, rule, flt: FeedbackFilter) -> list[str]:
        """The rule's brands (``ours`` is our brand), else every brand with items under ``flt``."""
        if rule.brands:
            return sorted({self.our_brand if b == "ours" else b for b in rule.brands})
        return sorted(self.session.scalars(flt.apply(select(FeedbackRow.brand).distinct())))


def register(*rule_types: type) -> Callable[[Evaluator], Evaluator]:
    def deco(fn: Evaluator) -> Evaluator:
        for t in rule_types:
            _REGISTRY[t] = fn
        return fn

    return deco


def evaluator_for(rule) -> Evaluator:
    _load()
    try:
        return _REGISTRY[type(rule)]
    except KeyError:
        raise LookupError(f"no evaluator for rule type {type(rule).__name__}") from None


def _load() -> None:
    """Import every family module once (each registers itself)."""
    from service.alerts.families import crisis, gap, series, severe, threshold  # noqa: F401
