"""Alert rules: ``configs/alerts.yaml`` parsed into a pydantic discriminated union on ``type``.

A mistake in the file is reported as ``AlertConfigError`` naming the rule (by position and
name) and the field, e.g. ``configs/alerts.yaml: rule 2 ('taste-shift'), field 'bucket':
Input should be 'hour', 'day' or 'week'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Severity = Literal["L1", "L2", "L3"]
Metric = Literal["volume", "share_of_voice", "negative_share", "mean_sentiment"]


class AlertConfigError(ValueError):
    """The rule file cannot be used; the message names the rule and the field."""


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.:-]+$")
    severity: Severity = "L2"
    enabled: bool = True
    brands: list[str] = Field(
        default_factory=list, description="Brand ids; 'ours' is our brand; empty: every brand."
    )


class _SeriesRule(_Rule):
    bucket: Literal["day", "week"] = "week"
    history: int = Field(26, ge=6, le=520, description="Periods of history the detectors see.")
    recent: int = Field(
        2,
        ge=1,
        le=12,
        description="A gap's change must be confirmed within the last `recent` "
        "periods; for the rise rules, the onsets the test tries (the last `recent` periods).",
    )
    fdr: float = Field(
        0.05, gt=0, lt=0.5, description="Benjamini–Hochberg level over every series the rule tests."
    )
    min_mentions: float = Field(
        3.0, ge=0, description="Mean mentions per period below which a series is not tested."
    )
    aspects: list[str] = Field(
        default_factory=list, description="Aspect ids; empty: every aspect of the taxonomy."
    )
    phrases: bool = Field(
        True, description="Also test each tracked phrase's share of items (a keyword surge)."
    )


class PreferenceShift(_SeriesRule):
    """An aspect's complaints rising in one segment cell (e.g. region × age group)."""

    type: Literal["preference_shift"]
    recent: int = Field(6, ge=1, le=12, description="Onsets tried: the last `recent` periods.")
    dimensions: list[str] = Field(
        default_factory=lambda: ["region", "age_group"], min_length=1, max_length=2
    )


class NegativeSurge(_SeriesRule):
    """An aspect's complaints rising for a whole brand."""

    type: Literal["negative_surge"]
    recent: int = Field(6, ge=1, le=12, description="Onsets tried: the last `recent` periods.")


class CrisisSpike(_Rule):
    """Negative posts on a channel in the last hours against their recent hourly baseline."""

    type: Literal["crisis_spike"]
    severity: Severity = "L1"
    channels: list[str] = Field(default_factory=lambda: ["social"])
    window_hours: int = Field(6, ge=1, le=72)
    baseline_hours: int = Field(168, ge=24, le=24 * 60)
    min_count: int = Field(5, ge=1)
    alpha: float = Field(
        0.001, gt=0, lt=0.2, description="Poisson tail probability that raises it."
    )


class CompetitorGap(_SeriesRule):
    """A gap to a competitor on an aspect opening or closing significantly (needs the benchmark)."""

    type: Literal["competitor_gap"]
    competitors: list[str] = Field(default_factory=list)


class SevereComplaint(_Rule):
    """One strongly negative item on a safety or health aspect: alert at once."""

    type: Literal["severe_complaint"]
    severity: Severity = "L1"
    aspects: list[str] = Field(default_factory=lambda: ["health_safety"], min_length=1)
    max_sentiment_score: float = Field(-0.6, ge=-1, le=0)
    min_confidence: float = Field(0.5, ge=0, le=1)
    max_confidence: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Tags at or above this confidence are left to another rule: two rules on "
        "disjoint confidence ranges give strong evidence one severity and weaker evidence another.",
    )
    lookback_hours: int = Field(48, ge=1, le=24 * 30)

    @model_validator(mode="after")
    def _a_range(self) -> SevereComplaint:
        if self.max_confidence is not None and self.max_confidence <= self.min_confidence:
            raise ValueError("`max_confidence` must be above `min_confidence`")
        return self


class Threshold(_Rule):
    """Any metric of the latest complete period crossing a fixed bound."""

    type: Literal["threshold"]
    metric: Metric
    aspect: str | None = None
    regions: list[str] = Field(default_factory=list)
    bucket: Literal["day", "week"] = "week"
    above: float | None = None
    below: float | None = None
    min_mentions: int = Field(10, ge=0)

    @model_validator(mode="after")
    def _one_bound(self) -> Threshold:
        if self.above is None and self.below is None:
            raise ValueError("give `above` or `below`")
        return self


Rule = Annotated[
    PreferenceShift | NegativeSurge | CrisisSpike | CompetitorGap | SevereComplaint | Threshold,
    Field(discriminator="type"),
]


class SeverityPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deadline_hours: float = Field(gt=0)


class AlertConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    severities: dict[Severity, SeverityPolicy] = Field(
        default_factory=lambda: {
            "L1": SeverityPolicy(deadline_hours=24),
            "L2": SeverityPolicy(deadline_hours=48),
            "L3": SeverityPolicy(deadline_hours=72),
        }
    )
    cooldown_hours: float = Field(
        168, ge=0, description="After a resolve, the same alert is not raised again for this long."
    )
    rules: list[Rule] = Field(default_factory=list)

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: list) -> list:
        seen: set[str] = set()
        for i, r in enumerate(rules, 1):
            if r.name in seen:
                raise ValueError(f"rule {i}: name {r.name!r} is used twice")
            seen.add(r.name)
        return rules

    def deadline_hours(self, severity: str) -> float:
        policy = self.severities.get(severity)  # type: ignore[arg-type]
        return policy.deadline_hours if policy else {"L1": 24, "L2": 48, "L3": 72}[severity]

    @classmethod
    def parse(cls, data: object, source: str = "alerts.yaml") -> AlertConfig:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise AlertConfigError(f"{source}: expected a mapping with `rules:` at the top level")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise AlertConfigError(_explain(exc, data, source)) from None

    @classmethod
    def from_yaml(cls, path: Path) -> AlertConfig:
        if not path.exists():
            return cls()
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise AlertConfigError(f"{path}: not valid YAML: {exc}") from None
        return cls.parse(data, str(path))


def _explain(exc: ValidationError, data: dict, source: str) -> str:
    lines = []
    rules = data.get("rules") if isinstance(data.get("rules"), list) else []
    for err in exc.errors():
        loc = list(err["loc"])
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            i = loc[1]
            raw = rules[i] if i < len(rules) else {}
            name = raw.get("name") if isinstance(raw, dict) else None
            rest = [str(x) for x in loc[2:] if str(x) not in _TYPES]
            where = f"rule {i + 1}" + (f" ({name!r})" if name else "")
            field = f", field {'.'.join(rest)!r}" if rest else ""
            lines.append(f"{source}: {where}{field}: {err['msg']}")
        else:
            lines.append(
                f"{source}: field {'.'.join(str(x) for x in loc) or '(top)'!r}: {err['msg']}"
            )
    return "; ".join(lines)


_TYPES = {
    "preference_shift",
    "negative_surge",
    "crisis_spike",
    "competitor_gap",
    "severe_complaint",
    "threshold",
}
