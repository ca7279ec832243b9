"""/v1/models: the models finished training jobs produced."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from api.deps import CallerDep, SessionDep
from api.routes.common import Cursor, Limit, PathId, artifact_read
from api.schemas import ModelRead, Page
from core import models
from core.artifacts import get_artifact
from core.tables import TrainedModel

router = APIRouter(prefix="/v1/models", tags=["models"])


def _model_read(session: Session, model: TrainedModel) -> ModelRead:
    checkpoint = get_artifact(
        session=session, owner_id=model.owner_id, artifact_id=model.checkpoint_id
    )
    return ModelRead(
        id=model.id,
        job_id=model.job_id,
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
    return Page[ModelRead](items=[_model_read(session, m) for m in rows], next_cursor=next_cursor)


@router.get("/{model_id}")
def get_model(model_id: PathId, caller: CallerDep, session: SessionDep) -> ModelRead:
    """One model and its checkpoint artifact."""
    model = models.get_model(session=session, owner_id=caller.owner_id, model_id=model_id)
    return _model_read(session, model)
