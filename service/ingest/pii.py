"""Personal-data redaction applied to text before it is stored or scored.

Modes: ``redact`` replaces a match by a typed placeholder (``[EMAIL]``), ``mask`` keeps the
first and last characters (``j***@x.com``-style), ``keep`` leaves the text alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class PiiMode(StrEnum):
    redact = "redact"
    mask = "mask"
    keep = "keep"


_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# Mainland-China resident ID: 17 digits + check digit (0-9 or X).
_CN_ID = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
# Mainland-China mobile numbers (optionally +86) and general international numbers.
_CN_MOBILE = re.compile(r"(?<!\d)(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)")
# Other numbers only in a phone-like shape: +country code, (area) code, or 3-3-4 groups;
# bare digit runs (order numbers, batch codes) are left alone.
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .\-]?(?:\(?\d{1,4}\)?[ .\-]?)?\d{2,4}(?:[ .\-]?\d{2,4}){1,3}"
                    r"|\(\d{2,4}\)[ .\-]?\d{3,4}[ .\-]?\d{4}"
                    r"|\d{3}[.\-]\d{3}[.\-]\d{4})(?!\d)")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def _valid_cn_id(s: str) -> bool:
    total = sum(int(d) * w for d, w in zip(s[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == s[17].upper()


def _luhn(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern
    check: Callable[[str], bool] | None = None


_RULES = (
    _Rule("EMAIL", _EMAIL),
    _Rule("ID", _CN_ID, _valid_cn_id),
    _Rule("PHONE", _CN_MOBILE),
    _Rule("CARD", _CARD, lambda s: _luhn(re.sub(r"\D", "", s))),
    _Rule("PHONE", _PHONE, lambda s: len(re.sub(r"\D", "", s)) >= 8),
)


def _mask(s: str) -> str:
    if len(s) <= 4:
        return "*" * len(s)
    return s[:2] + "*" * (len(s) - 4) + s[-2:]


def redact(text: str, mode: PiiMode = PiiMode.redact) -> tuple[str, dict[str, int]]:
    """Return the text with personal data handled by ``mode`` and counts per kind found."""
    found: dict[str, int] = {}
    if mode is PiiMode.keep:
        return text, found
    for rule in _RULES:
        def _sub(m: re.Match, rule=rule) -> str:
            s = m.group(0)
            if rule.check is not None and not rule.check(s):
                return s
            found[rule.kind] = found.get(rule.kind, 0) + 1
            return f"[{rule.kind}]" if mode is PiiMode.redact else _mask(s)
        text = rule.pattern.sub(_sub, text)
    return text, found
