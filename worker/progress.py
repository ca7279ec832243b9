"""A running job's line to the database: progress, heartbeats, and the cancel flag."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core import jobs
from core.db import session_scope
from core.progress import JobProgress
from core.settings import Settings
from core.tables import utcnow
from model.errors import Cancelled
from worker import health, shutdown

if TYPE_CHECKING:  # model.training imports torch; the worker loads it only inside a task
    from model.training import EpochReport

log = logging.getLogger("dyngen.worker")
T = TypeVar("T")
# A write that fails is tried again after 0.5, 1 and 2 s: a blip of the database costs an
# epoch a few seconds, never the job (the lease outlives the retries).
WRITE_ATTEMPTS = 4
FIRST_RETRY_SECONDS = 0.5


class Reporter:
    """Writes progress every epoch, keeps the lease alive, and tells the model when to stop."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        job_id: str,
        worker: str,
        started_at: datetime | None = None,
        *,
        attempt: int = 1,
    ) -> None:
        self.settings = settings
        self.attempt = attempt  # in every progress event, so a client sees a new attempt
        # the deadline counts from the job's first start, so a resumed attempt doesn't reset it
        self.deadline = _deadline(started_at, settings.job_timeout_seconds)
        self.timed_out = threading.Event()
        self.sessions = sessions
        self.job_id = job_id
        self.worker = worker
        self.cancelled = threading.Event()
        self.lease_lost = threading.Event()
        self._closed = threading.Event()
        self._checked_at = time.monotonic()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> Reporter:
        health.job_started()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        health.job_ended()

    def _retrying(self, what: str, action: Callable[[], T]) -> T | None:
        """`action`, retried with backoff on database errors; None if every attempt failed."""
        delay = FIRST_RETRY_SECONDS
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                return action()
            except SQLAlchemyError as err:
                if attempt == WRITE_ATTEMPTS:
                    log.warning("job %s: %s failed %d times (%s)", self.job_id, what, attempt, err)
                    return None
                log.info("job %s: %s failed (%s); retrying in %.1fs", self.job_id, what, err, delay)
                time.sleep(delay)
                delay *= 2
        return None

    def _beat(self) -> None:
        # Epochs can be longer than the lease; a thread keeps it alive between reports.
        while not self._closed.wait(self.settings.heartbeat_seconds):
            try:
                flag = self._retrying("heartbeat", self._heartbeat_once)
            except jobs.LeaseLost:
                log.warning("job %s: lease lost; stopping", self.job_id)
                self.lease_lost.set()
                return
            if flag:
                self.cancelled.set()

    def _heartbeat_once(self) -> bool:
        with session_scope(self.sessions) as session:
            flag = jobs.heartbeat(
                session=session,
                job_id=self.job_id,
                worker=self.worker,
                lease_seconds=self.settings.lease_seconds,
            )
        health.job_alive()
        return flag

    def _record_once(self, progress: JobProgress) -> bool:
        with session_scope(self.sessions) as session:
            flag = jobs.record_progress(
                session=session,
                job_id=self.job_id,
                worker=self.worker,
                progress=progress,
                lease_seconds=self.settings.lease_seconds,
            )
        health.job_alive()
        return flag

    def _write(self, progress: JobProgress) -> None:
        try:
            # A missed progress line is no reason to lose hours of training: after the
            # retries, training goes on and the next epoch writes again.
            flag = self._retrying("progress write", lambda: self._record_once(progress))
        except jobs.LeaseLost:
            self.lease_lost.set()
            raise
        if flag is None:
            return
        self._checked_at = time.monotonic()
        if flag:
            self.cancelled.set()

    def on_epoch(self, report: EpochReport) -> None:
        """Record one finished epoch (and learn, in the same round trip, of a cancel)."""
        self._write(JobProgress.after_epoch(report, self.attempt))

    def on_frames(self, done: int, total: int) -> None:
        """Record synthesis progress; stops the run if a cancel was asked for."""
        self._write(JobProgress.in_frames(done, total, self.attempt))
        if self.should_stop():
            raise Cancelled(f"stopped after {done} of {total} frames")

    def should_stop(self) -> bool:
        """True on a cancel, a lost lease, a shutdown or the job timeout; reads the DB so often."""
        if self.deadline is not None and utcnow() >= self.deadline:
            self.timed_out.set()
        if (
            self.cancelled.is_set()
            or self.lease_lost.is_set()
            or self.timed_out.is_set()
            or shutdown.requested()
        ):
            return True
        if time.monotonic() - self._checked_at >= self.settings.cancel_poll_seconds:
            self._checked_at = time.monotonic()
            try:
                with session_scope(self.sessions) as session:
                    if jobs.is_cancel_requested(session=session, job_id=self.job_id):
                        self.cancelled.set()
            except SQLAlchemyError as err:
                log.warning("job %s: could not read the cancel flag (%s)", self.job_id, err)
        return self.cancelled.is_set()


def _deadline(started_at: datetime | None, timeout: float) -> datetime | None:
    """When a job that started at `started_at` runs out of time; None without a limit."""
    if timeout <= 0:
        return None
    return (started_at or utcnow()) + timedelta(seconds=timeout)
