"""Splitting feedback into clauses: the unit an aspect and its evidence are found in."""

from __future__ import annotations

import re

# Sentence ends (Latin and CJK), semicolons, line breaks.
_SENTENCE = re.compile(r"(?<=[.!?…。！？；;])\s*|\n+")
# Contrast turns a clause: "great taste but the box arrived crushed", "味道不错，但是包装破了".
_CONTRAST = re.compile(
    r"(?i)\s*(?:,\s*|\s)(?=(?:but|however|although|though|whereas|except|yet)\b)"
    r"|[，,]\s*(?=(?:但是|但|不过|可是|然而|就是|只是|而且|并且|另外|还有))"
    r"|(?<=[，,])(?=[\u4e00-\u9fff])")
MIN_CLAUSE_CHARS = 3
MAX_CLAUSES = 12


def split_clauses(text: str) -> list[str]:
    """Clauses in order; tiny fragments are merged into their neighbour.

    Chinese text is also cut at full-width commas between clauses, since Chinese reviews
    chain several judgements with commas ("味道很好，包装也精致，就是有点贵").
    """
    parts: list[str] = []
    for sent in _SENTENCE.split(text):
        if not sent or not sent.strip():
            continue
        parts.extend(p for p in _CONTRAST.split(sent) if p and p.strip())
    clauses: list[str] = []
    for p in (p.strip(" ,，、") for p in parts):
        if not p:
            continue
        if clauses and (len(p) < MIN_CLAUSE_CHARS or len(clauses[-1]) < MIN_CLAUSE_CHARS):
            clauses[-1] = f"{clauses[-1]} {p}" if p[0].isascii() else clauses[-1] + p
        else:
            clauses.append(p)
    if len(clauses) > MAX_CLAUSES:  # keep the cost bounded on very long texts
        head = clauses[:MAX_CLAUSES - 1]
        clauses = head + [" ".join(clauses[MAX_CLAUSES - 1:])]
    return clauses or [text.strip()]
