"""Trained models: what a successful training job leaves for synthesis jobs to use."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound
from core.job_states import JobStatus, JobType
from core.query import owned, page
from core.tables import Job, TrainedModel


def add_model(
    *,
    session: Session,
    job: Job,
    checkpoint_id: str,
    metrics: dict[str, Any],
) -> TrainedModel:
    """The model row of a finished training job, under the id the job reserved."""
    assert job.model_id is not None, "a train job reserves its model id when created"
    model = TrainedModel(
        id=job.model_id,
        owner_id=job.owner_id,
        job_id=job.id,
        checkpoint_id=checkpoint_id,
        config=job.config,
        metrics=metrics,
    )
    session.add(model)
    session.flush()
    return model


def get_model(
    *, session: Session, owner_id: str | None, model_id: str, lock: bool = False
) -> TrainedModel:
    """The caller's model, or NotFound; `lock`: held FOR SHARE until the commit."""
    stmt = select(TrainedModel).where(
        TrainedModel.id == model_id, owned(TrainedModel.owner_id, owner_id)
    )
    model = session.scalar(stmt.with_for_update(read=True) if lock else stmt)
    if model is None:
        raise NotFound("model", model_id)
    return model


def usable_model(*, session: Session, owner_id: str | None, model_id: str) -> TrainedModel:
    """The model a synthesis job may name; Conflict while its training job hasn't succeeded.
    The row stays locked until the job is committed, so a deletion waits for it."""
    try:
        return get_model(session=session, owner_id=owner_id, model_id=model_id, lock=True)
    except NotFound:
        training = session.scalar(
            select(Job).where(
                Job.type == JobType.TRAIN, Job.model_id == model_id, owned(Job.owner_id, owner_id)
            )
        )
        if training is None:
            raise
        if training.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise Conflict(
                f"model {model_id} will never be ready: its training job {training.id} "
                f"{training.status}",
                code="model_unavailable",
                details={"job_id": training.id, "status": training.status},
            ) from None
        raise Conflict(
            f"model {model_id} isn't ready: its training job {training.id} "
            f"has status {training.status}",
            code="model_not_ready",
            details={"job_id": training.id, "status": training.status},
        ) from None


def list_models(
    *, session: Session, owner_id: str | None, limit: int, cursor: str | None = None
) -> tuple[list[TrainedModel], str | None]:
    """The caller's models, newest first."""
    stmt = select(TrainedModel).where(owned(TrainedModel.owner_id, owner_id))
    return page(session, stmt, TrainedModel.id, limit=limit, cursor=cursor)
