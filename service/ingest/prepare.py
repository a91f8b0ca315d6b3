"""From a valid ``FeedbackIn`` to what the store keeps: normalised, redacted, identified."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from service.domain import Competitors, FeedbackIn
from service.ingest.dedup import Fingerprint, fingerprint
from service.ingest.language import LanguageDetector
from service.ingest.normalize import normalize_text, text_hash
from service.ingest.pii import PiiMode, redact


@dataclass(frozen=True)
class PreparedItem:
    item: FeedbackIn  # text normalised and redacted, brand resolved, language set
    author_hash: str | None
    text_hash: str
    content_hash: str  # over every stored field: unchanged re-sends are skipped
    fingerprint: Fingerprint | None
    pii_found: dict[str, int]

    @property
    def key(self) -> tuple[str, str]:
        return self.item.source, self.item.external_id


class Preparer:
    def __init__(self, *, detector: LanguageDetector, competitors: Competitors,
                 author_hasher: Callable[[str], str], pii_mode: PiiMode = PiiMode.redact,
                 pii_modes_by_source: dict[str, PiiMode] | None = None):
        self.detector = detector
        self.competitors = competitors
        self.author_hasher = author_hasher
        self.pii_mode = pii_mode
        self.pii_modes_by_source = pii_modes_by_source or {}

    def prepare(self, item: FeedbackIn) -> PreparedItem:
        text = normalize_text(item.text)
        mode = self.pii_modes_by_source.get(item.source, self.pii_mode)
        text, found = redact(text, mode)
        brand = item.brand
        if brand:
            brand = self.competitors.resolve(brand) or brand.strip().lower()
        else:
            brand = self.competitors.our_brand
        language = item.language.lower() if item.language else self.detector.detect(text)
        clean = item.model_copy(update={"text": text, "brand": brand, "language": language,
                                        "author": None})
        author_hash = self.author_hasher(item.author) if item.author else None
        content = clean.model_dump(mode="json", exclude={"source", "external_id"})
        content["author_hash"] = author_hash
        content_hash = hashlib.sha1(json.dumps(content, sort_keys=True, ensure_ascii=False)
                                    .encode()).hexdigest()
        return PreparedItem(clean, author_hash, text_hash(text), content_hash,
                            fingerprint(text), found)
