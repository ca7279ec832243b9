"""A job as clients see it, as plain data: what GET /v1/jobs/{id} returns and webhooks post."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from core.artifacts import job_artifacts
from core.checkpoints import checkpoint_epoch
from core.progress import row_progress
from core.tables import Artifact, Job


def artifact_json(artifact: Artifact) -> dict[str, Any]:
    """An artifact row as clients see it."""
    return {
        "id": artifact.id,
        "kind": artifact.kind,
        "filename": artifact.filename,
        "media_type": artifact.media_type,
        "bytes": artifact.bytes,
        "sha256": artifact.sha256,
        "url": f"/v1/artifacts/{artifact.id}",
        "epoch": artifact.epoch,
    }


def job_json(job: Job, artifacts: list[Artifact]) -> dict[str, Any]:
    """A job row and its artifacts as clients see them (datetimes still datetimes)."""
    error = None
    if job.error_code is not None:
        error = {"code": job.error_code, "message": job.error_message or ""}
    return {
        "id": job.id,
        "type": job.type,
        "status": job.status,
        "progress": row_progress(job),
        "metrics": job.metrics,
        "error": error,
        "artifacts": [artifact_json(a) for a in artifacts],
        "model_id": job.model_id,
        "checkpoint_id": job.checkpoint_id,
        "checkpoint_epoch": checkpoint_epoch(artifacts),
        "video_ids": job.video_ids,
        "mask": job.mask,
        "config": job.config,
        "seed": job.seed,
        "webhook": job.webhook,
        "cancel_requested": job.cancel_requested,
        "attempts": job.attempts,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        # as pydantic writes a UTC time in API responses
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def job_document(*, session: Session, job: Job) -> bytes:
    """The job's JSON body, as the API would answer GET /v1/jobs/{id} now."""
    artifacts = job_artifacts(session=session, job_ids=[job.id])[job.id]
    return json.dumps(job_json(job, artifacts), default=_iso, separators=(",", ":")).encode()
