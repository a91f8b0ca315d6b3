"""Dependencies every route takes: the runtime, a session, the scorer and the caller.

Tests override these (``app.dependency_overrides``) rather than patching globals.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from service.config import Settings
from service.nlp.pipeline import Scorer
from service.runtime import Runtime
from service.store.repo import FeedbackFilter


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    with runtime.sessions() as session:
        yield session


def get_scorer(runtime: RuntimeDep) -> Scorer:
    return runtime.scorer


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
        return out


def get_caller() -> Caller:
    # The single place where authentication and data scopes plug in; open for now.
    return Caller(id="anonymous", role="admin")


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
ScorerDep = Annotated[Scorer, Depends(get_scorer)]
CallerDep = Annotated[Caller, Depends(get_caller)]
