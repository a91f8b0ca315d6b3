"""Dependencies every route takes: the runtime, a session, the scorer and the caller.

Tests override these (``app.dependency_overrides``) rather than patching globals.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service.analytics.names import Names
from service.api.errors import ApiError
from service.api.readiness import Readiness
from service.config import Settings
from service.nlp.pipeline import Scorer
from service.runtime import Runtime
from service.store.access import lookup
from service.store.repo import FeedbackFilter


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    with runtime.sessions() as session:
        yield session


def get_names(runtime: RuntimeDep) -> Names:
    """Brands, aspects and regions by id, display name or alias (``service.analytics.names``)."""

    return runtime.names()


def get_scorer(runtime: RuntimeDep) -> Scorer:
    return runtime.api_scorer


def get_readiness(request: Request) -> Readiness:
    return request.app.state.readiness


@dataclass(frozen=True)
class Caller:
    """Who is calling and what data they may see. ``None`` scopes mean unrestricted."""

    id: str
    role: str
    regions: tuple[str, ...] | None = None
    brands: tuple[str, ...] | None = None

    def restrict(self, flt: FeedbackFilter) -> FeedbackFilter:
        """The filter narrowed to the caller's data scope (every read goes through this)."""
        out = flt
        for attr, allowed in (("regions", self.regions), ("brands", self.brands)):
            if allowed is None:
                continue
            asked = getattr(out, attr)
            kept = tuple(v for v in asked if v in allowed) if asked else allowed
            out = replace(out, **{attr: kept}) if kept else replace(out, nothing=True)
        if self.brands is not None:
            out = replace(out, brand_scope=self.brands)
        return out


_BEARER = HTTPBearer(auto_error=False, description="An API key: Authorization: Bearer rk_…")
_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The same key in an X-API-Key header."
)


def get_caller(
    request: Request,
    runtime: RuntimeDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)] = None,
    header_key: Annotated[str | None, Depends(_HEADER)] = None,
) -> Caller:
    """The single place where authentication and data scopes plug in: the API key of the
    request (``Authorization: Bearer rk_…`` or ``X-API-Key``) with its role and scope, rate
    limited per key. With ``api.auth`` off (a private sandbox), everyone is an admin.

    Unknown or revoked keys count against the client's address: once an address has spent its
    rate limit on them it gets 429 (with Retry-After) before any key it sends is looked up, a
    valid one included, so keys cannot be guessed at speed."""

    settings = runtime.settings
    limiter = request.app.state.limiter
    address = request.client.host if request.client else "-"
    if not settings.api.auth:
        caller = Caller(id="anonymous", role="admin")
    else:
        presented = bearer.credentials if bearer is not None else header_key
        if not presented:
            raise ApiError(
                401,
                "an API key is required: Authorization: Bearer rk_… (or X-API-Key)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        _refuse_when_limited(
            limiter.wait(_failed(address)), settings, "unknown keys from this address"
        )
        with runtime.sessions() as session:
            row = lookup(session, presented)
            if row is None:
                limiter.take(_failed(address))
                raise ApiError(
                    401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"}
                )
            regions, brands = json.loads(row.regions), json.loads(row.brands)
            caller = Caller(
                id=f"key:{row.prefix}",
                role=row.role,
                regions=tuple(regions) or None,
                brands=tuple(brands) or None,
            )
            request.state.key_prefix = row.prefix  # for the access log: the prefix, never the key
            _record_use(session, row)
    _refuse_when_limited(
        limiter.take(caller.id if settings.api.auth else address), settings, "requests"
    )
    return caller


def _failed(address: str) -> str:
    return f"failed-key:{address}"


def _refuse_when_limited(wait: float, settings: Settings, what: str) -> None:
    if wait:
        raise ApiError(
            429,
            f"rate limit of {settings.api.rate_limit_per_minute} {what} a minute reached",
            headers={"Retry-After": str(max(1, int(wait + 0.999)))},
        )


_log = logging.getLogger("radar.api")
_use_unrecorded = False  # logged once per process: a read-only store would log it on every request


def _record_use(session: Session, row) -> None:
    """Note when a key was last used (at most one write a minute per key), best effort: a
    database that cannot be written (read-only, full, locked) must not fail the request."""
    global _use_unrecorded
    now = datetime.now(UTC)
    if row.last_used_at is not None and now - row.last_used_at <= timedelta(minutes=1):
        return
    row.last_used_at = now
    try:
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        if not _use_unrecorded:
            _use_unrecorded = True
            from service.store.db import describe

            _log.warning(
                "cannot record when API keys are used (the request goes on): %s", describe(exc)
            )


def require(*roles: str):
    """A dependency that lets only ``roles`` through (403 for the others)."""

    def check(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
        if caller.role not in roles:
            raise ApiError(
                403,
                f"the {caller.role} role cannot do this (needs {' or '.join(roles)})",
                code="forbidden",
            )
        return caller

    return check


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
NamesDep = Annotated[Names, Depends(get_names)]
ScorerDep = Annotated[Scorer, Depends(get_scorer)]
ReadinessDep = Annotated[Readiness, Depends(get_readiness)]
CallerDep = Annotated[Caller, Depends(get_caller)]

# Role-checked callers: reading (every role but ingest), writing feedback (ingest too), and
# changing things (alerts, tracked phrases: analysts and admins), administering (admins).
ReaderDep = Annotated[Caller, Depends(require("admin", "analyst", "viewer"))]
WriterDep = Annotated[Caller, Depends(require("admin", "analyst", "ingest"))]
AnalystDep = Annotated[Caller, Depends(require("admin", "analyst"))]
AdminDep = Annotated[Caller, Depends(require("admin"))]
