"""Findings (what a rule family found as of a moment), how findings of one incident merge,
and the report of a run.

A finding's **key** is its rule, brand, aspect and segment: while an alert with that key is open,
a new finding updates it instead of raising another (``service.alerts.lifecycle.apply``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

from scipy import stats as sstats

from service.alerts.rules import Rule
from service.store.repo import FeedbackFilter

FILTER_FIELD = {
    "region": "regions",
    "brand": "brands",
    "channel": "channels",
    "language": "languages",
    "product": "products",
    "source": "sources",
}


@dataclass
class Finding:
    key: str
    rule: str
    type: str
    severity: str
    title: str
    brand: str | None
    region: str | None
    aspect: str | None
    segment: dict
    metric: str | None
    baseline: float | None
    observed: float | None
    magnitude: float | None
    confidence: float | None
    onset: datetime | None
    details: dict = field(default_factory=dict)
    items: set[int] = field(default_factory=set, repr=False)  # the items behind it since the onset
    exposure: int = 0  # the segment's items since the onset
    scope: FeedbackFilter | None = field(default=None, repr=False)  # the segment's filter

    @classmethod
    def of(cls, rule: Rule, **fields) -> Finding:
        """A finding of ``rule`` (its name, type and severity) with ``fields``."""
        return cls(rule=rule.name, type=rule.type, severity=rule.severity, **fields)


EXPLAINED_ALPHA = 0.01


def explained_by(f: Finding, items: set[int], alpha: float = EXPLAINED_ALPHA) -> bool:
    """Whether ``f``'s rise is another incident's ``items`` under another name: without them,
    ``f``'s count since the onset is no longer above its expected rate (binomial, one-sided,
    at ``alpha``)."""
    if not f.items or not f.exposure or f.baseline is None:
        return False
    rest = len(f.items - items)
    return rest == 0 or float(sstats.binom.sf(rest - 1, f.exposure, max(f.baseline, 1e-6))) >= alpha


def merge_findings(found: list[Finding]) -> list[Finding]:
    """One alert per incident: of the findings on the same brand and segment, one that shares
    its key with a stronger one (a phrase filed under the same aspect), or whose rise the
    stronger one's items explain (``explained_by``), is folded into it as ``also``. Crushed
    cups that the tagger files under packaging and under product quality are one surge.
    ``found`` comes strongest first."""
    kept: list[Finding] = []
    for f in found:
        home = next(
            (
                g
                for g in kept
                if g.brand == f.brand
                and g.segment == f.segment
                and (g.key == f.key or explained_by(f, g.items))
            ),
            None,
        )
        if home is None:
            kept.append(f)
            continue
        home.details.setdefault("also", []).append(
            {
                "title": f.title,
                "aspect": f.aspect,
                **f.details.get("signal", {}),
                "q_value": f.details.get("q_value"),
            }
        )
        if f.aspect and f.aspect not in home.details.setdefault("aspects", []):
            home.details["aspects"].append(f.aspect)
        home.items |= f.items
    return kept


@dataclass
class RunReport:
    as_of: datetime
    raised: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    cooling_down: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {rule, reason}: rules that could not run
    folded: list[dict] = field(
        default_factory=list
    )  # {alert, into}: single alerts made part of an incident

    def to_dict(self) -> dict:
        return {**asdict(self), "as_of": self.as_of.isoformat()}


def segment_filter(flt: FeedbackFilter, segment: dict[str, str]) -> FeedbackFilter:
    attrs = dict(flt.attributes)
    for dim, value in segment.items():
        if dim in FILTER_FIELD:
            flt = replace(flt, **{FILTER_FIELD[dim]: (value,)})
        else:
            attrs[dim.removeprefix("attr:")] = (value,)
    return replace(flt, attributes=attrs)


def signal_name(aspect: str | None, phrase: str | None) -> str:
    return f"phrase:{phrase}" if phrase else str(aspect)


def describe(segment: dict[str, str]) -> str:
    return " × ".join(segment.values()) if segment else "everyone"
