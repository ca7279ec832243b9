"""Storage as the database says: outputs with their rows or not at all, every finished job's
files gone, files without rows swept, lost workers counted, messages without paths."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from core import jobs
from core.artifacts import Publication
from core.db import session_factory, session_scope
from core.orphans import sweep_orphans
from core.settings import Settings
from core.storage import ArtifactStore
from core.tables import Artifact, Job, utcnow
from tests.service.conftest import TINY_TRAIN, upload
from worker.runner import run_job


@pytest.fixture
def sessions(settings: Settings) -> sessionmaker[Session]:
    return session_factory(settings.db_url)


def _new_job(sessions: sessionmaker[Session]) -> str:
    with session_scope(sessions) as s:
        job = jobs.create_job(session=s, owner_id=None, type="train", config={}, seed=0)
        return job.id


def _claim(sessions: sessionmaker[Session], job_id: str, worker: str) -> jobs.Claim:
    with session_scope(sessions) as s:
        return jobs.claim_job(
            session=s, job_id=job_id, worker=worker, lease_seconds=60, max_attempts=2
        )


def _expire(sessions: sessionmaker[Session], job_id: str) -> None:
    with session_scope(sessions) as s:
        past = utcnow() - timedelta(seconds=1)
        s.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=past))


def test_a_job_that_keeps_losing_its_worker_fails_worker_lost(
    sessions: sessionmaker[Session],
) -> None:
    job_id = _new_job(sessions)
    assert _claim(sessions, job_id, "a").outcome is jobs.ClaimOutcome.CLAIMED
    _expire(sessions, job_id)  # worker a was killed
    second = _claim(sessions, job_id, "b")
    assert second.outcome is jobs.ClaimOutcome.CLAIMED and second.job is not None
    assert (second.job.attempts, second.job.lost_attempts) == (2, 1)
    _expire(sessions, job_id)  # and so was b
    with session_scope(sessions) as s:  # the next worker to take it counts the loss
        ended = jobs.reap_lost(session=s, job_id=job_id, max_attempts=2)
        assert ended is not None and ended.status == "failed"
        assert ended.error_code == "worker_lost" and "lost 2 times" in (ended.error_message or "")
        assert jobs.reap_lost(session=s, job_id=job_id, max_attempts=2) is None  # counted once
    assert _claim(sessions, job_id, "c").outcome is jobs.ClaimOutcome.DONE
    with session_scope(sessions) as s:
        events = [e.data for e in jobs.list_events(session=s, job_id=job_id)]
    assert [e.get("status") for e in events] == [
        "queued",
        "running",
        "queued",
        "running",
        "failed",
    ]
    assert events[1]["attempt"] == 1 and events[3]["attempt"] == 2
    assert events[2] == {"status": "queued", "reason": "worker_lost", "attempt": 1}
    assert "previous_attempt_epoch" in events[3]


def test_a_cancel_that_arrives_after_the_last_epoch_ends_the_job_cancelled(
    sessions: sessionmaker[Session],
) -> None:
    job_id = _new_job(sessions)
    _claim(sessions, job_id, "w")
    with session_scope(sessions) as s:
        flagged = jobs.request_cancel(session=s, owner_id=None, job_id=job_id)
        assert flagged.status == "running" and flagged.cancel_requested
    with session_scope(sessions) as s:
        job = jobs.finish_job(
            session=s, job_id=job_id, worker="w", status="succeeded", metrics={"x": 1}
        )
        assert job.status == "cancelled" and job.metrics == {}


def test_outputs_are_published_with_their_rows_or_not_at_all(
    settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    store = ArtifactStore(settings.store_dir)
    job_id = _new_job(sessions)
    sources = []
    for name in ("model.safetensors", "video-1.mp4"):
        sources.append(tmp_path / name)
        sources[-1].write_bytes(b"x" * 100)
    with (
        pytest.raises(FileNotFoundError),
        Publication(store) as publication,
        session_scope(sessions) as s,
    ):
        for source in [*sources, sources[1]]:  # the same output twice: its file is gone
            publication.add(
                session=s,
                job_id=job_id,
                owner_id=None,
                kind="video",
                source=source,
                media_type="video/mp4",
            )
    with session_scope(sessions) as s:
        assert s.scalar(select(func.count()).select_from(Artifact)) == 0
    artifacts = settings.store_dir / "artifacts"
    assert not artifacts.exists() or list(artifacts.rglob("*")) == []


def test_files_without_rows_are_swept_after_the_grace_period(
    client: TestClient, settings: Settings, sessions: sessionmaker[Session], clip: Path
) -> None:
    root = settings.store_dir
    kept = upload(client, clip)
    finished, running = _new_job(sessions), _new_job(sessions)
    _claim(sessions, running, "w")
    with session_scope(sessions) as s:
        jobs.request_cancel(session=s, owner_id=None, job_id=finished)
    orphans = [
        root / "videos" / "vid_0123abcd.mp4",  # an API died between publish and commit
        root / "artifacts" / "art_0123abcd" / "video-1.mp4",
        root / "resume" / finished / "resume.state",  # a finished job's leftovers
        root / "tmp" / f"job-{finished}-1" / "model.safetensors",
    ]
    live = [root / "resume" / running / "resume.state", root / "tmp" / f"job-{running}-1" / "x"]
    for path in orphans + live:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    fresh = root / "videos" / "vid_fresh.mp4"
    fresh.write_bytes(b"x")
    hour_ago = time.time() - 3600
    for path in {p for p in orphans + live} | {p.parent for p in orphans + live}:
        os.utime(path, (hour_ago, hour_ago))
    with session_scope(sessions) as s:
        removed = sweep_orphans(session=s, store=ArtifactStore(root), grace_seconds=600)
    assert removed == 4
    assert not any(p.exists() for p in orphans)
    assert not (root / "artifacts" / "art_0123abcd").exists()
    assert all(p.exists() for p in live) and fresh.exists()  # young, or still needed
    assert client.get(f"/v1/videos/{kept['id']}/content").status_code == 200


def test_a_workers_error_names_inputs_by_id_and_no_storage_path(
    client: TestClient, settings: Settings, clip: Path
) -> None:
    video = upload(client, clip)
    (settings.store_dir / f"videos/{video['id']}.mp4").write_bytes(b"not a video at all")
    body = {"type": "train", "video_ids": [video["id"]], "config": TINY_TRAIN}
    job_id = client.post("/v1/jobs", json=body).json()["id"]
    run_job(job_id, settings.model_copy(update={"device": "cpu"}))
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed" and job["error"]["code"] == "invalid_video", job
    message = job["error"]["message"]
    assert f"video {video['id']}" in message and str(settings.store_dir) not in message
    assert "/" not in message.split(":")[0], message
    assert not list((settings.store_dir / "tmp").glob("job-*"))


def test_a_cancel_of_a_job_whose_worker_is_gone_ends_it_at_once(
    client: TestClient, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    job_id = _new_job(sessions)
    _claim(sessions, job_id, "dead")
    _expire(sessions, job_id)
    resume = ArtifactStore(settings.store_dir).resume_path(job_id)
    resume.write_bytes(b"state")
    job = client.post(f"/v1/jobs/{job_id}/cancel").json()
    assert job["status"] == "cancelled" and job["cancel_requested"], job
    assert not resume.parent.exists()
