"""The data dictionary: what a feedback item, a score and the configured vocabularies are.

Pure pydantic models with no I/O beyond reading the small YAML files that define the
taxonomy and the competitor list.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Channel(StrEnum):
    review = "review"
    social = "social"
    complaint = "complaint"
    support = "support"
    survey = "survey"
    other = "other"


class Sentiment(StrEnum):
    negative = "negative"
    neutral = "neutral"
    positive = "positive"


SENTIMENT_LABELS: tuple[str, ...] = tuple(s.value for s in Sentiment)

_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")
ShortStr = Annotated[str, Field(min_length=1, max_length=128)]


class FeedbackIn(BaseModel):
    """One feedback item as it arrives, after column mapping (the unified dictionary)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    source: str = Field(..., description="System of origin, e.g. tmall, twitter, hotline.")
    channel: Channel = Channel.other
    external_id: str = Field(
        ...,
        min_length=1,
        max_length=256,
        description="Unique per source; (source, external_id) is the idempotency key.",
    )
    text: str = Field(..., min_length=1)
    created_at: datetime = Field(
        ..., description="Timezone-aware; naive values take the ingest default zone."
    )
    brand: ShortStr | None = None
    product: ShortStr | None = None
    region: ShortStr | None = None
    rating: float | None = Field(None, allow_inf_nan=False)
    rating_scale: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Maximum of the rating scale, e.g. 5 or 10."
    )
    attributes: dict[str, str] = Field(
        default_factory=dict, description="Free segment fields: age_group, customer_tier, dealer…"
    )
    author: str | None = Field(None, max_length=512, description="Stored only as a salted hash.")
    language: str | None = Field(
        None, max_length=16, description="BCP-47 code; detected when absent."
    )

    @field_validator("source")
    @classmethod
    def _source_slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError("must be 1-64 characters of letters, digits, '_', '.', ':' or '-'")
        return v.lower()

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_validator("attributes", mode="before")
    @classmethod
    def _attributes_as_strings(cls, v: Any) -> Any:
        if isinstance(v, dict):
            out = {}
            for k, val in v.items():
                if val is None or val == "":
                    continue
                if isinstance(val, (dict, list)):
                    raise ValueError(f"attribute {k!r} must be a scalar, got {type(val).__name__}")
                out[str(k)] = str(val)
            return out
        return v

    @model_validator(mode="after")
    def _rating_in_scale(self) -> FeedbackIn:
        if self.rating is not None:
            scale = self.rating_scale or 5.0
            if not 0 <= self.rating <= scale:
                raise ValueError(f"rating {self.rating} is outside 0..{scale:g}")
            self.rating_scale = scale
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must carry a timezone")
        self.created_at = self.created_at.astimezone(UTC)
        return self


class AspectScore(BaseModel):
    aspect: str
    confidence: float = Field(..., ge=0, le=1)
    sentiment: Sentiment
    sentiment_score: float = Field(..., ge=-1, le=1)
    evidence: str
    reason: Literal["rule", "model", "rule+model"] = Field(
        "model", description="What tagged it: a taxonomy rule, the calibrated model score, or both."
    )
    rule: str | None = Field(None, description="The taxonomy pattern that matched, for rule tags.")


class Score(BaseModel):
    sentiment: Sentiment
    sentiment_score: float = Field(..., ge=-1, le=1)
    probabilities: dict[str, float]
    aspects: list[AspectScore] = Field(default_factory=list)
    model_version: str
    truncated_tokens: int | None = Field(
        None,
        description="Tokens past limits.max_item_tokens that the model "
        "did not read (the text is stored whole); None: it read them all.",
    )


class Feedback(BaseModel):
    """A stored item with its current score."""

    id: int
    source: str
    channel: Channel
    external_id: str
    text: str
    created_at: datetime
    brand: str
    brand_source: str | None = Field(
        None,
        description="How the brand was resolved: field (the item's brand field), text (a mention "
        "in the text) or default (our brand); None for items stored before it was recorded.",
    )
    product: str | None = None
    region: str | None = None
    rating: float | None = None
    rating_scale: float | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    author_hash: str | None = None
    language: str | None = None
    duplicate_of: int | None = None
    ingested_at: datetime
    updated_at: datetime
    score: Score | None = None


@dataclass(frozen=True)
class DataScope:
    """The regions and brands a key may read or write (``None``: any). Actions, tracked
    phrases and ingest writes each apply it to their own rows."""

    regions: tuple[str, ...] | None = None
    brands: tuple[str, ...] | None = None

    def admits(self, region: str | None, brand: str | None) -> bool:
        """Whether an item of ``region`` and ``brand`` lies within this scope."""
        return (self.regions is None or region in self.regions) and (
            self.brands is None or brand in self.brands
        )


class LabelTarget(StrEnum):
    sentiment = "sentiment"  # the item's overall sentiment
    aspect = "aspect"  # whether an aspect is present (value: present | absent)
    aspect_sentiment = "aspect_sentiment"  # an aspect's sentiment (implies it is present)


