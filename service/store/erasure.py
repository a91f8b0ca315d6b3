"""Right to erasure: an author's items, and every copy of their words the store made.

``erase_author`` deletes the author's items (scores, aspects, embeddings, attributes, bands and
labels with them) and then removes what was derived from their texts:

- alert quotes and item ids (``store.alerts.scrub_quotes``); alert titles and event notes that
  quote them (a severe complaint's title quotes its evidence: the quote becomes "[erased]");
- theme keywords, current and in every stored window, that only their texts contained (a word
  another stored item still uses is not theirs alone and stays), and their ids in theme quotes;
  stored themes answers (``theme_cache``) are dropped and computed again when next asked;
- outbox messages (e-mail digests, notices, webhook bodies) that quote them: the stored copy is
  replaced by a notice of the erasure, and a message not yet sent is cancelled.

On SQLite the connection overwrites deleted content with zeros (``secure_delete``) and
``purge_freed`` checkpoints and truncates the write-ahead log, so the words are gone from the
database files too; on PostgreSQL ``purge_freed`` vacuums the tables involved (old row versions
are then free space that later writes reuse; ``VACUUM FULL`` rewrites the files).
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections.abc import Iterable

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from service.store import dirty
from service.store.alerts import scrub_quotes
from service.store.tables import (
    AlertEventRow,
    AlertRow,
    AspectScoreRow,
    AttributeRow,
    BandRow,
    FeedbackRow,
    LabelRow,
    OutboxRow,
    ResponseRow,
    ScoreRow,
    ThemeCacheRow,
    ThemeRow,
    ThemeSnapshotRow,
    TrackedPhraseRow,
)

ERASED = "[erased]"
_QUOTED = re.compile(r"“([^”]*)”|\"([^\"]*)\"")
_WINDOW = 20  # characters of an erased text that identify it in a composed message
_TABLES = (
    "feedback",
    "score",
    "aspect_score",
    "feedback_attribute",
    "feedback_band",
    "label",
    "alert",
    "alert_event",
    "theme",
    "theme_snapshot",
    "theme_cache",
    "outbox",
)


def erase_author(session: Session, *, author_hash: str) -> dict:
    """Delete every item of one author and the copies of their words; returns counts. The
    caller audits and commits, then calls ``purge_freed``."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            text("PRAGMA secure_delete = ON")
        )  # deleted cells are overwritten with zeros
    rows = session.execute(
        select(FeedbackRow.id, FeedbackRow.text).where(FeedbackRow.author_hash == author_hash)
    ).all()
    ids = [r[0] for r in rows]
    texts = [r[1] for r in rows]
    counts = {"items": len(ids), "alerts_scrubbed": 0, "themes_scrubbed": 0, "messages_redacted": 0}
    if not ids:
        return counts
    gone = set(ids)
    counts["alerts_scrubbed"] = scrub_quotes(session, gone=gone) + _scrub_alert_texts(
        session, texts
    )
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        dirty.mark_ids(session, chunk)
        dirty.mark_linked_to(session, chunk)
        session.execute(
            update(FeedbackRow).where(FeedbackRow.duplicate_of.in_(chunk)).values(duplicate_of=None)
        )
        for table in (LabelRow, ResponseRow, AspectScoreRow, ScoreRow, AttributeRow, BandRow):
            session.execute(delete(table).where(table.feedback_id.in_(chunk)))
        session.execute(delete(FeedbackRow).where(FeedbackRow.id.in_(chunk)))
    counts["themes_scrubbed"] = _scrub_themes(session, texts, gone)
    session.execute(delete(ThemeCacheRow))  # stored themes answers: recomputed on the next request
    counts["messages_redacted"] = _scrub_outbox(session, texts)
    return counts


