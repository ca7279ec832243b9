"""Files jobs produced: moved into the store, recorded with size and sha256."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import NotFound
from core.ids import new_id
from core.query import owned
from core.storage import ArtifactStore
from core.tables import Artifact


def add_artifact(
    *,
    session: Session,
    store: ArtifactStore,
    job_id: str,
    owner_id: str | None,
    kind: str,
    source: Path,
    media_type: str,
) -> Artifact:
    """Move `source` into the store and record it."""
    artifact_id = new_id("art")
    key = f"artifacts/{artifact_id}/{source.name}"
    size, sha256 = store.adopt(source, key)
    artifact = Artifact(
        id=artifact_id,
        owner_id=owner_id,
        job_id=job_id,
        kind=kind,
        filename=source.name,
        media_type=media_type,
        storage_key=key,
        bytes=size,
        sha256=sha256,
    )
    session.add(artifact)
    session.flush()
    return artifact


def get_artifact(*, session: Session, owner_id: str | None, artifact_id: str) -> Artifact:
    """The caller's artifact, or NotFound."""
    stmt = select(Artifact).where(Artifact.id == artifact_id, owned(Artifact.owner_id, owner_id))
    artifact = session.scalar(stmt)
    if artifact is None:
        raise NotFound("artifact", artifact_id)
    return artifact


def job_artifacts(*, session: Session, job_ids: list[str]) -> dict[str, list[Artifact]]:
    """Each job's artifacts, in the order they were written."""
    found: dict[str, list[Artifact]] = {job_id: [] for job_id in job_ids}
    if job_ids:
        stmt = select(Artifact).where(Artifact.job_id.in_(job_ids)).order_by(Artifact.id)
        for artifact in session.scalars(stmt):
            found[artifact.job_id].append(artifact)
    return found
