"""Intermediate checkpoints: what a training job publishes while it runs, and keeps if stopped."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Invalid, NotFound
from core.job_states import JobStatus, JobType
from core.query import owned
from core.tables import Artifact, Job, TrainedModel

KIND = "intermediate_checkpoint"


def job_checkpoints(*, session: Session, job_id: str) -> list[Artifact]:
    """A training job's intermediate checkpoints, newest epoch first."""
    stmt = (
        select(Artifact)
        .where(Artifact.job_id == job_id, Artifact.kind == KIND)
        .order_by(Artifact.epoch.desc(), Artifact.id.desc())
    )
    return list(session.scalars(stmt))


def prune(*, session: Session, job_id: str, keep: int) -> list[str]:
    """Delete the rows of all but the newest `keep` checkpoints; their storage keys, whose
    files the caller deletes once this commits (a file briefly without its row is what the
    orphan sweeper clears; a row without its file never exists)."""
    stale = job_checkpoints(session=session, job_id=job_id)[keep:]
    for artifact in stale:
        session.delete(artifact)
    session.flush()
    return [artifact.storage_key for artifact in stale]


def keeps_checkpoint(job: Job) -> bool:
    """A training that was cancelled or timed out keeps its newest checkpoint as its model."""
    stopped = job.status == JobStatus.CANCELLED or job.error_code == "job_timeout"
    return job.type == JobType.TRAIN and stopped


def keep_last(*, session: Session, job: Job) -> TrainedModel | None:
    """A stopped training job's newest checkpoint as its model (sampled like a finished one);
    None when it wrote none."""
    newest = job_checkpoints(session=session, job_id=job.id)[:1]
    if not newest or job.model_id is None:
        return None
    if session.get(TrainedModel, job.model_id) is not None:
        return None  # kept already (a job ends once; this guards a second path to the end)
    metrics: dict[str, Any] = dict(job.metrics or {}) | {
        "checkpoint_epoch": newest[0].epoch,
        "stopped": job.status,
    }
    model = TrainedModel(
        id=job.model_id,
        owner_id=job.owner_id,
        job_id=job.id,
        checkpoint_id=newest[0].id,
        config=job.config,
        metrics=metrics,
    )
    session.add(model)
    session.flush()
    return model


def checkpoint_epoch(artifacts: list[Artifact]) -> int | None:
    """The epoch of a job's newest intermediate checkpoint among its artifacts."""
    epochs = [a.epoch for a in artifacts if a.kind == KIND and a.epoch is not None]
    return max(epochs, default=None)


def usable_checkpoint(
    *, session: Session, owner_id: str | None, artifact_id: str
) -> tuple[Artifact, Job]:
    """The caller's intermediate checkpoint a synthesis job may name, and its training job."""
    artifact = session.scalar(
        select(Artifact).where(Artifact.id == artifact_id, owned(Artifact.owner_id, owner_id))
    )
    if artifact is None:
        raise NotFound("checkpoint", artifact_id)
    if artifact.kind != KIND:
        raise Invalid(
            f"checkpoint_id: artifact {artifact_id} is a {artifact.kind}, not an intermediate "
            "checkpoint (name a finished model by model_id)",
            code="not_a_checkpoint",
            details=[{"field": "checkpoint_id", "id": artifact_id}],
        )
    return artifact, session.get_one(Job, artifact.job_id)
