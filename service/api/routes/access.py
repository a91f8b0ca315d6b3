"""The caller (``/me``, every role), and for admins only: API keys, the audit log and the right to erasure."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, Field

from service.api.deps import AdminDep, CallerDep, NamesDep, RuntimeDep, SessionDep, SettingsDep
from service.api.errors import found
from service.api.filters import PagingDep, named_scope, page_body
from service.api.routing import DictRouter
from service.api.schemas import (
    AuditPage,
    DbInt,
    ErasureResult,
    KeyCreated,
    KeyList,
    KeyPublic,
    Me,
)
from service.store import access, erasure
from service.store.tables import ApiKeyRow

router = DictRouter(tags=["access"])


class KeyIn(BaseModel):
    role: Literal["admin", "analyst", "viewer", "ingest"]
    name: str | None = Field(None, max_length=128)
    regions: list[str] = Field(
        default_factory=list, description="Data scope: only these regions (empty: all)."
    )
    brands: list[str] = Field(
        default_factory=list, description="Data scope: only these brands (empty: all)."
    )


class ScopeIn(BaseModel):
    regions: list[str] = Field(default_factory=list)
    brands: list[str] = Field(default_factory=list)


@router.get(
    "/me",
    response_model=Me,
    summary="The caller: the key's role and data scope (what the dashboard shows and offers)",
)
def me(caller: CallerDep, settings: SettingsDep) -> dict[str, Any]:
    return {
        "id": caller.id,
        "role": caller.role,
        "auth": settings.api.auth,
        "regions": list(caller.regions) if caller.regions is not None else None,
        "brands": list(caller.brands) if caller.brands is not None else None,
    }


@router.post(
    "/keys",
    response_model=KeyCreated,
    status_code=201,
    summary="Create an API key (its text is shown once, in this answer)",
)
def create_key(
    body: KeyIn, session: SessionDep, caller: AdminDep, names: NamesDep
) -> dict[str, Any]:
    body = named_scope(body, names, session)
    row, text = access.create_key(
        session,
        role=body.role,
        actor=caller.id,
        name=body.name,
        regions=body.regions,
        brands=body.brands,
    )
    return {**access.key_dict(row), "key": text}


@router.get(
    "/keys",
    response_model=KeyList,
    summary="API keys (prefixes, roles, scopes; never their secrets)",
)
def list_keys(session: SessionDep, caller: AdminDep) -> dict[str, Any]:
    return {"keys": [access.key_dict(r) for r in access.list_keys(session)]}


def _key(session, key_id: int) -> ApiKeyRow:
    return found(access.get_key(session, key_id=key_id), f"key {key_id}")


@router.patch(
    "/keys/{key_id}",
    response_model=KeyPublic,
    summary="Change a key's data scope",
)
def scope_key(
    key_id: DbInt, body: ScopeIn, session: SessionDep, caller: AdminDep, names: NamesDep
) -> dict[str, Any]:
    body = named_scope(body, names, session)
    return access.key_dict(
        access.set_scope(
            session,
            _key(session, key_id),
            actor=caller.id,
            regions=body.regions,
            brands=body.brands,
        )
    )


@router.delete(
    "/keys/{key_id}",
    response_model=KeyPublic,
    summary="Revoke a key (it stops working at once)",
)
def revoke_key(key_id: DbInt, session: SessionDep, caller: AdminDep) -> dict[str, Any]:
    return access.key_dict(access.revoke_key(session, _key(session, key_id), actor=caller.id))


@router.get(
    "/audit",
    response_model=AuditPage,
    summary="The audit log, newest first",
)
def audit_log(
    session: SessionDep,
    caller: AdminDep,
    paging: PagingDep,
    action: Annotated[
        list[str], Query(description="e.g. key.create, alert.resolved, erasure")
    ] = [],
    actor: Annotated[list[str], Query()] = [],
) -> dict[str, Any]:
    page = access.audit_entries(
        session, actions=action, actors=actor, offset=paging.offset, limit=paging.limit
    )
    return page_body("entries", page, access.audit_dict)


class ErasureIn(BaseModel):
    author: str = Field(
        min_length=1,
        max_length=256,
        description="The author's identifier as it was sent at ingest (hashed here, never stored).",
    )


@router.post(
    "/erasure",
    response_model=ErasureResult,
    summary="Right to erasure: delete one author's items, scores and embeddings (audited)",
)
def erase(
    body: ErasureIn, session: SessionDep, runtime: RuntimeDep, caller: AdminDep
) -> dict[str, Any]:
    # a POST body, not a path: the identifier must not land in access logs
    author_hash = runtime.author_hasher(body.author)
    counts = erasure.erase_author(session, author_hash=author_hash)
    access.audit(
        session,
        actor=caller.id,
        action="erasure",
        target=f"author:{author_hash[:12]}",
        details=counts,
    )
    session.commit()
    erasure.purge_freed(runtime.engine)
    return {"erased": counts}