class LabelSource(StrEnum):
    correction = "correction"  # fixed on an item in the explorer or an alert quote
    queue = "queue"  # answered in the labeling queue
    import_ = "import"  # radar labels import
    rating = "rating"  # derived from the item's star rating (weak)


LABEL_VALUES = {
    "sentiment": SENTIMENT_LABELS,
    "aspect": ("present", "absent"),
    "aspect_sentiment": SENTIMENT_LABELS,
}


class Label(BaseModel):
    """One label on one item: its sentiment, an aspect present or absent, or an aspect's sentiment."""

    model_config = ConfigDict(extra="forbid")
    target: LabelTarget
    aspect: str | None = Field(
        None, description="The taxonomy aspect (targets aspect and aspect_sentiment)."
    )
    value: str = Field(
        ..., description="negative | neutral | positive, or present | absent for target aspect."
    )

    @model_validator(mode="after")
    def _check(self) -> Label:
        t = self.target.value
        if t == "sentiment" and self.aspect:
            raise ValueError("a sentiment label names no aspect")
        if t != "sentiment" and not self.aspect:
            raise ValueError(f"a {t} label needs an aspect")
        if self.value not in LABEL_VALUES[t]:
            raise ValueError(
                f"{t} value must be one of {', '.join(LABEL_VALUES[t])}, not {self.value!r}"
            )
        return self


class StoredLabel(Label):
    id: int
    feedback_id: int
    source: LabelSource
    labeled_by: str
    created_at: datetime
    updated_at: datetime


# --- configured vocabularies -------------------------------------------------------------


def _read_yaml(path: Path) -> dict:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


class AspectRules(BaseModel):
    """Phrase patterns per language code (``any``: every language); syntax in ``service/nlp/rules.py``."""

    model_config = ConfigDict(extra="forbid")

    include: dict[str, list[str]] = Field(
        default_factory=dict, description="A match tags the aspect."
    )
    exclude: dict[str, list[str]] = Field(
        default_factory=dict, description="A match vetoes any include match it overlaps."
    )
    negation: bool | None = Field(
        None,
        description="Ignore include matches with a negation word just before "
        "them; default: on for kind severity, off for topics.",
    )
    window: int = Field(
        3, ge=0, le=12, description="Words (CJK: 2 characters each) looked back for a negation."
    )
    confidence: float = Field(
        0.9, gt=0.5, le=1.0, description="Confidence of a tag that only a rule supports."
    )
    verify: bool | None = Field(
        None,
        description="Safety aspects: a match tags only if the pipeline's harm verifier finds "
        "a harm reported in the matched clause (far fewer false L1 alerts, some real reports "
        "missed: the model card has both); default on; false: every match tags.",
    )


class AspectDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$")
    names: dict[str, str] = Field(..., description="Display name per language code.")
    description: str
    examples: list[str] = Field(default_factory=list)
    kind: Literal["topic", "severity"] = Field(
        "topic",
        description="topic: what an item is about; severity: a harm that is tagged only when its "
        "detector (the rules, with negation) finds it, never by similarity alone.",
    )
    rules: AspectRules | None = None
    tagging: Literal["hybrid", "rules", "model"] = Field(
        "hybrid",
        description="hybrid: a rule match or a calibrated model score tags; rules / model: only that. "
        "Severity aspects are always rules (the model confirms, it never tags alone).",
    )
    safety: bool = Field(
        False, description="Health/safety aspect: severe complaints alert at once."
    )

    @property
    def sources(self) -> tuple[str, ...]:
        """What may tag this aspect: ``rule``, ``model`` or both."""
        if self.kind == "severity" or self.tagging == "rules":
            return ("rule",)
        if self.tagging == "model" or self.rules is None:
            return ("model",)
        return ("rule", "model")

    def name(self, lang: str = "en") -> str:
        return self.names.get(lang) or self.names.get("en") or self.id


class Taxonomy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    aspects: list[AspectDef]

    @model_validator(mode="after")
    def _unique_ids(self) -> Taxonomy:
        seen: set[str] = set()
        for a in self.aspects:
            if a.id in seen:
                raise ValueError(f"aspect id {a.id!r} appears twice")
            seen.add(a.id)
        return self

    @classmethod
    def from_yaml(cls, path: Path) -> Taxonomy:
        return cls.model_validate(_read_yaml(path))

    @property
    def ids(self) -> list[str]:
        return [a.id for a in self.aspects]

    def get(self, aspect_id: str) -> AspectDef:
        for a in self.aspects:
            if a.id == aspect_id:
                return a
        raise KeyError(aspect_id)

    def fingerprint(self) -> str:
        """Changes whenever anything the tagger reads changes (ids, names, descriptions, examples,
        rules, kind and tagging mode)."""
        payload = json.dumps(
            [a.model_dump(exclude={"safety"}, exclude_none=True) for a in self.aspects],
            ensure_ascii=False,
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:8]


class Brand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., pattern=r"^[a-z][a-z0-9_\-]*$")
    name: str
    aliases: list[str] = Field(default_factory=list)


