"""A job's statuses and types: the one definition the database, the API, the worker, the CLI
and the web page (served as /ui/job-states.js) share."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """Where a job is: queued -> running -> succeeded | failed | cancelled."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobType(StrEnum):
    """What a job runs."""

    TRAIN = "train"
    SYNTHESIZE = "synthesize"
    ANIMATE = "animate"


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})  # a job that may still use its inputs
