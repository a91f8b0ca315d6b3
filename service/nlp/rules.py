"""Taxonomy rules: include and exclude phrase patterns per language, read and fixed by people.

An aspect's ``rules`` (``configs/taxonomy.yaml``) hold patterns per language code (``en``,
``zh``, … and ``any`` for every language). A text is matched with the patterns of its own
language plus ``any``; a language without patterns is left to the model.

Pattern syntax (one string per pattern):

- Latin scripts: words match whole words, case-insensitive (``staff`` never matches
  ``staffing``); ``wait*`` matches every word starting with ``wait``; several words match
  in sequence with any spaces, hyphens or punctuation between them (``wine list``,
  ``user friendly``); characters that are not letters or digits match literally (``$``).
- Chinese, Japanese, Korean: characters match as written (``拉肚子``); ``=香`` matches only a
  whole word as jieba segments the text (``香`` yes, ``香港`` no).
- ``A ~N B``: A and B both occur, at most N words apart (characters for CJK), either order
  (``found ~4 hair``, ``吃 ~6 拉肚子``).
- ``A | B`` inside a pattern is an alternation of terms (``(hair|glass)`` is not needed:
  ``hair | glass ~4 found``).

``exclude`` patterns veto any include match they overlap (``wait staff`` keeps ``wait``
from tagging service; ``burn* ~2 mouth`` keeps a spicy dish from being a burn). With
``negation: true`` (the default for ``kind: severity`` aspects) an include match with a
negation word (``not``, ``no``, ``never``, ``without``, ``didn't`` …; ``没``, ``不``, ``无``, ``未`` …)
at most ``window`` words (characters for CJK: twice that) before it does not count:
"no hair in it", "没有拉肚子"; nor does a Chinese match whose clause ends denying it right
after: "虫子倒是没有", "坏果一个都没有".
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from functools import lru_cache

from service.domain import AspectRules

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_WORD = re.compile(r"\w+", re.UNICODE)
_NEAR = re.compile(r"\s+~(\d+)\s+")

NEGATORS = {
    "latin": re.compile(
        r"(?i)\b(?:not|no|never|none|nothing|without|hardly|nor|neither|"
        r"\w+n't|dont|didnt|doesnt|wasnt|isnt|wont|cant|couldnt|havent|hasnt|wouldnt|"
        r"if|hope|afraid|worried|unless)\b"
    ),
    # negations and the hedges that report no harm ("以为漏电": thought it was leaking; "差点
    # 摔倒": almost fell; "万一过敏": in case of an allergy; "消费者…", "女子…": a news item
    # about a stranger)
    "cjk": re.compile(
        r"没有|没|不(?![过错久仅少停断但管同光单慎])|无(?!论)|未|别(?!人)|非(?!常)|並未|并未|從未|从未|绝不|以为|担心|怕|会不会|据说|听说"
        r"|差点|差一点|险些|万一|消费者|女子|男子|网友"
    ),
}
CJK_WINDOW_FACTOR = 2  # a CJK window counts characters: two per word


class RuleError(ValueError):
    """A pattern that cannot be compiled (named with its aspect and language)."""


@dataclass(frozen=True)
class RuleMatch:
    start: int
    end: int
    pattern: str


def is_cjk(s: str) -> bool:
    return bool(_CJK.search(s))


_JIEBA_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def jieba_module():
    """jieba, loaded once, quietly (its logger is reset to DEBUG when the module is imported, so
    the level is set here, after the import) and thread-safely: every caller goes through this."""
    import jieba  # loads its dictionary: only when Chinese text is cut

    jieba.setLogLevel(logging.WARNING)  # jieba logs DEBUG lines on stderr when it loads
    with _JIEBA_LOCK:
        jieba.initialize()
    return jieba


def _word_bounds(text: str) -> set[tuple[int, int]]:
    """Spans of jieba's words in ``text`` (for ``=`` patterns)."""
    out, pos = set(), 0
    for tok in jieba_module().cut(text):
        out.add((pos, pos + len(tok)))
        pos += len(tok)
    return out


