"""The worker's runner on a CUDA device: a training publishes its checkpoints and model, a
synthesis samples from one. Marked `cuda`; skipped without a CUDA device."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from core.settings import Settings
from tests.service.conftest import TINY_TRAIN, upload
from worker.runner import run_job

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]


def test_a_cuda_worker_trains_checkpoints_and_synthesizes(
    client: TestClient, settings: Settings, clip: Path
) -> None:
    worker = settings.model_copy(update={"device": "cuda"})
    video_id = upload(client, clip)["id"]
    config = TINY_TRAIN | {"epochs": 5, "checkpoint_every": 2}
    body = {"type": "train", "video_ids": [video_id], "config": config}
    job_id = client.post("/v1/jobs", json=body).json()["id"]
    run_job(job_id, worker)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["checkpoint_epoch"] == 4, job
    newest = max(
        (a for a in job["artifacts"] if a["kind"] == "intermediate_checkpoint"),
        key=lambda a: a["epoch"],
    )
    for source in ({"checkpoint_id": newest["id"]}, {"model_id": job["model_id"]}):
        synth = {"type": "synthesize", "config": {"num_videos": 1, "frames": 6}} | source
        synth_id = client.post("/v1/jobs", json=synth).json()["id"]
        run_job(synth_id, worker)
        done = client.get(f"/v1/jobs/{synth_id}").json()
        assert done["status"] == "succeeded", done
