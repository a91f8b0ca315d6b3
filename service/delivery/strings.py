"""The digest's own words, English and Chinese, from the one table of interface strings.

``service/web/static/strings.json`` holds the words of the dashboard (served to the browser,
read by ``i18n.js``) and of the digests, whose keys start with ``digest.``. ``table()`` is the
digest's part with the prefix taken off (``table()["zh"]["quiet"]``), read once, when first
asked for.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

PREFIX = "digest."


@cache
def table() -> dict[str, dict[str, str]]:
    table = json.loads(
        (resources.files("service.web") / "static" / "strings.json").read_text(encoding="utf-8")
    )
    return {
        lang: {k.removeprefix(PREFIX): v for k, v in words.items() if k.startswith(PREFIX)}
        for lang, words in table.items()
    }


def words(lang: str) -> dict[str, str]:
    """The digest's words in ``lang`` (English for a language the table lacks)."""
    words_by_language = table()
    return words_by_language.get(lang, words_by_language["en"])


def t(lang: str, key: str, **kw) -> str:
    return words(lang)[key].format(**kw)