class _Term:
    """One alternative of a pattern: a word sequence (Latin) or a character string (CJK)."""

    def __init__(self, raw: str):
        raw = raw.strip().replace("\\", "")
        if not raw:
            raise RuleError("empty term")
        self.whole_word = raw.startswith("=") and len(raw) > 1
        if self.whole_word:
            raw = raw[1:]
        self.cjk = is_cjk(raw)
        self.raw = raw
        if self.cjk:
            self.regex = re.compile(re.escape(raw))
        else:
            parts = []
            for w in raw.split():
                star = w.endswith("*") and len(w) > 1
                core = re.escape(w[:-1] if star else w)
                left = r"(?<!\w)" if re.match(r"\w", w) else ""
                right = r"\w*" if star else (r"(?!\w)" if re.search(r"\w$", w) else "")
                parts.append(left + core + right)
            self.regex = re.compile(r"[\s\-_/.,]*".join(parts), re.IGNORECASE)

    def find(self, text: str, words: set[tuple[int, int]] | None) -> list[tuple[int, int]]:
        spans = [(m.start(), m.end()) for m in self.regex.finditer(text) if m.end() > m.start()]
        if self.whole_word and self.cjk and words is not None:
            spans = [s for s in spans if s in words]
        return spans


class Pattern:
    """A compiled pattern: alternatives of terms, optionally ``~N`` near another group."""

    def __init__(self, source: str):
        self.source = source
        pieces = _NEAR.split(source.strip())
        if re.search(r"(?:^|\s)~\d+(?:\s|$)", source.strip()) and len(pieces) < 3:
            raise RuleError("'~N' needs a part on both sides")
        # pieces: group, N, group, N, group …
        self.groups = [[_Term(t) for t in g.split("|") if t.strip()] for g in pieces[0::2]]
        self.windows = [int(n) for n in pieces[1::2]]
        if any(not g for g in self.groups):
            raise RuleError(f"pattern {source!r} has an empty part")
        self.cjk = any(t.cjk for g in self.groups for t in g)
        self.needs_words = any(t.whole_word and t.cjk for g in self.groups for t in g)
        self.anchors = _Anchors.of(self.groups[0])

    def find(
        self, text: str, words: set[tuple[int, int]] | None = None, keys: TextKeys | None = None
    ) -> list[RuleMatch]:
        if keys is not None and not self.anchors.may_match(keys):
            return []
        found = [[s for t in g for s in t.find(text, words)] for g in self.groups]
        if any(not f for f in found):
            return []
        if len(found) == 1:
            return [RuleMatch(a, b, self.source) for a, b in found[0]]
        out = []
        for a, b in found[0]:
            lo, hi, ok = a, b, True
            for window, spans in zip(self.windows, found[1:]):
                near = [
                    (x, y) for x, y in spans if _gap(text, (lo, hi), (x, y), self.cjk) <= window
                ]
                if not near:
                    ok = False
                    break
                x, y = min(near, key=lambda s: _gap(text, (lo, hi), s, self.cjk))
                lo, hi = min(lo, x), max(hi, y)
            if ok:
                out.append(RuleMatch(lo, hi, self.source))
        return out


def _gap(text: str, s1: tuple[int, int], s2: tuple[int, int], cjk: bool) -> int:
    """Words (CJK: characters / 2) strictly between two spans; 0 when they touch or overlap."""
    a, b = (s1, s2) if s1[0] <= s2[0] else (s2, s1)
    if b[0] <= a[1]:
        return 0
    between = text[a[1] : b[0]]
    if cjk:
        return (len(between.strip()) + CJK_WINDOW_FACTOR - 1) // CJK_WINDOW_FACTOR
    return len(_WORD.findall(between))


def _negated(text: str, start: int, window: int) -> bool:
    before = text[:start]
    if is_cjk(text[start : start + 4]) or (before and is_cjk(before[-1:])):
        # the clause's own words only: stop at the last punctuation
        seg = re.split(r"[，,。.!！?？;；、\n]", before[-window * CJK_WINDOW_FACTOR :])[-1]
        return bool(NEGATORS["cjk"].search(seg))
    seg = re.split(r"[,.!?;:\n]", before)[-1]
    words = _WORD.findall(seg.replace("'", ""))[-window:] if window else []
    tail = " ".join(words)
    return bool(NEGATORS["latin"].search(tail))


# a Chinese clause that ends by denying what it named: "虫子倒是没有" (insects: none), "坏果一个都
# 没有" (not one rotten fruit); "拉肚子没有停" (the diarrhoea did not stop) goes on, so it counts
_CJK_DENIED_AFTER = re.compile(
    r"^的?(?:倒是|倒|却|也|都|是|根本|完全|一个都|一个也|一只都|一只也|一点都|一点也|一次都|一次也)?"
    r"(?:没有|没|没见|没看到|没发现|不见)(?:了|过)?\s*(?:[，,。.!！?？;；、\n]|$)"
)


def _denied_after(text: str, end: int) -> bool:
    """A CJK match whose own clause ends in a negation right after it."""
    return bool(is_cjk(text[end - 1 : end]) and _CJK_DENIED_AFTER.match(text[end:]))


