"""/v1/models: the models finished training jobs produced, and checkpoints imported."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.deps import CallerDep, ServicesDep, SessionDep
from api.model_import import IMPORT_BODY, import_model
from api.routes.common import Cursor, Limit, PathId, artifact_read
from api.schemas import ModelRead, Page
from core import models
from core.artifacts import get_artifact
from core.deletion import delete_files, delete_model
from core.tables import TrainedModel

router = APIRouter(prefix="/v1/models", tags=["models"])


def model_read(session: Session, model: TrainedModel) -> ModelRead:
    """The client's view of a model row."""
    checkpoint = get_artifact(
        session=session, owner_id=model.owner_id, artifact_id=model.checkpoint_id
    )
    return ModelRead(
        id=model.id,
        job_id=model.job_id,
        source="import" if model.source == "import" else "training",
        config=model.config,
        metrics=model.metrics,
        checkpoint=artifact_read(checkpoint),
        created_at=model.created_at,
    )


@router.get("")
def list_models(
    caller: CallerDep, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[ModelRead]:
    """The caller's models, newest first."""
    rows, next_cursor = models.list_models(
        session=session, owner_id=caller.owner_id, limit=limit, cursor=cursor
    )
    return Page[ModelRead](items=[model_read(session, m) for m in rows], next_cursor=next_cursor)


@router.post("", status_code=201, openapi_extra=IMPORT_BODY)
async def post_model(
    request: Request, caller: CallerDep, services: ServicesDep, session: SessionDep
) -> ModelRead:
    """Import a checkpoint written by `dyngen train` (`.safetensors`, checked, never unpickled)."""
    model = await import_model(request, caller.owner_id, services, session)
    return await run_in_threadpool(model_read, session, model)


@router.get("/{model_id}")
def get_model(model_id: PathId, caller: CallerDep, session: SessionDep) -> ModelRead:
    """One model and its checkpoint artifact."""
    model = models.get_model(session=session, owner_id=caller.owner_id, model_id=model_id)
    return model_read(session, model)


@router.delete("/{model_id}", status_code=204, response_class=Response)
def remove_model(
    model_id: PathId, caller: CallerDep, services: ServicesDep, session: SessionDep
) -> Response:
    """Delete a model and its checkpoint (409 `model_in_use` while a synthesis job uses it)."""
    keys = delete_model(session=session, owner_id=caller.owner_id, model_id=model_id)
    session.commit()
    delete_files(services.store, keys)
    return Response(status_code=204)