class Competitors(BaseModel):
    model_config = ConfigDict(extra="forbid")

    our_brand: str
    brands: list[Brand]

    @model_validator(mode="after")
    def _ours_listed(self) -> Competitors:
        ids = [b.id for b in self.brands]
        if self.our_brand not in ids:
            raise ValueError(f"our_brand {self.our_brand!r} is not among brands {ids}")
        return self

    @classmethod
    def from_yaml(cls, path: Path) -> Competitors:
        return cls.model_validate(_read_yaml(path))

    def resolve(self, name: str) -> str | None:
        """Brand id for an id, display name or alias (case-insensitive); None when unknown."""
        key = name.strip().casefold()
        for b in self.brands:
            if key == b.id or key == b.name.casefold() or key in (a.casefold() for a in b.aliases):
                return b.id
        return None

    def mentions(self, text: str) -> dict[str, int]:
        """Brands mentioned in a text: brand id → number of mentions, in order of first mention.

        Every brand's id, name and aliases count. Latin-script names match case-insensitively on
        word boundaries ("nk noodles", not "spicewellness"); CJK names match anywhere in the text.
        Hashtags and @mentions ("#辣之源#", "@SpiceWell", "#nknoodles") count; overlapping names
        count once (the longest wins). Full-width characters are read as their ASCII forms.
        """
        return self._current_matcher().mentions(text)

    def without_mentions(self, text: str) -> str:
        """``text`` (NFKC) with every brand mention blanked out, as ``mentions`` finds them
        (keywords and theme labels name what is said, not who it is said about)."""
        return self._current_matcher().strip(text)

    def resolve_text(self, text: str) -> str | None:
        """The brand a text is about: the one mentioned most often, ties going to the one
        mentioned first; None when no brand is mentioned."""
        counts = self.mentions(text)
        return max(counts, key=counts.__getitem__) if counts else None

    def _current_matcher(self) -> _BrandMatcher:
        matcher = self._matcher
        if matcher.brands is not self.brands:  # a model_copy with other brands carried the cache
            del self.__dict__["_matcher"]
            matcher = self._matcher
        return matcher

    @cached_property
    def _matcher(self) -> _BrandMatcher:  # compiled once per instance (not a field)
        return _BrandMatcher.build(self.brands)


# CJK scripts (Han, kana, Hangul, their punctuation and compatibility blocks): names in them
# match anywhere, as these scripts put no spaces between words.
_CJK = "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
_CJK_CHAR = re.compile(f"[{_CJK}]")
# a word character outside CJK: what must not touch either end of a Latin-script name
_LATIN_WORD = f"[^\\W{_CJK}]"


@dataclass(frozen=True)
class _BrandMatcher:
    brands: list[Brand]  # the list it was built from (to notice a copy with other brands)
    pattern: re.Pattern | None
    brand_of: dict[str, str]  # group name → brand id

    @classmethod
    def build(cls, brands: list[Brand]) -> _BrandMatcher:
        names: dict[str, str] = {}  # normalised name → brand id (the first brand listing it)
        for b in brands:
            for name in (b.id, b.name, *b.aliases):
                key = " ".join(unicodedata.normalize("NFKC", name).casefold().split())
                if key:
                    names.setdefault(key, b.id)
        alternatives: list[tuple[int, str, str]] = []  # (name length, regex, brand id)
        for key, bid in names.items():
            words = key.split(" ")
            body = r"\s+".join(re.escape(w) for w in words)
            alternatives.append((len(key), cls._bounded(key, body), bid))
            if len(words) > 1 and not _CJK_CHAR.search(key):  # "#nknoodles", "@spicewellnoodles"
                joined = "".join(words)
                if joined not in names:
                    alternatives.append(
                        (len(joined), "(?<=[#@])" + cls._bounded(joined, re.escape(joined)), bid)
                    )
        # longest first, so that "辣之源面" counts once and not also as "辣之源"
        alternatives.sort(key=lambda a: -a[0])
        if not alternatives:
            return cls(brands, None, {})
        pattern = re.compile(
            "|".join(f"(?P<n{i}>{rx})" for i, (_, rx, _) in enumerate(alternatives)), re.IGNORECASE
        )
        return cls(brands, pattern, {f"n{i}": bid for i, (_, _, bid) in enumerate(alternatives)})

    @staticmethod
    def _bounded(name: str, body: str) -> str:
        """Word boundaries at the ends of a name that are Latin-script word characters."""
        if re.match(_LATIN_WORD, name[0]):
            body = f"(?<!{_LATIN_WORD})" + body
        if re.match(_LATIN_WORD, name[-1]):
            body += f"(?!{_LATIN_WORD})"
        return body

    def strip(self, text: str) -> str:
        text = unicodedata.normalize("NFKC", text or "")
        return text if self.pattern is None else self.pattern.sub(" ", text)

    def mentions(self, text: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        if self.pattern is None or not text:
            return counts
        for m in self.pattern.finditer(unicodedata.normalize("NFKC", text)):
            bid = self.brand_of[m.lastgroup]
            counts[bid] = counts.get(bid, 0) + 1
        return counts
