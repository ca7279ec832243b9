"""Delivering job ids to workers: the Celery configuration both sides share, and the producer.

The broker only carries ids; the database says what a job is and whether it still needs running.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from celery import Celery
from kombu import Queue

from core.job_states import JobType
from core.settings import Settings

log = logging.getLogger("dyngen.queue")
TASK_NAMES: dict[str, str] = {kind: f"dyngen.{kind.value}" for kind in JobType}


class JobQueue(Protocol):
    """Where the API puts job ids (a seam: tests may record them instead)."""

    def enqueue(self, job_id: str, job_type: str) -> None:
        """Ask a worker to run the job."""

    def ping(self) -> None:
        """Raise unless the broker is reachable."""


def make_celery(settings: Settings) -> Celery:
    """A Celery app configured for dyngen's delivery guarantees."""
    app = Celery("dyngen", broker=settings.celery_broker_url, set_as_current=False)
    app.conf.update(
        task_default_queue=settings.queue_name,
        task_queues=[Queue(settings.queue_name)],
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        # A job is acknowledged only when it finished, and redelivered if its worker died;
        # the lease in the database makes running it twice impossible.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        # A worker whose broker restarts waits for it (forever), rather than exiting.
        broker_connection_max_retries=None,
        broker_connection_timeout=settings.connect_timeout,
        broker_transport_options=_transport_options(settings),
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
    )
    return app


def _transport_options(settings: Settings) -> dict[str, Any]:
    url = settings.celery_broker_url
    if url.startswith(("redis://", "rediss://")):
        # Long trainings outlive Redis' default one-hour visibility timeout, after which it
        # would redeliver a job that is still running; the lease would refuse it, but why churn.
        return {
            "visibility_timeout": 12 * 3600,
            "socket_connect_timeout": settings.connect_timeout,
            "socket_timeout": 30,
        }
    if url.startswith("sqla+sqlite"):
        # kombu passes these to create_engine: writers wait for SQLite's lock, not fail.
        return {"connect_args": {"timeout": 30}}
    return {}


class CeleryQueue:
    """The real producer: sends the job id as a Celery task message."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = make_celery(settings)

    def enqueue(self, job_id: str, job_type: str) -> None:
        """Publish the task; retries briefly, then raises if the broker is down."""
        try:
            self._send(job_id, job_type)
        except Exception as err:
            # kombu's SQL transport creates its queue row on first use in each process and
            # two processes can race to it; the loser's second try finds the row. A message
            # sent twice is harmless: the job's lease runs it once.
            log.warning("publishing job %s failed (%s); trying once more", job_id, err)
            time.sleep(0.2)
            self._send(job_id, job_type)

    def _send(self, job_id: str, job_type: str) -> None:
        self.app.send_task(
            TASK_NAMES[job_type], args=[job_id], queue=self.settings.queue_name, retry=True
        )

    def declare(self) -> None:
        """Create the queue on the broker now, before several processes race to do it."""
        with self.app.connection_for_write() as conn:
            Queue(self.settings.queue_name).bind(conn.default_channel).declare()

    def ping(self) -> None:
        """Open and close a broker connection."""
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=self.settings.connect_timeout)
