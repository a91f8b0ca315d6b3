"""Health: liveness and readiness without a key (probes), the details with one. The checks
live in ``service/api/readiness.py``."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.api import readiness as checks
from service.api.deps import CallerDep, ReadinessDep, SessionDep
from service.api.schemas import Health, Liveness, Ready
from service.store import repo

router = APIRouter(tags=["health"])


@router.get(
    "/health", response_model=Health, summary="Database, write access, schema and model, in detail"
)
def health(session: SessionDep, readiness: ReadinessDep, caller: CallerDep) -> Health:
    return Health(**checks.health(readiness, session, count_items=repo.count_feedback))


@router.get(
    "/health/live",
    response_model=Liveness,
    response_model_exclude_unset=True,
    summary="Liveness (no key): the process answers",
)
def live() -> dict[str, str]:
    return {"status": "alive"}


@router.get(
    "/health/ready",
    response_model=Ready,
    responses={503: {"model": Ready, "description": "Not ready"}},
    summary="Readiness (no key): database intact and writable, schema at head, model loadable; "
    "503 naming what failed",
)
def ready(readiness: ReadinessDep, response: Response) -> Ready:
    ok, body = checks.ready(readiness)
    if not ok:
        response.status_code = 503
    return Ready(**body)
