"""A masked job on the defaults runs without contradicting them (issue 20, item 3)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from core.settings import Settings
from tests.service.conftest import upload, write_clip
from worker.runner import run_job

# Small enough to train in seconds; frames, chunk_length and every recovery field are left
# to the defaults, which are what this test is about.
SMALL = {"image_size": 16, "base_channels": 4, "state_dim": 4, "noise_dim": 4, "epochs": 2}


def test_a_default_masked_job_has_no_one_chunk_warning(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "sixty.mp4", frames=60)
    video_id = upload(client, clip)["id"]
    body = {
        "type": "train",
        "video_ids": [video_id],
        "config": SMALL,
        "mask": {"kind": "missing_frames", "frames": [20, 21, 22]},
    }
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    config = response.json()["config"]
    # the recovery defaults apply: one chunk over the whole 60-frame clip
    assert (config["frames"], config["chunk_length"], config["langevin_steps"]) == (60, 70, 5)
    run_job(job_id, settings.model_copy(update={"device": "cpu"}))
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job["error"]
    assert job["metrics"]["warnings"] == []
    assert job["metrics"]["recovery_error"] > 0
