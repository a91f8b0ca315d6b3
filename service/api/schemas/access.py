"""The caller, API keys, the audit log and erasure (``/v1/me``, ``/v1/keys``, ...)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from service.api.schemas._base import ResponseModel


class Me(ResponseModel):
    id: str
    role: str
    auth: bool = Field(..., description="Whether the server requires API keys.")
    regions: list[str] | None = Field(..., description="Data scope (null: all).")
    brands: list[str] | None = Field(..., description="Data scope (null: all).")


class KeyPublic(ResponseModel):
    id: int
    prefix: str
    name: str | None
    role: str
    regions: list[str]
    brands: list[str]
    created_by: str
    created_at: str
    revoked_at: str | None
    last_used_at: str | None


class KeyCreated(KeyPublic):
    key: str = Field(..., description="The key's text: shown once, in this answer.")


class KeyList(ResponseModel):
    keys: list[KeyPublic]


class AuditEntry(ResponseModel):
    id: int
    at: str
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]


class AuditPage(ResponseModel):
    entries: list[AuditEntry]
    next_offset: int | None


class ErasureResult(ResponseModel):
    erased: dict[str, int] = Field(..., description="What was deleted or scrubbed, and how many.")
