"""From a valid ``FeedbackIn`` to what the store keeps: normalised, redacted, identified."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from service.domain import Competitors, FeedbackIn
from service.ingest.dedup import Fingerprint, fingerprint
from service.ingest.language import LanguageDetector
from service.ingest.normalize import normalize_text, text_hash
from service.ingest.pii import PiiMode, redact


class BrandSource(StrEnum):
    """How an item's brand was resolved."""

    field = "field"  # the item's brand field (a known brand, or an unknown name lowercased)
    text = "text"  # no brand field: the brand mentioned (most often, then first) in the text
    default = "default"  # no brand field and no brand mentioned: our brand


@dataclass(frozen=True)
class PreparedItem:
    item: FeedbackIn  # text normalised and redacted, brand resolved, language set
    author_hash: str | None
    text_hash: str
    content_hash: str  # over every stored field: unchanged re-sends are skipped
    fingerprint: Fingerprint | None
    pii_found: dict[str, int]
    brand_source: BrandSource = BrandSource.field

    @property
    def key(self) -> tuple[str, str]:
        return self.item.source, self.item.external_id


class Preparer:
    def __init__(
        self,
        *,
        detector: LanguageDetector,
        competitors: Competitors,
        author_hasher: Callable[[str], str],
        pii_mode: PiiMode = PiiMode.redact,
        pii_modes_by_source: dict[str, PiiMode] | None = None,
    ):
        self.detector = detector
        self.competitors = competitors
        self.author_hasher = author_hasher
        self.pii_mode = pii_mode
        self.pii_modes_by_source = pii_modes_by_source or {}

    def prepare(self, item: FeedbackIn) -> PreparedItem:
        text = normalize_text(item.text)
        mode = self.pii_modes_by_source.get(item.source, self.pii_mode)
        text, found = redact(text, mode)
        brand, brand_source = self._brand(item.brand, text)
        language = item.language.lower() if item.language else self.detector.detect(text)
        clean = item.model_copy(
            update={"text": text, "brand": brand, "language": language, "author": None}
        )
        author_hash = self.author_hasher(item.author) if item.author else None
        content = clean.model_dump(mode="json", exclude={"source", "external_id"})
        content["author_hash"] = author_hash
        content["brand_source"] = brand_source.value
        content_hash = hashlib.sha1(
            json.dumps(content, sort_keys=True, ensure_ascii=False).encode()
        ).hexdigest()
        return PreparedItem(
            clean,
            author_hash,
            text_hash(text),
            content_hash,
            fingerprint(text),
            found,
            brand_source,
        )

    def _brand(self, given: str | None, text: str) -> tuple[str, BrandSource]:
        """The brand field resolved to a brand id; without one, the brand the (normalised,
        redacted) text mentions; without a mention, our brand."""
        if given:
            return self.competitors.resolve(given) or given.strip().lower(), BrandSource.field
        mentioned = self.competitors.resolve_text(text)
        if mentioned:
            return mentioned, BrandSource.text
        return self.competitors.our_brand, BrandSource.default
