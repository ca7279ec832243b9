"""Publishing a running training's intermediate checkpoints on its job."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core import checkpoints, jobs
from core.artifacts import Publication
from core.db import session_scope
from core.settings import Settings
from core.storage import Store
from core.tables import Job

log = logging.getLogger("dyngen.worker")


class CheckpointPublisher:
    """Moves each checkpoint file into the store as an artifact of the job (file and row
    together, under the job's lease) and drops the ones older than the newest few."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        store: Store,
        job: Job,
        worker: str,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.store = store
        self.job = job
        self.worker = worker

    def __call__(self, path: Path, epoch: int) -> None:
        """Publish the checkpoint of `epoch`; a database blip skips it (training goes on)."""
        try:
            stale = self._publish(path, epoch)
        except SQLAlchemyError as err:
            log.warning("job %s: epoch %d's checkpoint not published (%s)", self.job.id, epoch, err)
            path.unlink(missing_ok=True)
            return
        for key in stale:
            self.store.discard(key)  # and, locally, its artifacts/<id>/ folder
        log.info("job %s: checkpoint of epoch %d published", self.job.id, epoch)

    def _publish(self, path: Path, epoch: int) -> list[str]:
        with Publication(self.store) as publication, session_scope(self.sessions) as session:
            # proves (and renews) the lease in this transaction: LeaseLost stops the run
            jobs.heartbeat(
                session=session,
                job_id=self.job.id,
                worker=self.worker,
                lease_seconds=self.settings.lease_seconds,
            )
            artifact = publication.add(
                session=session,
                job_id=self.job.id,
                owner_id=self.job.owner_id,
                kind=checkpoints.KIND,
                source=path,
                media_type="application/octet-stream",
            )
            artifact.epoch = epoch
            return checkpoints.prune(
                session=session, job_id=self.job.id, keep=self.settings.keep_checkpoints
            )
