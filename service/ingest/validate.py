"""Turn one mapped record into a valid ``FeedbackIn`` or a ``RowError`` naming the fields."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from dateutil import parser as dateparser
from pydantic import ValidationError

from service.config import Limits
from service.domain import FeedbackIn
from service.ingest.mapping import ColumnMapping
from service.ingest.normalize import normalize_text
from service.ingest.readers import RowError

_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日")
# Time windows reach years back from the newest item and buckets round outwards: an item at the
# calendar's edge (year 1 or 9999) would make that arithmetic overflow for every caller.
EARLIEST = datetime(100, 1, 1, tzinfo=UTC)
LATEST = datetime(9900, 1, 1, tzinfo=UTC)


def parse_timestamp(value: Any, tz: ZoneInfo) -> datetime:
    """ISO 8601, a few common date layouts, or epoch seconds/milliseconds; naive → ``tz``."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        seconds = value / 1000 if abs(value) > 1e11 else value
        dt = datetime.fromtimestamp(seconds, tz=UTC)
    elif isinstance(value, str) and value.strip():
        s = value.strip()
        if s.lstrip("-").replace(".", "", 1).isdigit():
            return parse_timestamp(float(s), tz)
        try:
            dt = dateparser.isoparse(s)
        except (ValueError, OverflowError):
            for fmt in _FORMATS:
                try:
                    dt = datetime.strptime(s, fmt)
                    break
                except ValueError:
                    continue
            else:
                raise ValueError(f"cannot parse {s[:40]!r} as a date/time (use ISO 8601)") from None
    else:
        raise ValueError("missing")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    dt = dt.astimezone(UTC)
    if not EARLIEST <= dt < LATEST:
        raise ValueError(
            f"out of range: {dt.isoformat()} (years {EARLIEST.year} to {LATEST.year - 1})"
        )
    return dt


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _printable(s: str) -> str:
    return s.encode("utf-8", "backslashreplace").decode("utf-8")


def _has_nul(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_nul(str(k)) or _has_nul(v) for k, v in value.items())
    return isinstance(value, str) and "\x00" in value


def _loc_to_field(loc: tuple, origin: dict[str, str]) -> str:
    name = ".".join(str(p) for p in loc) or "item"
    column = origin.get(str(loc[0])) if loc else None
    return f"{name} (column {column!r})" if column and column != str(loc[0]) else name


class Validator:
    """Validates mapped records against the dictionary and the configured limits."""

    def __init__(
        self,
        mapping: ColumnMapping | None = None,
        *,
        max_text_chars: int,
        default_timezone: str = "UTC",
        limits=None,
    ):
        self.mapping = mapping or ColumnMapping()
        self.max_text_chars = max_text_chars
        self.limits = limits or Limits()
        self.tz = ZoneInfo(default_timezone)

    def _attribute_errors(self, attrs: dict) -> list[tuple[str, str]]:
        """Too many attributes, or a name or value too long: named, never cut silently (two
        names that agree on their first characters would otherwise collide)."""
        lim = self.limits
        if len(attrs) > lim.max_attributes:
            return [("attributes", f"{len(attrs):,} attributes; the limit is {lim.max_attributes}")]
        errors = []
        for k, v in attrs.items():
            name = _printable(str(k))
            if len(str(k)) > lim.max_attribute_name_chars:
                errors.append(
                    (
                        f"attributes.{name[:40]}…",
                        f"name longer than {lim.max_attribute_name_chars} characters",
                    )
                )
            elif isinstance(v, str) and len(v) > lim.max_attribute_value_chars:
                errors.append(
                    (
                        f"attributes.{name}",
                        f"value longer than {lim.max_attribute_value_chars} characters",
                    )
                )
        return errors

    def validate(self, row: int, record: dict[str, Any]) -> FeedbackIn | RowError:
        payload, origin = self.mapping.apply(record)
        extra = payload.pop("_extra_attributes", None)
        payload = {k: _clean(v) for k, v in payload.items()}
        payload = {k: v for k, v in payload.items() if v is not None}
        ext_id = payload.get("external_id")
        ext_id = str(ext_id) if ext_id is not None else None
        errors: list[tuple[str, str]] = []

        attrs = payload.get("attributes")
        if isinstance(attrs, str):
            try:
                attrs = json.loads(attrs)
            except json.JSONDecodeError:
                errors.append(("attributes", "must be a JSON object"))
                attrs = None
        if extra:
            attrs = {**(attrs if isinstance(attrs, dict) else {}), **extra}
        if attrs is not None:
            payload["attributes"] = attrs
            if isinstance(attrs, dict):
                errors += self._attribute_errors(attrs)

        for key in ("external_id", "product", "region", "brand", "author", "source"):
            v = payload.get(key)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            if isinstance(v, int):  # any size (a JSON integer of 400 digits is still an id)
                payload[key] = str(v) if v.bit_length() <= 4096 else None
            elif math.isfinite(v):
                payload[key] = str(int(v)) if v.is_integer() else str(v)
            else:
                payload[key] = None
            if payload[key] is None:
                errors.append(
                    (
                        _loc_to_field((key,), origin),
                        "must be a string (or a finite number of at most 1,000 digits)",
                    )
                )
                payload.pop(key)

        if "created_at" in payload:
            try:
                payload["created_at"] = parse_timestamp(payload["created_at"], self.tz)
            except (ValueError, OverflowError, OSError) as exc:
                errors.append((_loc_to_field(("created_at",), origin), str(exc)))
                payload.pop("created_at")
        text = payload.get("text")
        if isinstance(text, str) and len(text) > self.max_text_chars:
            errors.append(
                (
                    _loc_to_field(("text",), origin),
                    f"too long: {len(text):,} characters (limit {self.max_text_chars:,})",
                )
            )
            payload.pop("text")

        if (
            isinstance(text, str)
            and text.strip()
            and "text" in payload
            and not normalize_text(text)
        ):
            errors.append(
                (
                    _loc_to_field(("text",), origin),
                    "must not be empty (only control or invisible characters)",
                )
            )
            payload.pop("text")

        for key, value in list(payload.items()):
            if isinstance(value, str) and any("\ud800" <= ch <= "\udfff" for ch in value):
                errors.append((_loc_to_field((key,), origin), "invalid UTF-8 / lone surrogate"))
                payload.pop(key)
            elif key not in ("text", "author") and _has_nul(
                value
            ):  # PostgreSQL stores no NUL (the text
                # drops control characters, the author is only hashed)
                errors.append((_loc_to_field((key,), origin), "contains a NUL character"))
                payload.pop(key)
        try:
            item = FeedbackIn.model_validate(payload)
        except ValidationError as exc:
            for err in exc.errors():
                # a check across fields (rating within its scale) names the field it is about
                loc = (
                    err["loc"]
                    or tuple(
                        f for f in FeedbackIn.model_fields if re.search(rf"\b{f}\b", err["msg"])
                    )[:1]
                )
                field = _loc_to_field(loc, origin)
                if any(field.split(" ")[0] == f for f, _ in errors):
                    continue
                msg = "missing" if err["type"] == "missing" else err["msg"]
                errors.append((field, msg))
            item = None
        if errors:
            fields = [f for f, _ in errors]
            reason = "; ".join(f"{f}: {m}" for f, m in errors)
            # echoed in answers that must encode as UTF-8: a lone surrogate is shown escaped
            return RowError(
                row,
                _printable(reason),
                [_printable(f) for f in fields],
                _printable(ext_id) if ext_id is not None else None,
            )
        assert item is not None
        return item
