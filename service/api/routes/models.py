"""Team models: train one on the team's labels (a background job), read its report, promote
it or roll back (``service/teach``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from service.api.deps import AdminDep, AnalystDep, ReaderDep, RuntimeDep, SessionDep
from service.api.errors import ApiError, found
from service.api.routing import DictRouter
from service.api.schemas import ModelList, ServingModel, TeamModelPublic, TrainingJob
from service.store import labels as store
from service.teach.service import TeachError, summary

router = DictRouter(tags=["models"])


class TrainIn(BaseModel):
    name: str | None = Field(
        None, description="Name of the new team model (default: team-<UTC time>)."
    )


class PromoteIn(BaseModel):
    force: bool = Field(
        False, description="Serve it even if its report is worse than the generic model's."
    )


def _promoted(session) -> str | None:
    """The name of the promoted team model (None: the generic model serves)."""
    key = store.promoted_key(session)
    return None if key is None else key[0]


@router.get(
    "/models",
    response_model=ModelList,
    summary="The generic model, the team models and which one scores new items",
)
def list_models(runtime: RuntimeDep, session: SessionDep, caller: ReaderDep) -> dict[str, Any]:
    serving = _promoted(session)
    models = [summary(r, serving=r.name == serving) for r in store.team_models(session)]
    for m in models:  # the list stays light: the per-aspect tables are in GET /v1/models/{name}
        m["report"] = {k: v for k, v in m["report"].items() if k != "aspects"} | (
            {"aspects": {k: v for k, v in m["report"]["aspects"].items() if k != "per_aspect"}}
            if "aspects" in m["report"]
            else {}
        )
    return {"serving": runtime.serving(), "models": models}


@router.post(
    "/models/train",
    response_model=TrainingJob,
    status_code=202,
    summary="Train a team model on the labels (background job)",
)
def train(
    body: TrainIn, runtime: RuntimeDep, session: SessionDep, caller: AnalystDep
) -> dict[str, Any]:
    if not store.labeled_ids(session):
        raise ApiError(409, "no labels yet: correct items or answer the labeling queue first")
    if body.name and store.team_model(session, name=body.name) is not None:
        raise ApiError(
            409,
            f"a team model named {body.name!r} exists",
            [{"field": "body.name", "message": "already taken"}],
        )
    return runtime.start_training(name=body.name, actor=caller.id)


@router.get(
    "/models/jobs/{job_id}",
    response_model=TrainingJob,
    summary="A training job's progress and outcome",
)
def job(job_id: str, runtime: RuntimeDep, caller: AnalystDep) -> dict[str, Any]:
    return found(runtime.jobs.get(job_id), f"training job {job_id} in this server process")


@router.get(
    "/models/{name}",
    response_model=TeamModelPublic,
    summary="A team model with its full evaluation report",
)
def get_model(name: str, session: SessionDep, caller: ReaderDep) -> dict[str, Any]:
    row = found(store.team_model(session, name=name), f"team model {name!r}")
    return summary(row, serving=name == _promoted(session))


@router.post(
    "/models/{name}/promote",
    response_model=ServingModel,
    summary="Score new items with this team model (`generic`: the generic one)",
)
def promote(name: str, body: PromoteIn, runtime: RuntimeDep, caller: AdminDep) -> dict[str, Any]:
    from service.nlp.registry import ModelError

    try:
        return runtime.promote_model(name, actor=caller.id, force=body.force)
    except KeyError:
        raise ApiError(404, f"no team model {name!r}") from None
    except (TeachError, ModelError) as exc:
        raise ApiError(409, str(exc)) from None


@router.post(
    "/models/rollback",
    response_model=ServingModel,
    summary="Stop serving the promoted team model (the one before it serves again)",
)
def rollback(runtime: RuntimeDep, caller: AdminDep) -> dict[str, Any]:
    return runtime.rollback_model(actor=caller.id)
