"""Deleting finished jobs and models: rows first, in one transaction, then their files.

The caller commits the rows' removal and only then deletes the storage keys these functions
return: a failed commit loses nothing, and a crash between the commit and the deletes leaves
files without rows, which the orphan check (core/orphans.py) removes after its grace period.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound
from core.job_states import ACTIVE, TERMINAL, JobType
from core.query import owned
from core.storage import Store
from core.tables import Artifact, Job, JobEvent, TrainedModel


def delete_job(*, session: Session, owner_id: str | None, job_id: str) -> list[str]:
    """Remove a finished job's row, history and artifacts; returns the keys of their files.

    A training job's model (and its checkpoint) stays: it is deleted on its own.
    """
    stmt = select(Job).where(Job.id == job_id, owned(Job.owner_id, owner_id))
    job = session.scalar(stmt.with_for_update())
    if job is None:
        raise NotFound("job", job_id)
    if job.status not in TERMINAL:
        raise Conflict(
            f"job {job_id} is {job.status}; cancel it and delete it once it has ended",
            code="job_not_finished",
            details={"status": job.status},
        )
    _detach_model(session, job_id)
    artifacts = list(session.scalars(select(Artifact).where(Artifact.job_id == job_id)))
    session.execute(delete(JobEvent).where(JobEvent.job_id == job_id))
    session.execute(delete(Artifact).where(Artifact.job_id == job_id))
    session.delete(job)
    session.flush()
    return [a.storage_key for a in artifacts]


def _detach_model(session: Session, job_id: str) -> None:
    """The job's model and its checkpoint no longer name the job (they outlive it)."""
    # locked: a deletion of the model meanwhile is waited for, and then seen
    stmt = select(TrainedModel).where(TrainedModel.job_id == job_id).with_for_update()
    model = session.scalar(stmt)
    if model is None:
        return
    model.job_id = None
    session.execute(
        update(Artifact)
        .where(Artifact.id == model.checkpoint_id)
        .values(job_id=None)
        .execution_options(synchronize_session=False)
    )
    session.flush()


def delete_model(*, session: Session, owner_id: str | None, model_id: str) -> list[str]:
    """Remove a model and its checkpoint's row unless an unfinished synthesis uses it;
    returns the checkpoint's storage key."""
    stmt = select(TrainedModel).where(
        TrainedModel.id == model_id, owned(TrainedModel.owner_id, owner_id)
    )
    # the row lock orders this against a synthesis job being created from the model
    # (`models.usable_model` reads it FOR SHARE): that one either sees it gone or is seen here
    model = session.scalar(stmt.with_for_update())
    if model is None:
        raise NotFound("model", model_id)
    user = session.scalar(
        select(Job)
        .where(Job.type == JobType.SYNTHESIZE, Job.model_id == model_id, Job.status.in_(ACTIVE))
        .limit(1)
    )
    if user is not None:
        raise Conflict(
            f"model {model_id} is used by job {user.id}, which is {user.status}",
            code="model_in_use",
            details={"job_id": user.id},
        )
    checkpoint = session.get_one(Artifact, model.checkpoint_id)
    session.delete(model)
    session.flush()
    session.delete(checkpoint)
    session.flush()
    return [checkpoint.storage_key]


def delete_files(store: Store, keys: list[str]) -> None:
    """Delete committed-away files (and, locally, the artifact folders they leave empty)."""
    for key in keys:
        store.discard(key)
