"""Language identification with lingua (its n-gram models ship inside the wheel).

The detector is restricted to a configurable set of languages: fewer candidates make
short texts far more reliable and keep memory small. Texts with Han characters and no
kana/hangul are decided by script before the statistical model is asked.
"""

from __future__ import annotations

import re
import threading

DEFAULT_LANGUAGES = (
    "en",
    "zh",
    "ja",
    "ko",
    "es",
    "fr",
    "de",
    "it",
    "pt",
    "ru",
    "ar",
    "hi",
    "nl",
    "tr",
    "vi",
    "th",
    "id",
    "pl",
)

_HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
UNKNOWN = "und"


class LanguageDetector:
    """``detect(text) -> ISO 639-1 code`` or ``"und"``. Builds its model on first use."""

    def __init__(self, languages: tuple[str, ...] = DEFAULT_LANGUAGES, min_confidence: float = 0.2):
        self.languages = languages
        self.min_confidence = min_confidence
        self._detector = None
        self._lock = threading.Lock()

    def _get(self):
        if self._detector is None:
            with self._lock:
                if self._detector is None:
                    from lingua import (  # loads its language models: only when a language is detected
                        IsoCode639_1,
                        LanguageDetectorBuilder,
                    )

                    codes = [getattr(IsoCode639_1, c.upper()) for c in self.languages]
                    self._detector = (
                        LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
                        .with_preloaded_language_models()
                        .build()
                    )
        return self._detector

    def detect(self, text: str) -> str:
        letters = _LETTER.findall(text)
        if not letters:
            return UNKNOWN
        han = len(_HAN.findall(text))
        if han and not _KANA.search(text) and not _HANGUL.search(text) and han * 3 >= len(letters):
            # Chinese with some Latin words mixed in ("这个 app 很好用") is Chinese.
            return "zh" if "zh" in self.languages else UNKNOWN
        conf = self._get().compute_language_confidence_values(text)
        if not conf or conf[0].value < self.min_confidence:
            return UNKNOWN
        return conf[0].language.iso_code_639_1.name.lower()

    def detect_many(self, texts: list[str]) -> list[str]:
        return [self.detect(t) for t in texts]
