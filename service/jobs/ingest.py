"""Ingest: validate → prepare → score → store, chunk by chunk, shared by the CLI and the API.

Each chunk is scored first and written in one transaction, so an interruption loses at
most the chunk in flight and a re-run redoes nothing that was stored: unchanged items
(same content hash, scored by the current model) are skipped. A write that fails is
bisected so that only the offending rows are rejected and every good row is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from service.domain import DataScope
from service.ingest.dedup import DuplicatePolicy
from service.ingest.prepare import PreparedItem, Preparer
from service.ingest.readers import RowError
from service.ingest.validate import Validator
from service.nlp.cancel import check
from service.nlp.pipeline import Scorer
from service.store import repo
from service.store.db import transaction

log = logging.getLogger(__name__)


class Status(StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"
    rejected = "rejected"


@dataclass
class ItemResult:
    row: int
    status: Status
    external_id: str | None = None
    id: int | None = None
    errors: list[dict] = field(default_factory=list)
    duplicate_of: int | None = None  # the earlier item this one is the same voice as


@dataclass
class IngestReport:
    results: list[ItemResult] = field(default_factory=list)
    keep_results: bool = True
    counts: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in Status})
    errors: list[RowError] = field(default_factory=list)
    rescored: int = 0
    linked: int = 0  # items written by this ingest that were linked as duplicates of an earlier one

    def add(self, results: list[ItemResult]) -> None:
        for r in results:
            self.counts[r.status.value] += 1
            self.linked += r.duplicate_of is not None and r.status in (
                Status.created,
                Status.updated,
            )
        if self.keep_results:
            self.results.extend(results)

    @property
    def stored(self) -> int:
        return self.counts["created"] + self.counts["updated"] + self.counts["unchanged"]


class WriteScope(DataScope):
    """What a scoped writer may write: items of these regions and brands (None: any). An item
    outside it, or a key stored outside it, is answered as a read would be: not found."""


NOT_IN_SCOPE = {
    "field": "external_id",
    "reason": "not found: no item with this source and external_id may be "
    "written with this key (its region or brand is outside the "
    "key's scope)",
}


def chunked(it: Iterable, size: int) -> Iterator[list]:
    buf = []
    for x in it:
        buf.append(x)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


@dataclass(kw_only=True, eq=False)
class IngestService:
    sessions: sessionmaker[Session]
    scorer: Scorer
    preparer: Preparer
    validator: Validator
    chunk_size: int = 512
    duplicates: DuplicatePolicy = DuplicatePolicy()
    scope: WriteScope | None = None

    def ingest(
        self,
        records: Iterable[tuple[int, dict[str, Any] | RowError]],
        *,
        keep_results: bool = True,
        on_chunk: Callable[[int], None] | None = None,
    ) -> IngestReport:
        report = IngestReport(keep_results=keep_results)

        for chunk in chunked(records, self.chunk_size):
            check()
            results = self.ingest_chunk(chunk)
            report.add(results)
            for r in results:
                if r.status is Status.rejected:
                    report.errors.append(
                        RowError(
                            r.row,
                            "; ".join(e["reason"] for e in r.errors),
                            [e["field"] for e in r.errors if e.get("field")],
                            r.external_id,
                        )
                    )
            if on_chunk:
                on_chunk(len(chunk))
        return report

    def ingest_chunk(self, chunk: list[tuple[int, dict[str, Any] | RowError]]) -> list[ItemResult]:
        results: dict[int, ItemResult] = {}
        prepared: dict[tuple[str, str], tuple[int, PreparedItem]] = {}
        superseded: dict[tuple[str, str], list[int]] = {}
        for pos, (row, rec) in enumerate(chunk):
            got = rec if isinstance(rec, RowError) else self.validator.validate(row, rec)
            if isinstance(got, RowError):
                results[pos] = ItemResult(
                    row,
                    Status.rejected,
                    got.external_id,
                    errors=[{"field": ",".join(got.fields) or None, "reason": got.reason}],
                )
                continue
            p = self.preparer.prepare(got)
            if self.scope is not None and not self.scope.admits(p.item.region, p.item.brand):
                results[pos] = ItemResult(
                    row, Status.rejected, p.item.external_id, errors=[NOT_IN_SCOPE]
                )
                continue
            if p.key in prepared:  # the same key twice in one chunk: the later row wins
                superseded.setdefault(p.key, []).append(prepared[p.key][0])
            prepared[p.key] = (pos, p)
            results[pos] = ItemResult(row, Status.created, p.item.external_id)

        if prepared:
            # a first look, outside any lock, only to spare the model items already stored as
            # they are; what each row is answered is decided again under the key lock in _write
            with self.sessions() as s:
                existing = repo.existing_by_key(s, keys=list(prepared))
            to_write: list[tuple[int, PreparedItem]] = []
            for key, (pos, p) in prepared.items():
                ex = existing.get(key)
                if ex is not None and not self._in_scope(ex):
                    results[pos].status, results[pos].errors = Status.rejected, [NOT_IN_SCOPE]
                elif ex is not None and self._is_current(ex, p):
                    results[pos].status, results[pos].id = Status.unchanged, ex.id
                else:
                    to_write.append((pos, p))
            if to_write:
                scored = self.scorer.score(
                    [p.item.text for _, p in to_write], [p.item.language for _, p in to_write]
                )
                self._write(to_write, scored, results)
        for key, positions in superseded.items():  # a later row of the batch was written instead
            winner = results[prepared[key][0]]
            for pos in positions:
                results[pos].status = Status.rejected
                results[pos].errors = [
                    {
                        "field": "external_id",
                        "reason": (
                            f"the same source and external_id as row {winner.row} of this batch, which was "
                            "written instead (one item per key and batch)"
                        ),
                    }
                ]
        return [results[i] for i in sorted(results)]

    def _in_scope(self, ex: repo.Existing) -> bool:
        return self.scope is None or self.scope.admits(ex.region, ex.brand)

    def _is_current(self, ex: repo.Existing, p: PreparedItem) -> bool:
        return ex.content_hash == p.content_hash and ex.model_version == self.scorer.version

    def _write(
        self, items: list[tuple[int, PreparedItem]], scored: list, results: dict[int, ItemResult]
    ) -> None:
        """Store scored items in one transaction. Created / updated / unchanged is decided here,
        from what the store holds once the keys are locked: of two requests that send the same
        new item at once, exactly one is answered "created"."""
        now = datetime.now(UTC)
        try:
            with transaction(self.sessions) as s:
                repo.lock_keys(s, keys=[p.key for _, p in items])
                existing = repo.existing_by_key(s, keys=[p.key for _, p in items])
                decided: dict[int, tuple[Status, int | None]] = {}
                write: list[tuple[int, PreparedItem, Any]] = []
                for (pos, p), sc in zip(items, scored):
                    ex = existing.get(p.key)
                    if ex is not None and not self._in_scope(
                        ex
                    ):  # stored meanwhile, outside the scope
                        decided[pos] = (Status.rejected, None)
                        continue
                    if ex is None:
                        decided[pos] = (Status.created, None)
                    elif self._is_current(ex, p):  # stored meanwhile by another writer, as is
                        decided[pos] = (Status.unchanged, ex.id)
                        continue
                    else:  # changed text, or the same text scored by another model version
                        decided[pos] = (
                            Status.unchanged
                            if ex.content_hash == p.content_hash
                            else Status.updated,
                            None,
                        )
                    write.append((pos, p, sc))
                ids = repo.upsert_items(
                    s, items=[p for _, p, _ in write], now=now, duplicates=self.duplicates
                )
                repo.save_scores(s, scores={ids[p.key]: sc for _, p, sc in write}, now=now)
                links = repo.duplicate_links(s, ids=list(ids.values()))
            for pos, p in items:
                status, id_ = decided[pos]
                if status is Status.rejected:
                    results[pos].status, results[pos].errors = status, [NOT_IN_SCOPE]
                    continue
                results[pos].status, results[pos].id = (
                    status,
                    id_ if id_ is not None else ids[p.key],
                )
                results[pos].duplicate_of = links.get(results[pos].id)
        except (IntegrityError, DataError, ProgrammingError) as exc:
            if len(items) == 1:
                pos, p = items[0]
                msg = str(getattr(exc, "orig", exc)).splitlines()[0]
                # logged: the error's class and code, never its message (it can quote the row)
                orig = getattr(exc, "orig", None) or exc
                code = (
                    getattr(orig, "sqlstate", None)
                    or getattr(orig, "sqlite_errorname", None)
                    or "-"
                )
                log.warning(
                    "row %s rejected by the database (%s %s)",
                    results[pos].row,
                    type(orig).__name__,
                    code,
                )
                results[pos].status = Status.rejected
                results[pos].errors = [
                    {"field": None, "reason": f"rejected by the database: {msg}"}
                ]
                return
            mid = len(items) // 2
            self._write(items[:mid], scored[:mid], results)
            self._write(items[mid:], scored[mid:], results)


def rescore(
    *,
    sessions: sessionmaker[Session],
    scorer: Scorer,
    chunk_size: int = 512,
    on_chunk: Callable[[int], None] | None = None,
) -> int:
    """Score every stored item whose score is missing or from another model version."""
    done, after = 0, 0
    while True:
        with sessions() as s:
            batch = repo.stale_items(
                s, model_version=scorer.version, after_id=after, limit=chunk_size
            )
        if not batch:
            return done
        scored = scorer.score([t for _, t, _ in batch], [lang for _, _, lang in batch])
        with transaction(sessions) as s:
            repo.save_scores(
                s, scores={i: sc for (i, _, _), sc in zip(batch, scored)}, now=datetime.now(UTC)
            )
        done += len(batch)
        after = batch[-1][0]
        if on_chunk:
            on_chunk(len(batch))
