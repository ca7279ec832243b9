"""Celery tasks: thin wrappers that hand a job id to the runner."""

from __future__ import annotations

from celery import Task

from core.jobs import ClaimOutcome
from core.settings import get_settings
from worker.app import app
from worker.runner import run_job

MAX_BUSY_RETRIES = 1000


def _run(task: Task, job_id: str) -> str:
    claim = run_job(job_id, get_settings())
    if claim.outcome is ClaimOutcome.BUSY:
        # Another worker's lease is live (or it died and the lease hasn't run out yet):
        # look again once the lease would have expired.
        raise task.retry(countdown=claim.retry_in + 1, max_retries=MAX_BUSY_RETRIES)
    return claim.outcome.value


@app.task(name="dyngen.train", bind=True)
def train(self: Task, job_id: str) -> str:
    """Run a training job."""
    return _run(self, job_id)


@app.task(name="dyngen.synthesize", bind=True)
def synthesize(self: Task, job_id: str) -> str:
    """Run a synthesis job."""
    return _run(self, job_id)
