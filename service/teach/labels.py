"""Labels in and out: one item's corrections, file imports and exports.

An import row names its item by ``id`` or by ``source`` + ``external_id`` and carries any of:

- ``sentiment``: negative | neutral | positive (also -1/0/1, neg/neu/pos);
- ``aspects``: the item's aspects as ``aspect[:sentiment]`` items, a JSON list or one string
  separated by ``;`` or ``,`` (``taste:negative; packaging``). By default the list is the
  item's complete set: every other taxonomy aspect is labeled absent (``partial`` off), as a
  labeling tool's export is. ``partial``: only what is listed is labeled;
- ``absent``: aspects labeled absent, in the same form (then only those are; ``radar labels
  export`` writes this column, so that re-importing an export changes nothing).

Each bad row gets one error naming the row and the field, and never stops the good rows; an
import is idempotent (a label replaces the one of the same item, target and aspect).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain import SENTIMENT_LABELS, Label, Taxonomy
from service.ingest.readers import RowError
from service.store import labels as store
from service.store.repo import existing_by_key
from service.store.tables import FeedbackRow

_SENTIMENT_ALIASES = {
    "neg": "negative",
    "neu": "neutral",
    "pos": "positive",
    "-1": "negative",
    "0": "neutral",
    "1": "positive",
    "negative": "negative",
    "neutral": "neutral",
    "positive": "positive",
}


class LabelError(ValueError):
    def __init__(self, field_name: str, reason: str):
        super().__init__(reason)
        self.field = field_name


def sentiment_value(raw, field_name: str = "sentiment") -> str:
    v = _SENTIMENT_ALIASES.get(str(raw).strip().lower())
    if v is None:
        raise LabelError(
            field_name, f"sentiment must be one of {', '.join(SENTIMENT_LABELS)}, not {raw!r}"
        )
    return v


def parse_aspects(raw, taxonomy: Taxonomy) -> list[tuple[str, str | None]]:
    """``[(aspect, sentiment or None)]`` from a list or a ``;``/``,``-separated string."""
    if raw is None:
        return []
    if isinstance(raw, str):
        s = raw.strip()
        if s.startswith("["):
            try:
                raw = json.loads(s)
            except json.JSONDecodeError as exc:
                raise LabelError("aspects", f"not a JSON list: {exc.msg}") from None
        else:
            raw = [p for p in s.replace(";", ",").split(",") if p.strip()]
    if not isinstance(raw, list):
        raise LabelError(
            "aspects", f"expected a list of aspect[:sentiment], got {type(raw).__name__}"
        )
    out = []
    for part in raw:
        if not isinstance(part, str):
            raise LabelError("aspects", f"expected aspect[:sentiment] strings, got {part!r}")
        aid, _, sent = part.strip().partition(":")
        aid = aid.strip()
        if aid not in taxonomy.ids:
            raise LabelError(
                "aspects", f"{aid!r} is not a taxonomy aspect ({', '.join(taxonomy.ids)})"
            )
        out.append((aid, sentiment_value(sent, "aspects") if sent.strip() else None))
    return out


def row_labels(record: dict, taxonomy: Taxonomy, *, partial: bool = False) -> list[Label]:
    labels: list[Label] = []
    sent = record.get("sentiment")
    if sent not in (None, ""):
        labels.append(Label(target="sentiment", value=sentiment_value(sent)))
    if "aspects" in record and record["aspects"] is not None:
        listed = parse_aspects(record["aspects"], taxonomy)
        present = {a for a, _ in listed}
        for aid, s in listed:
            labels.append(
                Label(target="aspect_sentiment", aspect=aid, value=s)
                if s
                else Label(target="aspect", aspect=aid, value="present")
            )
        if "absent" in record:  # explicit (an export's form): only those are absent
            for aid, _ in parse_aspects(record["absent"] or [], taxonomy):
                labels.append(Label(target="aspect", aspect=aid, value="absent"))
        elif not partial:
            labels.extend(
                Label(target="aspect", aspect=a, value="absent")
                for a in taxonomy.ids
                if a not in present
            )
    if not labels:
        raise LabelError("sentiment", "the row labels nothing: give sentiment and/or aspects")
    return labels


@dataclass
class ImportReport:
    rows: int = 0
    stored_rows: int = 0
    labels: int = 0
    errors: list[RowError] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "rows": self.rows,
            "stored_rows": self.stored_rows,
            "labels": self.labels,
            "rejected": len(self.errors),
        }


def _resolve(session: Session, records: list[tuple[int, dict]]) -> dict[int, int | RowError]:
    """Row number -> item id (or the error naming the row's key)."""
    out: dict[int, int | RowError] = {}
    by_key, by_id = {}, {}
    for row, rec in records:
        rid = rec.get("id")
        if rid not in (None, ""):
            try:
                by_id[row] = int(rid)
            except (TypeError, ValueError):
                out[row] = RowError(row, f"id must be an integer, not {rid!r}", ["id"])
        elif rec.get("source") and rec.get("external_id"):
            by_key[row] = (str(rec["source"]).strip().lower(), str(rec["external_id"]).strip())
        else:
            out[row] = RowError(row, "name the item by id, or by source and external_id", ["id"])
    if by_id:
        found = set(
            session.scalars(select(FeedbackRow.id).where(FeedbackRow.id.in_(set(by_id.values()))))
        )
        for row, i in by_id.items():
            out[row] = i if i in found else RowError(row, f"no stored item with id {i}", ["id"])
    if by_key:
        found = existing_by_key(session, keys=list(by_key.values()))
        for row, key in by_key.items():
            e = found.get(key)
            out[row] = (
                e.id
                if e
                else RowError(
                    row,
                    f"no stored item from source {key[0]!r} with external_id {key[1]!r}",
                    ["external_id"],
                    external_id=key[1],
                )
            )
    return out


def import_labels(
    sessions,
    records: Iterable[tuple[int, dict | RowError]],
    *,
    taxonomy: Taxonomy,
    actor: str,
    now: datetime,
    partial: bool = False,
    chunk: int = 500,
    on_chunk=None,
) -> ImportReport:
    """Store the labels of every good row (one transaction per chunk: an interruption keeps what
    was committed, and a rerun replaces rather than duplicates)."""
    report = ImportReport()
    batch: list[tuple[int, dict]] = []

    def flush():
        if not batch:
            return
        with sessions() as s:
            ids = _resolve(s, batch)
            for row, rec in batch:
                target = ids[row]
                if isinstance(target, RowError):
                    report.errors.append(target)
                    continue
                try:
                    labels = row_labels(rec, taxonomy, partial=partial)
                except LabelError as exc:
                    report.errors.append(RowError(row, str(exc), [exc.field]))
                    continue
                except ValidationError as exc:
                    report.errors.append(RowError(row, exc.errors()[0]["msg"], ["aspects"]))
                    continue
                report.labels += store.put_labels(
                    s, feedback_id=target, labels=labels, source="import", actor=actor, now=now
                )
                report.stored_rows += 1
            s.commit()
        if on_chunk is not None:
            on_chunk(len(batch))
        batch.clear()

    for row, rec in records:
        report.rows += 1
        if isinstance(rec, RowError):
            report.errors.append(rec)
            continue
        batch.append((row, rec))
        if len(batch) >= chunk:
            flush()
    flush()
    return report


def export_rows(session: Session) -> Iterable[dict]:
    """One row per labeled item, in the import format (re-importing it changes nothing)."""
    for item in store.labeled_items(session):
        row = session.get(FeedbackRow, item.id)
        aspects = [
            f"{a}:{item.aspect_sentiments[a]}" if a in item.aspect_sentiments else a
            for a, v in sorted(item.aspects.items())
            if v == "present"
        ]
        absent = sorted(a for a, v in item.aspects.items() if v == "absent")
        yield {
            "id": item.id,
            "source": row.source,
            "external_id": row.external_id,
            "sentiment": item.sentiment,
            "aspects": aspects,
            "absent": absent,
            "updated_at": item.updated_at.isoformat(),
        }
