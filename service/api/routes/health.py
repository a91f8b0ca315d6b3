from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.exc import SQLAlchemyError

from service.api.deps import CallerDep, RuntimeDep, SessionDep
from service.api.schemas import Health
from service.nlp.registry import ModelError
from service.store import repo

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="Liveness and readiness")
def health(session: SessionDep, runtime: RuntimeDep, caller: CallerDep) -> Health:
    try:
        items, db = repo.count_feedback(session), "ok"
    except SQLAlchemyError:
        items, db = None, "unavailable"
    try:
        version = runtime.registry.pipeline_version(runtime.settings.scorer)
    except (ModelError, KeyError):
        version = None
    return Health(status="ok" if db == "ok" and version else "degraded", database=db,
                  model_version=version, items=items)
