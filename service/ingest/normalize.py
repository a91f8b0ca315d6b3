"""Text normalisation: what is stored, and the stricter key used to find duplicates."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b-\u200d\u2060\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_NEWLINES = re.compile(r"\s*\n\s*")
_KEY_DROP = re.compile(r"[\W_]+", re.UNICODE)


def normalize_text(text: str) -> str:
    """NFC, no control or zero-width characters, one space between words, trimmed lines.

    Width and case are kept: what the customer wrote is what an analyst reads.
    """
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _NEWLINES.sub("\n", text)
    return text.strip()


def dedup_key(text: str) -> str:
    """Width-, case-, whitespace- and punctuation-insensitive form used for duplicate checks."""
    return _KEY_DROP.sub("", unicodedata.normalize("NFKC", text).casefold())


def text_hash(text: str) -> str:
    return hashlib.sha1(dedup_key(text).encode("utf-8")).hexdigest()
