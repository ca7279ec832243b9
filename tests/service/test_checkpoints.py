"""Intermediate checkpoints on a real database and store: published while training runs, the
newest few kept, a timed-out training's last one kept as its model, synthesis from one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from core import jobs
from core.db import session_factory, session_scope
from core.settings import Settings
from core.storage import ArtifactStore
from tests.service.conftest import TINY_TRAIN, assert_error, upload
from worker.checkpoints import CheckpointPublisher
from worker.runner import run_job


def _train(client: TestClient, clip: Path, **config: object) -> str:
    video_id = upload(client, clip)["id"]
    body = {"type": "train", "video_ids": [video_id], "config": TINY_TRAIN | config}
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _intermediates(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in job["artifacts"] if a["kind"] == "intermediate_checkpoint"]


def _synthesize(client: TestClient, settings: Settings, **source: str) -> dict[str, Any]:
    body = {"type": "synthesize", "config": {"num_videos": 1, "frames": 6}} | source
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    run_job(job_id, settings)
    return dict(client.get(f"/v1/jobs/{job_id}").json())


def test_training_publishes_checkpoints_keeps_the_newest_and_synthesizes_from_one(
    client: TestClient, settings: Settings, clip: Path
) -> None:
    worker = settings.model_copy(update={"device": "cpu", "keep_checkpoints": 2})
    job_id = _train(client, clip, epochs=7, checkpoint_every=2)
    run_job(job_id, worker)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job
    kept = _intermediates(job)
    # epochs 2, 4 and 6 were published; 2 was pruned, file and row; 7 is the model itself
    assert sorted(a["epoch"] for a in kept) == [4, 6] and job["checkpoint_epoch"] == 6
    stored = sorted(p.name for p in (settings.store_dir / "artifacts").rglob("model-epoch-*"))
    assert stored == ["model-epoch-4.safetensors", "model-epoch-6.safetensors"]
    newest = next(a for a in kept if a["epoch"] == 6)
    header = client.get(newest["url"]).content
    assert b'"epochs_trained":"6"' in header[8 : 8 + int.from_bytes(header[:8], "little")]

    done = _synthesize(client, worker, checkpoint_id=newest["id"])
    assert done["status"] == "succeeded", done
    assert done["checkpoint_id"] == newest["id"] and done["model_id"] == job["model_id"]
    assert any(a["filename"].endswith(".mp4") for a in done["artifacts"])


def test_a_timed_out_training_keeps_its_last_checkpoint_as_its_model(
    client: TestClient, settings: Settings, clip: Path
) -> None:
    worker = settings.model_copy(
        update={"device": "cpu", "job_timeout_seconds": 6.0, "cancel_poll_seconds": 0.1}
    )
    # a checkpoint every epoch: even a machine under heavy load finishes one in 6 s
    job_id = _train(client, clip, epochs=100_000, checkpoint_every=1)
    run_job(job_id, worker)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed" and job["error"]["code"] == "job_timeout", job
    epoch = job["checkpoint_epoch"]
    assert epoch is not None and 1 <= epoch <= job["progress"]["epoch"]
    model = client.get(f"/v1/models/{job['model_id']}").json()
    assert model["checkpoint"]["epoch"] == epoch and model["metrics"]["checkpoint_epoch"] == epoch
    assert model["metrics"]["stopped"] == "failed"
    done = _synthesize(client, worker, model_id=job["model_id"])
    assert done["status"] == "succeeded", done


def test_without_checkpoints_a_stopped_training_leaves_no_model(
    client: TestClient, settings: Settings, clip: Path
) -> None:
    worker = settings.model_copy(
        update={"device": "cpu", "job_timeout_seconds": 1.0, "cancel_poll_seconds": 0.1}
    )
    job_id = _train(client, clip, epochs=100_000, checkpoint_every=0)
    run_job(job_id, worker)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed" and job["checkpoint_epoch"] is None and job["artifacts"] == []
    body = {"type": "synthesize", "model_id": job["model_id"]}
    assert_error(client.post("/v1/jobs", json=body), 409, "model_unavailable")


def test_a_synthesis_names_one_source_and_only_an_intermediate_checkpoint(
    client: TestClient, settings: Settings, clip: Path
) -> None:
    job_id = _train(client, clip)
    run_job(job_id, settings.model_copy(update={"device": "cpu"}))
    job = client.get(f"/v1/jobs/{job_id}").json()
    final = next(a for a in job["artifacts"] if a["kind"] == "checkpoint")
    both = {"type": "synthesize", "model_id": job["model_id"], "checkpoint_id": final["id"]}
    assert_error(client.post("/v1/jobs", json=both), 422)
    assert_error(client.post("/v1/jobs", json={"type": "synthesize"}), 422)
    named = {"type": "synthesize", "checkpoint_id": final["id"]}
    error = assert_error(client.post("/v1/jobs", json=named), 422, "not_a_checkpoint")
    assert final["id"] in error["message"]
    missing = {"type": "synthesize", "checkpoint_id": "art_0123abcd"}
    assert_error(client.post("/v1/jobs", json=missing), 404, "not_found")


def test_a_training_given_back_then_cancelled_in_the_queue_keeps_its_checkpoint(
    client: TestClient, settings: Settings, clip: Path, tmp_path: Path
) -> None:
    job_id = _train(client, clip, epochs=100, checkpoint_every=10)
    sessions = session_factory(settings.db_url)
    with session_scope(sessions) as s:
        job = jobs.claim_job(session=s, job_id=job_id, worker="w", lease_seconds=60).job
        assert job is not None
        s.expunge(job)
    source = tmp_path / "model-epoch-10.safetensors"
    source.write_bytes(b"weights" * 100)
    CheckpointPublisher(settings, sessions, ArtifactStore(settings.store_dir), job, "w")(source, 10)
    with session_scope(sessions) as s:  # the worker shut down: the job goes back to the queue
        assert jobs.release_job(session=s, job_id=job_id, worker="w", reason="worker_shutdown")
    cancelled = client.post(f"/v1/jobs/{job_id}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["checkpoint_epoch"] == 10
    model = client.get(f"/v1/models/{cancelled['model_id']}").json()
    assert model["checkpoint"]["epoch"] == 10 and model["metrics"]["stopped"] == "cancelled"
