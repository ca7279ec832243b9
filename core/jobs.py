"""The job state machine: queued -> running -> succeeded | failed | cancelled.

The API creates and cancels jobs; a worker claims one with a lease in the database,
heartbeats to keep it, reports progress and finishes it. A message the broker delivers
twice finds the job claimed or finished and does nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from core import outbox
from core.checkpoints import keep_last, keeps_checkpoint
from core.errors import Conflict, NotFound
from core.ids import new_id
from core.job_states import TERMINAL, JobStatus, JobType
from core.progress import JobProgress
from core.query import owned, page
from core.tables import Job, JobEvent, utcnow

MAX_ATTEMPTS = 3  # lost workers before a job fails `worker_lost` (DYNGEN_MAX_ATTEMPTS)


class LeaseLost(Exception):
    """Another worker holds the job now (ours expired), or it was finished meanwhile."""


class ClaimOutcome(enum.Enum):
    """What claiming a job found."""

    CLAIMED = "claimed"
    BUSY = "busy"  # another worker's lease is still valid
    DONE = "done"  # finished, cancelled, or gone: nothing to run


@dataclass(frozen=True)
class Claim:
    """The result of `claim_job`; `retry_in` is how long a BUSY lease still runs."""

    outcome: ClaimOutcome
    job: Job | None = None
    retry_in: float = 0.0


def add_event(*, session: Session, job_id: str, kind: str, data: dict[str, Any]) -> None:
    """Append one line to the job's history."""
    session.add(JobEvent(job_id=job_id, kind=kind, data=data))


def create_job(
    *,
    session: Session,
    owner_id: str | None,
    type: str,
    config: dict[str, Any],
    seed: int,
    video_ids: list[str] | None = None,
    mask: dict[str, Any] | None = None,
    model_id: str | None = None,
    webhook: dict[str, Any] | None = None,
) -> Job:
    """A queued job; a train job reserves the id of the model it will create."""
    if type == JobType.TRAIN and model_id is None:
        model_id = new_id("mdl")
    job = Job(
        id=new_id("job"),
        owner_id=owner_id,
        type=type,
        status=JobStatus.QUEUED,
        video_ids=video_ids or [],
        mask=mask,
        model_id=model_id,
        config=config,
        seed=seed,
        webhook=webhook,
        epochs=config.get("epochs"),
    )
    session.add(job)
    session.flush()
    add_event(session=session, job_id=job.id, kind="status", data={"status": JobStatus.QUEUED})
    return job


def get_job(*, session: Session, owner_id: str | None, job_id: str) -> Job:
    """The caller's job, or NotFound."""
    job = session.scalar(select(Job).where(Job.id == job_id, owned(Job.owner_id, owner_id)))
    if job is None:
        raise NotFound("job", job_id)
    return job


def list_jobs(
    *,
    session: Session,
    owner_id: str | None,
    status: str | None = None,
    type: str | None = None,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[Job], str | None]:
    """The caller's jobs, newest first, optionally of one status and type."""
    stmt = select(Job).where(owned(Job.owner_id, owner_id))
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if type is not None:
        stmt = stmt.where(Job.type == type)
    return page(session, stmt, Job.id, limit=limit, cursor=cursor)