def purge_freed(engine: Engine) -> None:
    """After an erasure is committed: leave no copy of the deleted rows in the database files."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in _TABLES:
            conn.exec_driver_sql(f"VACUUM {table}")


# --- what is derived from the texts ----------------------------------------------------------


def _fold(s: str) -> str:
    return " ".join(s.split()).casefold()


def _quotes_any(piece: str, texts: list[str], keep: set[str]) -> bool:
    p = _fold(piece).rstrip("…").strip()
    return len(p) >= 2 and p not in keep and any(p in t for t in texts)


def _redact_quotes(s: str | None, texts: list[str], keep: set[str]) -> str | None:
    """``s`` with every quoted part that comes from one of ``texts`` (and is not one of the
    team's tracked phrases, ``keep``) replaced by ``[erased]``."""
    if not s:
        return s

    def sub(m: re.Match) -> str:
        inner = m.group(1) if m.group(1) is not None else m.group(2)
        return m.group(0).replace(inner, ERASED) if _quotes_any(inner, texts, keep) else m.group(0)

    return _QUOTED.sub(sub, s)


def _scrub_alert_texts(session: Session, texts: list[str]) -> int:
    tracked = {
        _fold(p) for p in session.scalars(select(TrackedPhraseRow.phrase))
    }  # the team's words
    folded = [_fold(t) for t in texts]
    changed = 0
    for alert in session.scalars(select(AlertRow)):
        title = _redact_quotes(alert.title, folded, tracked)
        if title != alert.title:
            alert.title = title
            changed += 1
    for event in session.scalars(select(AlertEventRow).where(AlertEventRow.note.is_not(None))):
        note = _redact_quotes(event.note, folded, tracked)
        if note != event.note:
            event.note = note
    return changed


def _only_theirs(session: Session, words: Iterable[str], texts: list[str]) -> set[str]:
    """Of ``words``, those the erased texts contain and no remaining item does."""
    folded = [_fold(t) for t in texts]
    out = set()
    for w in {w for w in words if w}:
        if not any(w.casefold() in t for t in folded):
            continue
        still = session.scalar(
            select(FeedbackRow.id)
            .where(func.lower(FeedbackRow.text).contains(w.lower(), autoescape=True))
            .limit(1)
        )
        if still is None:
            out.add(w)
    return out


def _scrub_themes(session: Session, texts: list[str], gone: set[int]) -> int:
    themes = session.scalars(select(ThemeRow)).all()
    snaps = session.scalars(select(ThemeSnapshotRow)).all()
    words = {w for r in (*themes, *snaps) for w in json.loads(r.keywords or "[]")}
    theirs = _only_theirs(session, words, texts)
    changed = set()
    for r in (*themes, *snaps):
        kw = json.loads(r.keywords or "[]")
        kept = [w for w in kw if w not in theirs]
        if len(kept) != len(kw):
            r.keywords = json.dumps(kept, ensure_ascii=False)
            changed.add(r.id if isinstance(r, ThemeRow) else r.theme_id)
    for s in snaps:
        quotes = json.loads(s.quotes or "[]")
        kept = [q for q in quotes if q not in gone]
        if len(kept) != len(quotes):
            s.quotes = json.dumps(kept)
            changed.add(s.theme_id)
    return len(changed)


def message_text(payload: bytes) -> str:
    """The readable text of a stored message: every text part of an e-mail (decoded from its
    transfer encoding), or a JSON body with its escapes resolved."""
    raw = bytes(payload)
    try:
        return json.dumps(json.loads(raw.decode("utf-8")), ensure_ascii=False)
    except (UnicodeDecodeError, ValueError):
        pass
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts = [str(msg.get("Subject", ""))]
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            try:
                parts.append(part.get_content())
            except (LookupError, ValueError):
                parts.append(part.get_payload(decode=True).decode("utf-8", "replace"))
    return "\n".join(parts)


def _fragments(t: str) -> list[str]:
    f = _fold(t)
    if len(f) <= _WINDOW:
        return [f] if len(f) >= 4 else []
    return [f[i : i + _WINDOW] for i in range(0, len(f) - _WINDOW + 1, _WINDOW // 2)]


def _scrub_outbox(session: Session, texts: list[str]) -> int:
    frags = [f for t in texts for f in _fragments(t)]
    if not frags:
        return 0
    redacted = 0
    for row in session.scalars(select(OutboxRow)):
        body = _fold(message_text(row.payload) + "\n" + (row.subject or ""))
        if not any(f in body for f in frags):
            continue
        row.payload = json.dumps(
            {"erased": "this message quoted feedback erased under the right to erasure"}
        ).encode()
        row.subject = None
        if row.status in ("pending", "sending"):
            row.status, row.lease_until, row.claim_token = "cancelled", None, None
            row.last_error = "cancelled: it quoted feedback erased under the right to erasure"
        redacted += 1
    return redacted
