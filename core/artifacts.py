"""Files jobs produced: moved into the store, recorded with size and sha256."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import TracebackType

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import NotFound
from core.ids import new_id
from core.query import owned
from core.storage import StorageUnavailable, Store
from core.tables import Artifact


def add_artifact(
    *,
    session: Session,
    store: Store,
    job_id: str,
    owner_id: str | None,
    kind: str,
    source: Path,
    media_type: str,
) -> Artifact:
    """Move `source` into the store and record it."""
    artifact_id, key = _new_key(source)
    return _record(session, store, artifact_id, key, job_id, owner_id, kind, source, media_type)


def _new_key(source: Path) -> tuple[str, str]:
    """A new artifact id and the store key its file goes to."""
    artifact_id = new_id("art")
    return artifact_id, f"artifacts/{artifact_id}/{source.name}"


def _record(
    session: Session,
    store: Store,
    artifact_id: str,
    key: str,
    job_id: str,
    owner_id: str | None,
    kind: str,
    source: Path,
    media_type: str,
) -> Artifact:
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


class Publication:
    """A job's outputs moved into the store and recorded in one step: used around the
    session whose commit records them, so a failure anywhere before that commit ends (a move,
    a row, the commit itself) deletes every file it had moved and no file is left without
    its row."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.keys: list[str] = []

    def __enter__(self) -> Publication:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            for key in self.keys:
                # a store that is down now keeps the file: the orphan check deletes it later
                with contextlib.suppress(OSError, StorageUnavailable):
                    self.store.discard(key)

    def add(
        self,
        *,
        session: Session,
        job_id: str,
        owner_id: str | None,
        kind: str,
        source: Path,
        media_type: str,
    ) -> Artifact:
        """Move `source` into the store and record it (undone if the step fails)."""
        artifact_id, key = _new_key(source)
        self.keys.append(key)  # before the move: a move that fails half-way is undone too
        return _record(
            session, self.store, artifact_id, key, job_id, owner_id, kind, source, media_type
        )


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
            if artifact.job_id is not None:  # always, in a query by job
                found[artifact.job_id].append(artifact)
    return found
