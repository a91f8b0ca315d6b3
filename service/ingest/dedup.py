"""Exact and near-duplicate fingerprints, and the policy that says when two items are one voice.

Near duplicates (the same complaint posted to two channels, a review re-posted with a typo
fixed) are found with MinHash over character 4-grams of the duplicate key, which works for
Chinese as for English, and locality-sensitive hashing in bands: two texts that share a
band key are candidates, confirmed when their estimated Jaccard similarity reaches the
threshold. The band keys are stored, so candidate look-up is an indexed query.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from service.config import IngestSettings
from service.ingest.normalize import dedup_key

NUM_PERM = 128
BANDS = 32
ROWS = NUM_PERM // BANDS  # candidates from a Jaccard of about (1/32)^(1/4) = 0.42 upward
SHINGLE = 4
MIN_KEY_CHARS = 24  # shorter texts ("great product") repeat by chance, not by copy


@dataclass(frozen=True)
class Fingerprint:
    signature: bytes  # NUM_PERM little-endian uint32
    bands: tuple[int, ...]  # signed 64-bit band keys


def fingerprint(text: str) -> Fingerprint | None:
    """MinHash fingerprint of a text, or None when it is too short to judge."""
    key = dedup_key(text)
    if len(key) < MIN_KEY_CHARS:
        return None
    shingles = {key[i : i + SHINGLE].encode("utf-8") for i in range(len(key) - SHINGLE + 1)}
    from datasketch import MinHash  # imported when first needed: it pulls in scipy.integrate

    mh = MinHash(num_perm=NUM_PERM, seed=1)
    mh.update_batch(list(shingles))
    sig = mh.hashvalues.astype("<u4")
    bands = []
    for b in range(BANDS):
        h = hashlib.blake2b(
            sig[b * ROWS : (b + 1) * ROWS].tobytes(), digest_size=8, person=b.to_bytes(2, "little")
        )
        bands.append(int.from_bytes(h.digest(), "little", signed=True))
    return Fingerprint(sig.tobytes(), tuple(bands))


def similarity(sig_a: bytes, sig_b: bytes) -> float:
    a = np.frombuffer(sig_a, dtype="<u4")
    b = np.frombuffer(sig_b, dtype="<u4")
    return float(np.mean(a == b))


@dataclass(frozen=True)
class Voice:
    """What the duplicate policy reads of a stored item."""

    brand: str
    author_hash: str | None
    created_at: datetime
    source: str = ""
    channel: str = ""


@dataclass(frozen=True)
class VoiceScope:
    """The stored items that could be the same voice as one of a batch's (``same_voice``):
    about one of ``brands``, and either by one of its known ``authors`` or, for a cross-post,
    posted between ``since`` and ``until`` with the author unknown on one side (a stored item
    of any author when ``any_author``: a batch item's own author is unknown). A superset that
    the store can filter on before the policy decides: a text repeated by a thousand other
    customers is not a candidate a thousand times over."""

    brands: frozenset[str]
    authors: frozenset[str]
    since: datetime | None
    until: datetime | None
    any_author: bool


@dataclass(frozen=True)
class DuplicatePolicy:
    """When a later item is the same voice as an earlier one with the same (or near-identical:
    MinHash Jaccard ≥ ``threshold``) text, and so is linked ``duplicate_of`` it and counted once.

    A duplicate is
    - the **same content from the same author** (both authors known and equal), about the same
      brand, whenever it was posted: one customer saying it twice is one voice; or
    - a **cross-post**: the same content about the same brand on another source or channel
      within ``cross_post_hours`` of the earlier one, when an author is unknown on either side,
      and only for texts of at least ``MIN_KEY_CHARS`` characters (shorter ones, "too salty",
      repeat by chance). Two items of one source and channel are two posts there: two voices.

    Never a duplicate: items about different brands, or items whose known authors differ
    (different customers writing the same sentence are different voices). ``link`` off stores
    every item as its own voice."""

    link: bool = True
    threshold: float = 0.8
    cross_post_hours: float = 72.0

    @classmethod
    def from_settings(cls, ingest: IngestSettings) -> DuplicatePolicy:
        return cls(
            link=ingest.link_duplicates,
            threshold=ingest.near_duplicate_threshold,
            cross_post_hours=ingest.cross_post_hours,
        )

    def same_voice(self, item: Voice, earlier: Voice, *, long_text: bool) -> bool:
        if not self.link or item.brand != earlier.brand:
            return False
        if item.author_hash and earlier.author_hash:
            return item.author_hash == earlier.author_hash
        if not long_text or (item.source, item.channel) == (earlier.source, earlier.channel):
            return False
        return (
            abs((item.created_at - earlier.created_at).total_seconds()) / 3600
            <= self.cross_post_hours
        )

    def scope(self, voices: list[tuple[Voice, bool]]) -> VoiceScope | None:
        """Which stored items could be the same voice as one of ``voices`` (each with whether
        its text is long enough to cross-post); None: none could (linking is off)."""
        if not self.link or not voices:
            return None
        long_times = [v.created_at for v, long_text in voices if long_text]
        hours = timedelta(hours=self.cross_post_hours)
        return VoiceScope(
            brands=frozenset(v.brand for v, _ in voices),
            authors=frozenset(v.author_hash for v, _ in voices if v.author_hash),
            since=min(long_times) - hours if long_times else None,
            until=max(long_times) + hours if long_times else None,
            any_author=any(not v.author_hash for v, long_text in voices if long_text),
        )

    def near_identical(self, mine: Fingerprint, theirs: dict[int, bytes]) -> set[int]:
        """Of stored signatures (id → MinHash), the ids whose estimated Jaccard similarity to
        ``mine`` reaches ``threshold``; compared in one array operation (a text repeated
        thousands of times made a loop of Python calls quadratic)."""
        if not theirs:
            return set()
        ids = sorted(theirs)
        mat = np.frombuffer(b"".join(theirs[i] for i in ids), dtype="<u4").reshape(len(ids), -1)
        similar = (mat == np.frombuffer(mine.signature, dtype="<u4")).mean(axis=1)
        return {i for i, s in zip(ids, similar) if s >= self.threshold}

    def earliest_same_voice(
        self, me: Voice | None, found: list[int], voices: dict[int, Voice], *, long_text: bool
    ) -> int | None:
        """The first of ``found`` (earlier items with the same or a near-identical text, in id
        order) that is the same voice as ``me``; None: ``me`` is a voice of its own."""
        if me is None:
            return None
        return next(
            (
                i
                for i in found
                if i in voices and self.same_voice(me, voices[i], long_text=long_text)
            ),
            None,
        )