def claim_job(
    *,
    session: Session,
    job_id: str,
    worker: str,
    lease_seconds: float,
    max_attempts: int = MAX_ATTEMPTS,
) -> Claim:
    """Take the job's lease if it is queued (or its last runner died: see `reap_lost`)."""
    reaped = reap_lost(session=session, job_id=job_id, max_attempts=max_attempts)
    if reaped is not None and reaped.status in TERMINAL:
        return Claim(ClaimOutcome.DONE, reaped)
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED, Job.cancel_requested.is_(False))
        .values(
            status=JobStatus.RUNNING,
            lease_owner=worker,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            heartbeat_at=now,
            started_at=func.coalesce(Job.started_at, now),
            attempts=Job.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        return Claim(ClaimOutcome.DONE)
    if getattr(result, "rowcount", 0) == 1:
        # a client following the events sees each attempt begin (and where it resumes)
        add_event(session=session, job_id=job_id, kind="status", data=_running_data(job))
        return Claim(ClaimOutcome.CLAIMED, job)
    if job.status == JobStatus.RUNNING and job.lease_expires_at is not None:
        return Claim(ClaimOutcome.BUSY, job, _seconds_until(job.lease_expires_at, now))
    return Claim(ClaimOutcome.DONE, job)


def reap_lost(*, session: Session, job_id: str, max_attempts: int = MAX_ATTEMPTS) -> Job | None:
    """A running job whose lease ran out lost its worker: count it, then queue the job again,
    or end it (cancelled if a cancel was asked for, failed `worker_lost` past
    `max_attempts`); None if the job's lease is live or it isn't running."""
    now = utcnow()
    # One conditional UPDATE: of a sweeper and a claiming worker, only one counts the loss.
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING, Job.lease_expires_at < now)
        .values(
            status=JobStatus.QUEUED,
            lease_owner=None,
            lease_expires_at=None,
            eta_seconds=None,
            lost_attempts=Job.lost_attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return None
    job = session.get_one(Job, job_id, populate_existing=True)
    if job.cancel_requested:
        # its runner died after a cancel was asked for: nobody will run it again
        _finish(session, job, JobStatus.CANCELLED, error=None, metrics=None)
    elif job.lost_attempts >= max_attempts:
        _finish(session, job, JobStatus.FAILED, error=_worker_lost(job.lost_attempts), metrics=None)
    else:
        data = {"status": JobStatus.QUEUED, "reason": "worker_lost", "attempt": job.attempts}
        add_event(session=session, job_id=job_id, kind="status", data=data)
    return job


def _worker_lost(lost: int) -> dict[str, str]:
    message = (
        f"the job's worker was lost {lost} times (killed mid-job, perhaps for memory); "
        "it is not retried again"
    )
    return {"code": "worker_lost", "message": message}


def _running_data(job: Job) -> dict[str, Any]:
    data = {"status": JobStatus.RUNNING, "attempt": job.attempts, "worker": job.lease_owner}
    if job.attempts > 1:
        # this attempt restarts from the last saved state, maybe before the epoch the last
        # one reported: say where that one got, rather than let progress run backwards
        data["previous_attempt_epoch"] = job.epoch
    return data


def _seconds_until(when: datetime, now: datetime) -> float:
    return max(0.0, (when - now).total_seconds())


def _held(job_id: str, worker: str) -> Any:
    """The WHERE clause of an update only the lease holder may make."""
    return and_(Job.id == job_id, Job.lease_owner == worker, Job.status == JobStatus.RUNNING)


def heartbeat(*, session: Session, job_id: str, worker: str, lease_seconds: float) -> bool:
    """Extend the lease; returns whether the cancel flag is set. Raises LeaseLost."""
    now = utcnow()
    row = session.execute(
        update(Job)
        .where(_held(job_id, worker))
        .values(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=lease_seconds))
        .returning(Job.cancel_requested)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        raise LeaseLost(job_id)
    return bool(row[0])


def record_progress(
    *,
    session: Session,
    job_id: str,
    worker: str,
    progress: JobProgress,
    lease_seconds: float,
) -> bool:
    """Write progress to the job row and its history; returns whether a cancel was asked."""
    now = utcnow()
    columns = progress.columns()
    row = session.execute(
        update(Job)
        .where(_held(job_id, worker))
        .values(
            **columns, heartbeat_at=now, lease_expires_at=now + timedelta(seconds=lease_seconds)
        )
        .returning(Job.cancel_requested, Job.webhook)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        raise LeaseLost(job_id)
    add_event(session=session, job_id=job_id, kind="progress", data=progress.event())
    outbox.on_progress(session=session, job_id=job_id, webhook=row[1])
    return bool(row[0])


def is_cancel_requested(*, session: Session, job_id: str) -> bool:
    """Whether someone asked the job to stop."""
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def finish_job(
    *,
    session: Session,
    job_id: str,
    worker: str,
    status: JobStatus,
    metrics: dict[str, Any] | None = None,
    error: dict[str, str] | None = None,
) -> Job:
    """Move a running job to a terminal status, if this worker still holds it. A job whose
    cancel was asked for ends `cancelled` instead of `succeeded`: a cancel the API accepted
    always wins until the outputs are published (this row lock is taken before they are)."""
    if status not in TERMINAL:
        raise ValueError(f"{status!r} is not a terminal status")
    job = session.scalar(select(Job).where(_held(job_id, worker)).with_for_update())
    if job is None:
        raise LeaseLost(job_id)
    if status == JobStatus.SUCCEEDED and job.cancel_requested:
        status, metrics = JobStatus.CANCELLED, None
    _finish(session, job, status, error=error, metrics=metrics)
    return job


def _finish(
    session: Session,
    job: Job,
    status: JobStatus,
    *,
    error: dict[str, str] | None,
    metrics: dict[str, Any] | None,
) -> None:
    job.status = status
    job.finished_at = utcnow()
    job.lease_owner = None
    job.lease_expires_at = None
    job.eta_seconds = None
    if status == JobStatus.SUCCEEDED:
        job.fraction = 1.0
    if metrics is not None:
        job.metrics = metrics
    if error is not None:
        job.error_code, job.error_message = error["code"], error["message"]
    data: dict[str, Any] = {"status": status}
    if error is not None:
        data["error"] = error
    add_event(session=session, job_id=job.id, kind="status", data=data)
    if keeps_checkpoint(job):  # however it stopped: by its worker, the API or a reaper
        keep_last(session=session, job=job)
    outbox.on_status(session=session, job=job)


def request_cancel(*, session: Session, owner_id: str | None, job_id: str) -> Job:
    """Cancel a queued job (or a running one whose worker is gone) now, or flag a running one
    for its worker to stop between epochs."""
    get_job(session=session, owner_id=owner_id, job_id=job_id)
    # One UPDATE per state, so a job that starts running meanwhile is caught by the second;
    # the row lock it takes means the worker's next progress write sees the flag.
    flagged_from = None
    for status in (JobStatus.QUEUED, JobStatus.RUNNING):
        result = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == status)
            .values(cancel_requested=True)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) == 1:
            flagged_from = status
            break
    job = session.get_one(Job, job_id, populate_existing=True)
    if flagged_from == JobStatus.QUEUED:
        # Nobody has claimed it (the claim skips flagged jobs), so it ends here.
        _finish(session, job, JobStatus.CANCELLED, error=None, metrics=None)
    elif flagged_from == JobStatus.RUNNING:
        add_event(session=session, job_id=job_id, kind="status", data={"cancel": True})
        # its worker is gone (the lease ran out): nobody would see the flag, so it ends now
        # (the same row object, in the session's identity map, is updated)
        reap_lost(session=session, job_id=job_id)
    else:
        raise Conflict(
            f"job {job_id} has already {job.status}",
            code="job_finished",
            details={"status": job.status},
        )
    session.flush()
    return job