class TextKeys:
    """A text's lowercase words and characters, shared by every aspect's prefilter."""

    __slots__ = ("text", "lower", "words", "chars")

    def __init__(self, text: str):
        self.text = text
        self.lower = text.lower()
        self.words = set(_WORD.findall(self.lower))
        self.chars = set(text)


@dataclass
class _Anchors:
    words: frozenset[str]
    prefixes: tuple[str, ...]
    chars: frozenset[str]
    literals: tuple[str, ...]

    @classmethod
    def of(cls, terms: list[_Term]) -> _Anchors:
        words, prefixes, chars, literals = set(), [], set(), []
        for t in terms:
            if t.cjk:
                chars.add(t.raw[0])
                continue
            first = t.raw.split()[0].lower()
            if first.endswith("*") and len(first) > 1:
                prefixes.append(first[:-1])
            elif _WORD.fullmatch(first):
                words.add(first)
            else:
                literals.append(first.rstrip("*"))
        return cls(frozenset(words), tuple(prefixes), frozenset(chars), tuple(literals))

    def may_match(self, keys: TextKeys) -> bool:
        if not self.words.isdisjoint(keys.words) or not self.chars.isdisjoint(keys.chars):
            return True
        if self.prefixes and any(w.startswith(self.prefixes) for w in keys.words):
            return True
        return any(x in keys.lower for x in self.literals)


class CompiledRules:
    """One aspect's rules, compiled once (see the module docstring for the syntax)."""

    def __init__(self, aspect: str, rules: AspectRules, *, negation: bool):
        self.aspect = aspect
        self.negation = rules.negation if rules.negation is not None else negation
        self.window = rules.window
        self.include = self._compile(rules.include, "include")
        self.exclude = self._compile(rules.exclude, "exclude")
        self._pre: dict[str, _Anchors | None] = {}

    def _compile(self, by_lang: dict[str, list[str]], what: str) -> dict[str, list[Pattern]]:
        out = {}
        for lang, patterns in by_lang.items():
            compiled = []
            for p in patterns:
                try:
                    compiled.append(Pattern(str(p)))
                except (RuleError, re.error) as e:
                    raise RuleError(
                        f"aspect {self.aspect!r}: rules.{what}.{lang}: pattern {p!r}: {e}"
                    ) from e
            out[lang] = compiled
        return out

    def applies(self, language: str | None) -> bool:
        """Whether any include pattern is written for ``language`` (or ``any``)."""
        return bool(self._for(self.include, language))

    def _for(self, table: dict[str, list[Pattern]], language: str | None) -> list[Pattern]:
        if language is None or language == "und":
            return [p for ps in table.values() for p in ps]
        return [*table.get(language, []), *table.get("any", [])]

    def _prefilter(self, language: str | None) -> _Anchors | None:
        """What a text must contain for any include pattern to match: the first word of a
        Latin term (or its prefix), the first character of a CJK term, or a literal. Checked
        against the text's words and characters (``TextKeys``, computed once per text), so most
        (text, aspect) pairs cost a set intersection, not a regex scan."""
        key = language or "und"
        if key not in self._pre:
            terms = [t for p in self._for(self.include, language) for t in p.groups[0]]
            self._pre[key] = _Anchors.of(terms) if terms else None
        return self._pre[key]

    def match(
        self, text: str, language: str | None, keys: TextKeys | None = None
    ) -> list[RuleMatch]:
        """Include matches in ``text`` that no exclude pattern overlaps and no negation
        precedes (when negation is on), in order of position."""
        keys = keys or TextKeys(text)
        pre = self._prefilter(language)
        if pre is None or not pre.may_match(keys):
            return []
        inc = self._for(self.include, language)
        needs_words = any(p.needs_words for p in inc) or any(
            p.needs_words for p in self._for(self.exclude, language)
        )
        words = _word_bounds(text) if needs_words else None
        hits = [m for p in inc for m in p.find(text, words, keys)]
        if not hits:
            return []
        vetoes = [m for p in self._for(self.exclude, language) for m in p.find(text, words, keys)]
        out = []
        for m in sorted(hits, key=lambda m: (m.start, -m.end)):
            if any(v.start < m.end and m.start < v.end for v in vetoes):
                continue
            if self.negation and (
                _negated(text, m.start, self.window) or _denied_after(text, m.end)
            ):
                continue
            out.append(m)
        return out


def compile_taxonomy_rules(taxonomy) -> dict[str, CompiledRules]:
    """``{aspect id: CompiledRules}`` for the aspects that have any include pattern."""
    return {
        a.id: CompiledRules(a.id, a.rules, negation=a.kind == "severity")
        for a in taxonomy.aspects
        if a.rules is not None and any(a.rules.include.values())
    }
