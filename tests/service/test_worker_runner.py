"""The worker's runner on a real database: one attempt per lease, errors as failed jobs."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from core import jobs
from core.db import session_factory, session_scope
from core.settings import Settings
from core.tables import Artifact, Job, JobEvent, TrainedModel, utcnow
from tests.service.conftest import TINY_TRAIN, make_settings, upload
from tests.service.processes import ROOT
from worker.runner import run_job


def _queued_train(client: TestClient, clip: Path, **extra: object) -> str:
    video_id = upload(client, clip)["id"]
    body = {"type": "train", "video_ids": [video_id], "config": TINY_TRAIN} | extra
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_a_job_runs_once_and_a_dead_workers_job_is_taken_over(
    client: TestClient, settings: Settings, clip: Path
) -> None:
    worker_settings = settings.model_copy(update={"device": "cpu"})
    job_id = _queued_train(client, clip)
    sessions = session_factory(settings.db_url)
    with session_scope(sessions) as s:
        # a worker that claimed it and died: its lease has run out
        jobs.claim_job(session=s, job_id=job_id, worker="dead", lease_seconds=60)
        s.execute(update(Job).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    assert run_job(job_id, worker_settings).outcome is jobs.ClaimOutcome.CLAIMED
    assert run_job(job_id, worker_settings).outcome is jobs.ClaimOutcome.DONE
    with session_scope(sessions) as s:
        job = s.get_one(Job, job_id)
        assert (job.status, job.attempts, job.epoch, job.fraction) == ("succeeded", 2, 3, 1.0)
        epochs = [
            e.data["epoch"] for e in s.scalars(select(JobEvent).where(JobEvent.kind == "progress"))
        ]
        assert epochs == [1, 2, 3]
        artifacts = list(s.scalars(select(Artifact).where(Artifact.job_id == job_id)))
        model = s.scalars(select(TrainedModel)).one()
    assert model.id == job.model_id and model.checkpoint_id in {a.id for a in artifacts}
    for artifact in artifacts:
        assert (settings.store_dir / artifact.storage_key).stat().st_size == artifact.bytes
    assert not (settings.store_dir / "resume" / job_id).exists()
    assert list((settings.store_dir / "tmp").iterdir()) == []


def test_a_model_error_fails_the_job_with_its_code(
    client: TestClient, settings: Settings, clip: Path
) -> None:
    # all of TINY_TRAIN's 8 frames missing: admission doesn't look at pixels, the worker does
    mask = {"kind": "missing_frames", "frames": list(range(8))}
    job_id = _queued_train(client, clip, mask=mask)
    run_job(job_id, settings.model_copy(update={"device": "cpu"}))
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed" and job["error"]["code"] == "invalid_mask"
    assert "hides every pixel" in job["error"]["message"] and job["artifacts"] == []


def test_the_worker_process_loads_torch_only_inside_a_task(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'x.sqlite'}", tmp_path)
    code = "import sys, worker.app, worker.tasks; print('torch' in sys.modules)"
    env = {"DYNGEN_DATA_DIR": str(settings.data_dir), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.stdout.strip() == "False", out.stderr


def test_a_job_past_the_deployments_timeout_fails_with_job_timeout(
    client: TestClient, settings: Settings, clip: Path
) -> None:
    job_id = _queued_train(client, clip, config=TINY_TRAIN | {"epochs": 500})
    sessions = session_factory(settings.db_url)
    with session_scope(sessions) as s:
        # an earlier attempt started it an hour ago: the deadline counts from then
        s.execute(update(Job).values(started_at=utcnow() - timedelta(hours=1)))
    limited = settings.model_copy(update={"device": "cpu", "job_timeout_seconds": 600})
    assert run_job(job_id, limited).outcome is jobs.ClaimOutcome.CLAIMED
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "job_timeout" and "600 s" in job["error"]["message"]
    assert job["artifacts"] == [] and (job["progress"] or {}).get("epoch") in (None, 0)
    assert not (settings.store_dir / "resume" / job_id).exists()