def list_events(
    *, session: Session, job_id: str, after: int = 0, limit: int = 1000
) -> list[JobEvent]:
    """The job's history after event id `after`, oldest first."""
    stmt = (
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.id > after)
        .order_by(JobEvent.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def _stale(now: datetime) -> Any:
    """Nobody runs it: queued, or running under a lease that ran out."""
    return or_(
        Job.status == JobStatus.QUEUED,
        and_(Job.status == JobStatus.RUNNING, Job.lease_expires_at < now),
    )


def _unsent_since(cutoff: datetime) -> Any:
    return or_(Job.enqueued_at.is_(None), Job.enqueued_at < cutoff)


def stale_jobs(*, session: Session, sent_before: datetime | None = None) -> list[Job]:
    """Jobs nobody is running (optionally only those last sent before `sent_before`)."""
    stmt = select(Job).where(_stale(utcnow()))
    if sent_before is not None:
        stmt = stmt.where(_unsent_since(sent_before))
    return list(session.scalars(stmt.order_by(Job.id)))


def mark_resent(*, session: Session, job_id: str, sent_before: datetime) -> bool:
    """Note that the job is being sent again; False if it isn't stale or was just sent."""
    now = utcnow()
    # One conditional UPDATE: of several sweepers looking at once, only one re-sends it.
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, _stale(now), _unsent_since(sent_before))
        .values(enqueued_at=now)
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


def release_job(*, session: Session, job_id: str, worker: str, reason: str) -> bool:
    """Give a running job back to the queue (its worker is stopping); False if not ours."""
    result = session.execute(
        update(Job)
        .where(_held(job_id, worker))
        .values(
            status=JobStatus.QUEUED,
            lease_owner=None,
            lease_expires_at=None,
            eta_seconds=None,
            enqueued_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    add_event(
        session=session,
        job_id=job_id,
        kind="status",
        data={"status": JobStatus.QUEUED, "reason": reason},
    )
    return True


def fail_unstarted(*, session: Session, job_id: str, error: dict[str, str]) -> Job:
    """Fail a job no worker took (its message could not be sent)."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise NotFound("job", job_id)
    if job.status == JobStatus.QUEUED:
        _finish(session, job, JobStatus.FAILED, error=error, metrics=None)
    return job
