"""Small factories: a finished training job with its model, made through core's functions."""

from __future__ import annotations

from pathlib import Path

from core import jobs, models
from core.artifacts import add_artifact
from core.db import session_factory, session_scope
from core.settings import Settings
from core.stores import open_store
from core.tables import Artifact


def finished_training(
    settings: Settings, tmp_path: Path, owner_id: str | None = None
) -> tuple[str, str, Artifact]:
    """(job id, model id, checkpoint artifact) of a train job that succeeded."""
    sessions = session_factory(settings.db_url)
    store = open_store(settings)
    source = tmp_path / "model.safetensors"
    source.write_bytes(bytes(range(256)) * 40)
    with session_scope(sessions) as s:
        job = jobs.create_job(
            session=s, owner_id=owner_id, type="train", config={"epochs": 1}, seed=0
        )
        jobs.claim_job(session=s, job_id=job.id, worker="w", lease_seconds=60)
        jobs.finish_job(session=s, job_id=job.id, worker="w", status="succeeded")
        artifact = add_artifact(
            session=s,
            store=store,
            job_id=job.id,
            owner_id=owner_id,
            kind="checkpoint",
            source=source,
            media_type="application/octet-stream",
        )
        model = models.add_model(session=s, job=job, checkpoint_id=artifact.id, metrics={})
        return job.id, model.id, artifact
