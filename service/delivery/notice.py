"""What a channel delivers, before it is dressed for email or for a chat tool."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class Notice:
    """One message to one subscriber: an alert as it is raised (``kind="alert"``) or a
    digest of a period (``kind="digest"``). Every text is already in the subscriber's
    language; ``lines`` are short plain-text lines (no markup), most important first;
    ``data`` is the structured content (alert dicts as ``service.alerts.engine.alert_dict``
    makes them, the period) that the generic JSON format carries as it is."""

    kind: Literal["alert", "digest"]
    title: str
    lines: list[str]
    language: Literal["en", "zh"] = "en"
    severity: str | None = None
    link: str | None = None
    data: dict = field(default_factory=dict)
