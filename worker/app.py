"""The Celery app workers run: `celery -A worker.app worker --pool solo` (or `dyngen worker`)."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_ready

from core.queue import make_celery
from core.settings import get_settings

log = logging.getLogger("dyngen.worker")

app = make_celery(get_settings())
# The tasks import model/ (and torch) only inside the task body, so a prefork parent never
# initialises CUDA before forking its children.
app.conf.include = ["worker.tasks"]


@worker_ready.connect
def _requeue_stale(**_kwargs: Any) -> None:
    """Re-send jobs nobody runs (lost messages, dead workers); the lease drops duplicates."""
    from worker.runner import requeue_stale

    try:
        count = requeue_stale(get_settings())
    except Exception:
        log.exception("could not look for stale jobs")
        return
    if count:
        log.info("re-sent %d job(s) that no worker was running", count)
