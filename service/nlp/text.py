"""Splitting feedback into clauses: the unit an aspect and its evidence are found in."""

from __future__ import annotations

import re

# Sentence ends (Latin and CJK), semicolons, line breaks.
_SENTENCE = re.compile(r"(?<=[.!?…。！？；;])\s*|\n+")
# Contrast turns a clause: "great taste but the box arrived crushed", "味道不错，但是包装破了".
_CONTRAST = re.compile(
    r"(?i)\s*(?:,\s*|\s)(?=(?:but|however|although|though|whereas|except|yet)\b)"
    r"|[，,]\s*(?=(?:但是|但|不过|可是|然而|就是|只是|而且|并且|另外|还有))"
    r"|(?<=[，,])(?=[\u4e00-\u9fff])"
)
MIN_CLAUSE_CHARS = 3
_TRIM = " \t\n,，、"
MAX_CLAUSES = 12


def clause_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` character spans of the clauses of ``text``, in order.

    Tiny fragments are merged into their neighbour, and Chinese text is also cut at
    full-width commas between clauses, since Chinese reviews chain several judgements with
    commas ("味道很好，包装也精致，就是有点贵").
    """
    cuts = [0]
    for m in _SENTENCE.finditer(text):
        cuts.append(m.end())
    raw: list[tuple[int, int]] = []
    for a, b in zip(cuts, cuts[1:] + [len(text)]):
        sub = text[a:b]
        inner = [0] + [m.end() for m in _CONTRAST.finditer(sub)] + [len(sub)]
        raw.extend((a + x, a + y) for x, y in zip(inner, inner[1:]))
    spans: list[tuple[int, int]] = []
    for a, b in raw:
        while a < b and text[a] in _TRIM:
            a += 1
        while b > a and text[b - 1] in _TRIM:
            b -= 1
        if a >= b:
            continue
        if spans and (b - a < MIN_CLAUSE_CHARS or spans[-1][1] - spans[-1][0] < MIN_CLAUSE_CHARS):
            spans[-1] = (spans[-1][0], b)
        else:
            spans.append((a, b))
    if len(spans) > MAX_CLAUSES:  # keep the cost bounded on very long texts
        spans = spans[: MAX_CLAUSES - 1] + [(spans[MAX_CLAUSES - 1][0], spans[-1][1])]
    return spans or [(0, len(text))]


def split_clauses(text: str) -> list[str]:
    return [text[a:b] for a, b in clause_spans(text)]
