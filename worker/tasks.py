"""Celery tasks: thin wrappers that hand a job id to the runner."""

from __future__ import annotations

from core.job_states import JobType
from core.queue import TASK_NAMES
from core.settings import get_settings
from worker.app import app
from worker.runner import run_job


def _run(job_id: str) -> str:
    # A BUSY claim (another worker's live lease) drops the message: if that worker dies,
    # its lease runs out and the sweeper sends the job again.
    return run_job(job_id, get_settings()).outcome.value


@app.task(name=TASK_NAMES[JobType.TRAIN])
def train(job_id: str) -> str:
    """Run a training job."""
    return _run(job_id)


@app.task(name=TASK_NAMES[JobType.SYNTHESIZE])
def synthesize(job_id: str) -> str:
    """Run a synthesis job."""
    return _run(job_id)


@app.task(name=TASK_NAMES[JobType.ANIMATE])
def animate(job_id: str) -> str:
    """Run an animation job (a still image brought to life)."""
    return _run(job_id)
