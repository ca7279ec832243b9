"""The Celery app workers run: `celery -A worker.app worker --pool solo` (or `dyngen worker`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from celery.signals import (
    worker_init,
    worker_process_init,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)

from core.queue import make_celery
from core.settings import get_settings
from worker import shutdown, threads
from worker.health import HealthBeat

if TYPE_CHECKING:
    from worker.sweeper import Sweeper
    from worker.webhooks import Deliverer

log = logging.getLogger("dyngen.worker")

app = make_celery(get_settings())
# The tasks import model/ (and torch) only inside the task body, so a prefork parent never
# initialises CUDA before forking its children.
app.conf.include = ["worker.tasks"]
_sweepers: list[Sweeper] = []
_beats: list[HealthBeat] = []
_deliverers: list[Deliverer] = []


@worker_init.connect
def _choose_threads(sender: Any = None, **_kwargs: Any) -> None:
    """torch's threads per job: DYNGEN_WORKER_THREADS, or the cores over the concurrency."""
    threads.configure(get_settings().worker_threads, threads.processes_of(sender))


@worker_process_init.connect
def _apply_threads(**_kwargs: Any) -> None:
    """A prefork pool process sets them as it starts (a solo worker, before its first job)."""
    threads.apply()


@worker_ready.connect
def _start_sweeper(**_kwargs: Any) -> None:
    """Re-send jobs nobody runs (lost messages, dead workers), now and periodically."""
    from worker.sweeper import Sweeper

    threads.report()
    sweeper = Sweeper(get_settings())
    sweeper.start()
    _sweepers.append(sweeper)
    beat = HealthBeat(get_settings())
    beat.start()
    _beats.append(beat)
    _start_deliverer()


def _start_deliverer() -> None:
    """Post the webhook outbox's due deliveries, now and periodically."""
    from worker.webhooks import Deliverer

    deliverer = Deliverer(get_settings())
    deliverer.start()
    _deliverers.append(deliverer)


@worker_shutting_down.connect
def _interrupt_running_job(**_kwargs: Any) -> None:
    """Warm shutdown (SIGTERM): the running job saves its state and goes back to the queue."""
    shutdown.request()


@worker_shutdown.connect
def _stop_sweeper(**_kwargs: Any) -> None:
    while _sweepers:
        _sweepers.pop().stop()
    while _beats:
        _beats.pop().stop()
    while _deliverers:
        _deliverers.pop().stop()
