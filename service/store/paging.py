"""Offset paging, written once: a page of rows and the offset of the next page (None: the last)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    next_offset: int | None

    @classmethod
    def of(cls, rows: list[T], *, offset: int, limit: int) -> Page[T]:
        """The page of ``rows`` read from ``offset`` with ``limit + 1`` as their limit (the one
        row more says whether another page follows)."""
        return cls(list(rows[:limit]), offset + limit if len(rows) > limit else None)


def page(session: Session, stmt: Select, *, offset: int, limit: int) -> Page:
    """``limit`` rows of ``stmt`` (an ordered select of ORM rows) from ``offset``."""
    rows = list(session.scalars(stmt.offset(offset).limit(limit + 1)).all())
    return Page.of(rows, offset=offset, limit=limit)
