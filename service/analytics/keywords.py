"""Keywords of feedback text: tokens (Latin-script words without stop words, jieba words for
Chinese; links, e-mail addresses, @handles, HTML entities and brand names left out) and
class-based TF-IDF over groups of texts. Themes label their clusters with them; alerts name the
phrases that grew.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

import numpy as np
from sqlalchemy.orm import Session

from service.nlp.rules import jieba_module
from service.store.repo import stored_brands

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W\d_]{2,}(?:'[a-z]+)?", re.UNICODE)
ZH_STOP = set(
    "的 了 是 我 也 很 都 就 在 和 有 还 又 吗 吧 呢 啊 哦 呀 这 那 个 一个 没有 不是 我们 你们 他们 "
    "这个 那个 就是 还是 但是 不过 而且 因为 所以 如果 感觉 真的 非常 比较 已经 一下 一点 什么 "
    "怎么 可以 自己 觉得 这次 这样 然后 还有 买 了 吃 东西 一直 之前 现在 时候".split()
)


@lru_cache(maxsize=1)
def _english_stop() -> frozenset[str]:
    from sklearn.feature_extraction.text import (
        ENGLISH_STOP_WORDS,  # slow to import: only when this analysis runs
    )

    return ENGLISH_STOP_WORDS | {
        "just",
        "really",
        "got",
        "get",
        "bought",
        "buy",
        "ve",
        "im",
        "it's",
        "don't",
    }


# what is not a word of the feedback: links, e-mail addresses, @handles, HTML entities, and the
# "[redacted-…]" placeholders ingest leaves where contact details were
_NOISE = re.compile(
    r"(?:https?://|www\.)\S+|\S+@\S+\.\S+|@\w+|&[a-z]+;|&#\d+;|\[redacted[^\]]*\]", re.I
)
_WEB_WORDS = frozenset(
    {"http", "https", "www", "com", "net", "org", "html", "amp", "quot", "via", "rt"}
)


def tokenize(text: str, drop: frozenset[str] = frozenset()) -> list[str]:
    """Words for keyword extraction: jieba for Chinese runs, words elsewhere; stop words of both
    languages, links, handles and the (case-folded) words in ``drop`` (brand names) left out."""

    stop = _english_stop()
    out = []
    for part in re.split(f"({_HAN.pattern})", _NOISE.sub(" ", text)):
        if not part:
            continue
        if _HAN.fullmatch(part):
            out += [
                w
                for w in jieba_module().lcut(part)
                if len(w) >= 2 and w not in ZH_STOP and w not in drop
            ]
        else:
            out += [
                w
                for w in (m.lower() for m in _WORD.findall(part))
                if len(w) > 2 and w not in stop and w not in _WEB_WORDS and w not in drop
            ]
    return out


def keyword_tokenizer(session: Session, competitors=None):
    """``tokenize`` for this store's keywords: brand mentions (given the brand list) blanked
    out first, then the brand words of ``brand_words`` dropped."""
    drop = brand_words(session, competitors)
    if competitors is None:
        return lambda text: tokenize(text, drop)
    return lambda text: tokenize(competitors.without_mentions(text), drop)


def brand_words(session: Session, competitors=None) -> frozenset[str]:
    """Words that name a brand: the stored brand ids and, given the brand list, every brand's
    name and aliases, whole and word by word (what ``tokenize`` leaves out)."""
    names = set(stored_brands(session))
    if competitors is not None:
        for b in competitors.brands:
            names |= {b.id, b.name, *b.aliases}
    out: set[str] = set()
    for name in names:
        key = (name or "").casefold()
        out.add(key)
        out.add(re.sub(r"[\s_\-]+", "", key))
        out |= {w for w in re.split(r"[\s_\-]+", key) if len(w) > 2}
    return frozenset(w for w in out if w)


def class_tfidf(docs: list[list[str]], top: int = 6) -> list[list[str]]:
    """Top keywords per class (class-based TF-IDF over each class's concatenated tokens)."""
    counts = [Counter(d) for d in docs]
    total = Counter()
    for c in counts:
        total.update(c)
    avg = max(np.mean([sum(c.values()) for c in counts]) if counts else 1.0, 1.0)
    out = []
    for c in counts:
        n = max(sum(c.values()), 1)
        weights = {w: (k / n) * np.log(1 + avg / total[w]) for w, k in c.items()}
        out.append([w for w, _ in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:top]])
    return out
