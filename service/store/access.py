"""API keys and the audit log.

A key reads ``rk_<prefix>_<secret>``: the 8-character prefix names it in lists and logs, the
32-byte random secret is shown once, at creation, and only its SHA-256 is stored (a secret
of that entropy needs no slow hash). Roles:

- ``admin``: everything, including keys, subscriptions and configuration;
- ``analyst``: read, write feedback, acknowledge and resolve alerts, track phrases;
- ``viewer``: read only;
- ``ingest``: write feedback only (pipelines), nothing to read.

A key may carry a data scope (regions, brands): every read through it is narrowed to that
scope (``Caller.restrict``), aggregates and alerts included.

The audit log records who did what to what and when, without personal data or secrets: key
creation and revocation, scope changes, subscription changes, deletions, alert state changes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from service.store.paging import Page, page
from service.store.tables import ApiKeyRow, AuditRow

ROLES = ("admin", "analyst", "viewer", "ingest")
READ_ROLES = ("admin", "analyst", "viewer")
WRITE_ROLES = ("admin", "analyst", "ingest")


class AccessError(ValueError):
    pass


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    session: Session,
    *,
    role: str,
    actor: str,
    name: str | None = None,
    regions: list[str] | None = None,
    brands: list[str] | None = None,
    now: datetime | None = None,
) -> tuple[ApiKeyRow, str]:
    """A new key and its full text (shown once; never stored)."""
    if role not in ROLES:
        raise AccessError(f"role {role!r} is not one of {', '.join(ROLES)}")
    now = now or datetime.now(UTC)
    while True:
        prefix = secrets.token_hex(4)
        if session.scalar(select(ApiKeyRow.id).where(ApiKeyRow.prefix == prefix)) is None:
            break
    secret = secrets.token_urlsafe(32)
    row = ApiKeyRow(
        prefix=prefix,
        secret_hash=_hash(secret),
        name=name,
        role=role,
        regions=json.dumps(sorted(set(regions or [])), ensure_ascii=False),
        brands=json.dumps(sorted(set(brands or [])), ensure_ascii=False),
        created_by=actor,
        created_at=now,
    )
    session.add(row)
    session.flush()
    audit(
        session,
        actor=actor,
        action="key.create",
        target=f"key:{prefix}",
        details={
            "role": role,
            "name": name,
            "regions": json.loads(row.regions),
            "brands": json.loads(row.brands),
        },
        now=now,
    )
    session.commit()
    return row, f"rk_{prefix}_{secret}"


def lookup(session: Session, presented: str) -> ApiKeyRow | None:
    """The active key a presented string is, or None (unknown, malformed or revoked)."""
    parts = presented.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != "rk" or not parts[1] or not parts[2]:
        return None
    row = session.scalars(select(ApiKeyRow).where(ApiKeyRow.prefix == parts[1])).first()
    if row is None or row.revoked_at is not None:
        return None
    return row if hmac.compare_digest(row.secret_hash, _hash(parts[2])) else None


def revoke_key(
    session: Session, row: ApiKeyRow, *, actor: str, now: datetime | None = None
) -> ApiKeyRow:
    if row.revoked_at is None:
        row.revoked_at = now or datetime.now(UTC)
        audit(
            session,
            actor=actor,
            action="key.revoke",
            target=f"key:{row.prefix}",
            now=row.revoked_at,
        )
        session.commit()
    return row


def set_scope(
    session: Session, row: ApiKeyRow, *, actor: str, regions: list[str], brands: list[str]
) -> ApiKeyRow:
    before = {"regions": json.loads(row.regions), "brands": json.loads(row.brands)}
    row.regions = json.dumps(sorted(set(regions)), ensure_ascii=False)
    row.brands = json.dumps(sorted(set(brands)), ensure_ascii=False)
    audit(
        session,
        actor=actor,
        action="key.scope",
        target=f"key:{row.prefix}",
        details={
            "before": before,
            "after": {"regions": json.loads(row.regions), "brands": json.loads(row.brands)},
        },
    )
    session.commit()
    return row


def list_keys(session: Session, *, active: bool = False) -> list[ApiKeyRow]:
    """Keys in id order (``active``: only those not revoked)."""
    stmt = select(ApiKeyRow).order_by(ApiKeyRow.id)
    if active:
        stmt = stmt.where(ApiKeyRow.revoked_at.is_(None))
    return list(session.scalars(stmt))


def get_key(session: Session, *, key_id: int) -> ApiKeyRow | None:
    return session.get(ApiKeyRow, key_id)


def find_key(session: Session, *, prefix_or_id: str) -> ApiKeyRow | None:
    """The key with this prefix, or (all digits) this id."""
    cond = ApiKeyRow.prefix == prefix_or_id
    if prefix_or_id.isdigit():
        cond = or_(cond, ApiKeyRow.id == int(prefix_or_id))
    return session.scalars(select(ApiKeyRow).where(cond)).first()


def active_keys_named(session: Session, *, name: str) -> list[ApiKeyRow]:
    return list(
        session.scalars(
            select(ApiKeyRow).where(ApiKeyRow.name == name, ApiKeyRow.revoked_at.is_(None))
        )
    )


def has_active_admin(session: Session) -> bool:
    return (
        session.scalar(
            select(ApiKeyRow.id).where(ApiKeyRow.role == "admin", ApiKeyRow.revoked_at.is_(None))
        )
        is not None
    )


def audit_entries(
    session: Session,
    *,
    actions: Sequence[str] = (),
    actors: Sequence[str] = (),
    offset: int = 0,
    limit: int,
) -> Page[AuditRow]:
    """Audit entries, newest first (``actions``, ``actors``: any of them)."""
    stmt = select(AuditRow).order_by(AuditRow.id.desc())
    if actions:
        stmt = stmt.where(AuditRow.action.in_(list(actions)))
    if actors:
        stmt = stmt.where(AuditRow.actor.in_(list(actors)))
    return page(session, stmt, offset=offset, limit=limit)


def key_dict(row: ApiKeyRow) -> dict:
    return {
        "id": row.id,
        "prefix": row.prefix,
        "name": row.name,
        "role": row.role,
        "regions": json.loads(row.regions),
        "brands": json.loads(row.brands),
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
    }


def audit(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    details: dict | None = None,
    now: datetime | None = None,
) -> AuditRow:
    """Add an audit entry to the session (committed with the change it records)."""
    row = AuditRow(
        at=now or datetime.now(UTC),
        actor=actor,
        action=action,
        target=target,
        details=json.dumps(details or {}, ensure_ascii=False, default=str),
    )
    session.add(row)
    return row


def audit_dict(row: AuditRow) -> dict:
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "actor": row.actor,
        "action": row.action,
        "target": row.target,
        "details": json.loads(row.details),
    }
