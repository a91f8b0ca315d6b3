"""Names, not just ids: brands, aspects and regions as people write them.

Every filter (API query parameters, CLI options, the dashboard through the API, subscriptions,
key scopes) reads a brand, an aspect or a region through ``Names``:

- a **brand** is its id, display name or any alias of ``configs/competitors.yaml``, or a brand
  stored on items (a feed's own brand field), or ``ours`` (our brand) — case-insensitively;
- an **aspect** is its id or its display name in any language of the taxonomy, or an aspect
  stored on scored items (an earlier taxonomy's);
- a **region** is a region stored on items, case-insensitively.

A value none of these know raises ``UnknownName``, which names the field and lists the valid
values: the API answers 422 and the CLI exits with 2, never an empty answer to a misspelt
filter. An exact id costs no query; the store is only asked when a value is not one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import replace

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain import Competitors, Taxonomy
from service.store.repo import FeedbackFilter
from service.store.tables import AspectScoreRow, FeedbackRow

MAX_LISTED = 40


def _key(value: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


class UnknownName(ValueError):
    """A filter value that names nothing; ``field`` is what it filtered, ``valid`` what would."""

    def __init__(self, field: str, value: str, valid: Iterable[str]):
        self.field, self.value, self.valid = field, value, sorted(set(valid))
        listed = ", ".join(self.valid[:MAX_LISTED]) + (" …" if len(self.valid) > MAX_LISTED else "")
        super().__init__(
            f"unknown {field} {value!r}: valid values are {listed or '(none stored yet)'} "
            "(ids, display names and aliases, in any case)"
        )


class Names:
    def __init__(self, taxonomy: Taxonomy, competitors: Competitors):
        self.our_brand = competitors.our_brand
        self._brands: dict[str, str] = {}
        for b in competitors.brands:
            for name in (b.id, b.name, *b.aliases):
                self._brands.setdefault(_key(name), b.id)
        self._aspects: dict[str, str] = {}
        for a in taxonomy.aspects:
            for name in (a.id, *a.names.values()):
                self._aspects.setdefault(_key(name), a.id)
        self._brand_ids = {b.id for b in competitors.brands}
        self._aspect_ids = set(taxonomy.ids)

    # --- one value ---------------------------------------------------------------------------

    def brand(self, session: Session | None, value: str) -> str:
        found = self._brands.get(_key(value)) or self._stored(session, FeedbackRow.brand, value)
        if found is None and _key(value) == "ours":
            found = self.our_brand
        if found is None:
            raise UnknownName(
                "brand", value, [*self._brand_ids, *self._distinct(session, FeedbackRow.brand)]
            )
        return found

    def aspect(self, session: Session | None, value: str) -> str:
        found = self._aspects.get(_key(value)) or self._stored(
            session, AspectScoreRow.aspect, value
        )
        if found is None:
            raise UnknownName("aspect", value, self._aspect_ids)
        return found

    def region(self, session: Session | None, value: str) -> str:
        stored = self._stored(session, FeedbackRow.region, value)
        if stored is not None:
            return stored
        raise UnknownName("region", value, self._distinct(session, FeedbackRow.region))

    # --- many ---------------------------------------------------------------------------------

    def brands(self, session: Session | None, values: Iterable[str]) -> tuple[str, ...]:
        return _unique(self.brand(session, v) for v in values)

    def aspects(self, session: Session | None, values: Iterable[str]) -> tuple[str, ...]:
        return _unique(self.aspect(session, v) for v in values)

    def regions(self, session: Session | None, values: Iterable[str]) -> tuple[str, ...]:
        return _unique(self.region(session, v) for v in values)

    def filter(self, session: Session | None, flt: FeedbackFilter) -> FeedbackFilter:
        """``flt`` with its brands, aspects and regions resolved to stored ids."""
        return replace(
            flt,
            brands=self.brands(session, flt.brands),
            aspects=self.aspects(session, flt.aspects),
            regions=self.regions(session, flt.regions),
        )

    def scope(self, session: Session | None, **lists: Iterable[str] | None) -> dict:
        """A data scope's ``brands``, ``aspects`` and ``regions`` lists (an API key's, a
        subscription's), each value resolved as a filter's is; an unset list (None) stays unset.
        A region is checked against the stored ones once the store holds any: before the first
        item arrives, a key or a subscription may name a region as its data will carry it."""

        def region(session: Session | None, value: str) -> str:
            return self.region(session, value) if regions_stored else value

        regions_stored = "regions" in lists and self._any_region(session)  # looked up once
        one = {"brands": self.brand, "aspects": self.aspect, "regions": region}
        return {
            field: None if values is None else list(_unique(one[field](session, v) for v in values))
            for field, values in lists.items()
        }

    def scoped(self, session: Session | None, body: BaseModel) -> BaseModel:
        """``body`` (a key's or a subscription's fields) with the scope lists it sets resolved
        by ``scope``; the lists it leaves unset stay unset."""
        lists = {
            f: getattr(body, f)
            for f in ("brands", "aspects", "regions")
            if f in type(body).model_fields and getattr(body, f) is not None
        }
        return body.model_copy(update=self.scope(session, **lists))

    # --- the store ----------------------------------------------------------------------------

    @staticmethod
    def _any_region(session: Session | None) -> bool:
        """Whether any stored item carries a region."""
        if session is None:
            return False
        has = select(FeedbackRow.id).where(
            FeedbackRow.region.is_not(None), FeedbackRow.region != ""
        )
        return session.scalar(has.limit(1)) is not None

    @staticmethod
    def _stored(session: Session | None, column, value: str) -> str | None:
        """The stored value equal to ``value``, else the one equal to it case-insensitively."""
        if session is None:
            return None
        if session.scalar(select(column).where(column == value).limit(1)) is not None:
            return value
        key = _key(value)
        return next((v for v in Names._distinct(session, column) if _key(v) == key), None)

    @staticmethod
    def _distinct(session: Session | None, column) -> list[str]:
        if session is None:
            return []
        return [v for v in session.scalars(select(column).distinct()) if v]


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
