"""The job state machine and its lease, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from core import jobs
from core.db import session_factory, session_scope
from core.errors import Conflict
from core.progress import JobProgress
from core.tables import Job, utcnow


@pytest.fixture
def sessions(db_url: str) -> sessionmaker[Session]:
    return session_factory(db_url)


def _new_job(sessions: sessionmaker[Session]) -> str:
    with session_scope(sessions) as s:
        return jobs.create_job(
            session=s, owner_id=None, type="train", config={"epochs": 5}, seed=0, video_ids=["v"]
        ).id


def _claim(sessions: sessionmaker[Session], job_id: str, worker: str) -> jobs.Claim:
    with session_scope(sessions) as s:
        return jobs.claim_job(session=s, job_id=job_id, worker=worker, lease_seconds=60)


def test_a_redelivered_message_never_runs_a_job_twice(sessions: sessionmaker[Session]) -> None:
    job_id = _new_job(sessions)
    assert _claim(sessions, job_id, "a").outcome is jobs.ClaimOutcome.CLAIMED
    second = _claim(sessions, job_id, "b")
    assert second.outcome is jobs.ClaimOutcome.BUSY and 55 < second.retry_in <= 60
    with session_scope(sessions) as s:
        jobs.finish_job(session=s, job_id=job_id, worker="a", status="succeeded")
    assert _claim(sessions, job_id, "b").outcome is jobs.ClaimOutcome.DONE
    assert _claim(sessions, "job_0000000000000000", "b").outcome is jobs.ClaimOutcome.DONE


def test_an_expired_lease_passes_to_the_next_worker(sessions: sessionmaker[Session]) -> None:
    job_id = _new_job(sessions)
    _claim(sessions, job_id, "dead")
    with session_scope(sessions) as s:
        s.execute(update(Job).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        assert [j.id for j in jobs.stale_jobs(session=s)] == [job_id]
    claim = _claim(sessions, job_id, "alive")
    assert claim.outcome is jobs.ClaimOutcome.CLAIMED and claim.job and claim.job.attempts == 2
    with session_scope(sessions) as s, pytest.raises(jobs.LeaseLost):
        jobs.heartbeat(session=s, job_id=job_id, worker="dead", lease_seconds=60)
    progress = JobProgress(0.2, epoch=1, epochs=5, loss=1.0, eta_seconds=4.0)
    with session_scope(sessions) as s:
        assert not jobs.record_progress(
            session=s, job_id=job_id, worker="alive", progress=progress, lease_seconds=60
        )
        with pytest.raises(jobs.LeaseLost):
            jobs.finish_job(session=s, job_id=job_id, worker="dead", status="failed")


def test_cancel_a_queued_job_ends_it_and_a_running_one_is_flagged(
    sessions: sessionmaker[Session],
) -> None:
    queued, running = _new_job(sessions), _new_job(sessions)
    _claim(sessions, running, "w")
    with session_scope(sessions) as s:
        assert jobs.request_cancel(session=s, owner_id=None, job_id=queued).status == "cancelled"
        job = jobs.request_cancel(session=s, owner_id=None, job_id=running)
        assert job.status == "running" and job.cancel_requested
    assert _claim(sessions, queued, "w2").outcome is jobs.ClaimOutcome.DONE
    with session_scope(sessions) as s:
        assert jobs.heartbeat(session=s, job_id=running, worker="w", lease_seconds=60)
        jobs.finish_job(session=s, job_id=running, worker="w", status="cancelled")
    with session_scope(sessions) as s, pytest.raises(Conflict):
        jobs.request_cancel(session=s, owner_id=None, job_id=running)
    with session_scope(sessions) as s:
        kinds = [e.data.get("status") for e in jobs.list_events(session=s, job_id=running)]
    assert kinds == ["queued", "running", None, "cancelled"]


def test_a_stale_job_is_resent_by_one_sweeper_once_per_lease(
    sessions: sessionmaker[Session],
) -> None:
    queued, running = _new_job(sessions), _new_job(sessions)
    _claim(sessions, running, "w")  # a live lease: nobody re-sends it
    cutoff = utcnow() + timedelta(seconds=1)  # both were sent "long ago"
    with session_scope(sessions) as s:
        assert [j.id for j in jobs.stale_jobs(session=s, sent_before=cutoff)] == [queued]
        assert not jobs.mark_resent(session=s, job_id=running, sent_before=cutoff)
    with session_scope(sessions) as s:
        assert jobs.mark_resent(session=s, job_id=queued, sent_before=cutoff)
    with session_scope(sessions) as s:  # a second sweeper, a moment later: just sent
        assert not jobs.mark_resent(session=s, job_id=queued, sent_before=utcnow() - timedelta(1))
        assert jobs.stale_jobs(session=s, sent_before=utcnow() - timedelta(seconds=60)) == []


def test_a_released_job_is_queued_again_without_a_lease(sessions: sessionmaker[Session]) -> None:
    job_id = _new_job(sessions)
    _claim(sessions, job_id, "w")
    with session_scope(sessions) as s:
        assert not jobs.release_job(session=s, job_id=job_id, worker="other", reason="x")
        assert jobs.release_job(session=s, job_id=job_id, worker="w", reason="worker_shutdown")
    with session_scope(sessions) as s:
        job = s.get_one(Job, job_id)
        assert (job.status, job.lease_owner, job.lease_expires_at) == ("queued", None, None)
        last = jobs.list_events(session=s, job_id=job_id)[-1].data
    assert last == {"status": "queued", "reason": "worker_shutdown"}
    claim = _claim(sessions, job_id, "next")
    assert claim.outcome is jobs.ClaimOutcome.CLAIMED and claim.job and claim.job.attempts == 2
