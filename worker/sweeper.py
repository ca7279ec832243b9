"""The lease sweeper: a thread in every worker that re-sends the jobs nobody is running.

The database is the truth about jobs and the broker may lose messages (a Redis restart
without its data, a worker killed before it acknowledged). Every `sweep_seconds`, each
worker looks for jobs that are queued or whose lease ran out, and sends each one again at
most once per `lease_seconds`; the lease makes a duplicate message harmless (the worker that
takes over a job whose lease ran out counts the loss: past `max_attempts` the job fails
`worker_lost` instead of running again). The sweeper also deletes staged
uploads whose API process died mid-stream, Idempotency-Keys past their time to live and,
every `orphan_check_seconds`, stored files without rows.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from core import jobs
from core.db import session_factory, session_scope
from core.idempotency import purge_expired_keys
from core.orphans import sweep_orphans
from core.queue import CeleryQueue, JobQueue
from core.settings import Settings
from core.storage import StorageUnavailable
from core.stores import open_store
from core.tables import utcnow

log = logging.getLogger("dyngen.worker")


def requeue_stale(settings: Settings, queue: JobQueue) -> int:
    """Send again each stale job not sent within the last lease; returns how many."""
    sessions = session_factory(settings.db_url, settings.connect_timeout)
    cutoff = utcnow() - timedelta(seconds=settings.lease_seconds)
    with session_scope(sessions) as session:
        stale = [(j.id, j.type) for j in jobs.stale_jobs(session=session, sent_before=cutoff)]
    sent = 0
    for job_id, job_type in stale:
        with session_scope(sessions) as session:
            if not jobs.mark_resent(session=session, job_id=job_id, sent_before=cutoff):
                continue  # another worker's sweeper got there first
        # The worker that takes it counts the loss of its last one (`jobs.reap_lost`); the
        # sweeper doesn't, so a live worker whose lease lapsed (a database blip) keeps its job
        # until someone actually takes it over.
        queue.enqueue(job_id, job_type)
        sent += 1
    return sent


class Sweeper:
    """Runs `requeue_stale` (and the staging clean-up) now and every `sweep_seconds`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._queue = CeleryQueue(settings)
        self._store = open_store(settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lease-sweeper", daemon=True)
        self._orphans_checked = float("-inf")

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (it ends within one sweep)."""
        self._stop.set()
        self._thread.join(timeout=10)

    def sweep(self) -> None:
        """One pass; a database or broker outage is logged and tried again next time."""
        try:
            count = requeue_stale(self.settings, self._queue)
        except Exception as err:
            log.warning("sweeper: could not re-send stale jobs (%s); will try again", err)
            count = 0
        if count:
            log.info("sweeper: re-sent %d job(s) that no worker was running", count)
        try:
            self._store.sweep_staging()
        except (OSError, StorageUnavailable) as err:
            log.warning("sweeper: could not clean the staging area (%s)", err)
        if time.monotonic() - self._orphans_checked >= self.settings.orphan_check_seconds:
            self._orphans_checked = time.monotonic()
            self.check_orphans()
        self.purge_idempotency_keys()

    def purge_idempotency_keys(self) -> None:
        """Delete Idempotency-Keys past their time to live; errors wait for next time."""
        sessions = session_factory(self.settings.db_url, self.settings.connect_timeout)
        try:
            with session_scope(sessions) as session:
                purge_expired_keys(
                    session=session, ttl_seconds=self.settings.idempotency_ttl_seconds
                )
        except Exception as err:
            log.warning("sweeper: could not purge expired idempotency keys (%s)", err)

    def check_orphans(self) -> None:
        """Delete stored files without rows (past the grace period); errors wait for next time."""
        sessions = session_factory(self.settings.db_url, self.settings.connect_timeout)
        try:
            with session_scope(sessions) as session:
                sweep_orphans(
                    session=session,
                    store=self._store,
                    grace_seconds=self.settings.orphan_grace_seconds,
                )
        except Exception as err:
            log.warning("sweeper: could not check for orphaned files (%s)", err)

    def _loop(self) -> None:
        while True:
            self.sweep()
            if self._stop.wait(self.settings.sweep_seconds):
                return
