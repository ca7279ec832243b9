"""A running job's line to the database: progress, heartbeats, and the cancel flag."""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core import jobs
from core.db import session_scope
from core.settings import Settings
from model.errors import Cancelled

if TYPE_CHECKING:  # model.pipeline imports torch; the worker loads it only inside a task
    from model.pipeline import EpochReport

log = logging.getLogger("dyngen.worker")


def finite(value: float | None) -> float | None:
    """JSON (and PostgreSQL) have no NaN or infinity: those become null."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


class Reporter:
    """Writes progress every epoch, keeps the lease alive, and tells the model when to stop."""

    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], job_id: str, worker: str
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.job_id = job_id
        self.worker = worker
        self.cancelled = threading.Event()
        self.lease_lost = threading.Event()
        self._closed = threading.Event()
        self._checked_at = time.monotonic()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> Reporter:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._closed.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        # Epochs can be longer than the lease; a thread keeps it alive between reports.
        while not self._closed.wait(self.settings.heartbeat_seconds):
            try:
                with session_scope(self.sessions) as session:
                    flag = jobs.heartbeat(
                        session=session,
                        job_id=self.job_id,
                        worker=self.worker,
                        lease_seconds=self.settings.lease_seconds,
                    )
            except jobs.LeaseLost:
                log.warning("job %s: lease lost; stopping", self.job_id)
                self.lease_lost.set()
                return
            except SQLAlchemyError as err:
                log.warning("job %s: heartbeat failed (%s); retrying", self.job_id, err)
                continue
            if flag:
                self.cancelled.set()

    def _write(self, progress: dict[str, Any]) -> None:
        try:
            with session_scope(self.sessions) as session:
                flag = jobs.record_progress(
                    session=session,
                    job_id=self.job_id,
                    worker=self.worker,
                    progress=progress,
                    lease_seconds=self.settings.lease_seconds,
                )
        except jobs.LeaseLost:
            self.lease_lost.set()
            raise
        except SQLAlchemyError as err:
            # A missed progress line is no reason to lose hours of training.
            log.warning("job %s: could not record progress (%s)", self.job_id, err)
            return
        self._checked_at = time.monotonic()
        if flag:
            self.cancelled.set()

    def on_epoch(self, report: EpochReport) -> None:
        """Record one finished epoch (and learn, in the same round trip, of a cancel)."""
        self._write(
            {
                "epoch": report.epoch,
                "epochs": report.epochs,
                "fraction": report.epoch / max(report.epochs, 1),
                "loss": finite(report.loss),
                "eta_seconds": finite(report.eta_seconds),
                "mse": finite(report.mse),
                "psnr": finite(report.psnr),
                "seconds": finite(report.seconds),
            }
        )

    def on_frames(self, done: int, total: int) -> None:
        """Record synthesis progress; stops the run if a cancel was asked for."""
        self._write(
            {
                "epoch": None,
                "epochs": None,
                "fraction": done / max(total, 1),
                "loss": None,
                "eta_seconds": None,
                "frames": done,
                "of_frames": total,
            }
        )
        if self.should_stop():
            raise Cancelled(f"stopped after {done} of {total} frames")

    def should_stop(self) -> bool:
        """True once a cancel was asked for or the lease was lost; reads the DB at most so often."""
        if self.cancelled.is_set() or self.lease_lost.is_set():
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
