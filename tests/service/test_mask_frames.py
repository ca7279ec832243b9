"""A train job's box frames and missing frames are the clip's (like a mask file's): taken with
start and every, and one past the clip refused with the request (issue 18, item 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from tests.service.conftest import TINY_TRAIN, assert_error, upload
from worker.runner import run_job


def test_box_frames_count_the_clip_and_one_past_it_is_refused(
    client: TestClient, settings: Settings, clip: Path
) -> None:
    video_id = upload(client, clip)["id"]  # 10 frames
    config = TINY_TRAIN | {"frames": 4, "start": 1, "every": 2, "chunk_length": 4}
    box = {"x": 0.0, "y": 0.0, "width": 0.5, "height": 0.5}
    body = {"type": "train", "video_ids": [video_id], "config": config}
    past = body | {"mask": {"kind": "regions", "boxes": [box | {"frames": [9, 10]}]}}
    error = assert_error(client.post("/v1/jobs", json=past), 422, "mask_mismatch")
    assert "box 1 names frame 10, but the clip has 10 frames" in error["message"]
    assert error["details"] == [{"field": "mask.boxes"}]
    # the window is clip frames 1, 3, 5, 7: of frames 3, 4 and 9 only 3 is trained
    fits = body | {"mask": {"kind": "regions", "boxes": [box | {"frames": [3, 4, 9]}]}}
    assert _occluded_fraction(client, settings, fits) == pytest.approx(1 / 4 * 1 / 4)


def test_missing_frames_count_the_clip_like_box_frames(
    client: TestClient, settings: Settings, clip: Path
) -> None:
    video_id = upload(client, clip)["id"]  # 10 frames
    config = TINY_TRAIN | {"frames": 4, "start": 1, "every": 2, "chunk_length": 4}
    body = {"type": "train", "video_ids": [video_id], "config": config}
    past = body | {"mask": {"kind": "missing_frames", "frames": [9, 10]}}
    error = assert_error(client.post("/v1/jobs", json=past), 422, "mask_mismatch")
    assert "missing frame 10 is past the clip's 10 frames" in error["message"]
    assert error["details"] == [{"field": "mask.frames"}]
    untrained = body | {"mask": {"kind": "missing_frames", "frames": [2, 4]}}
    error = assert_error(client.post("/v1/jobs", json=untrained), 422, "mask_mismatch")
    assert "none of the missing frames (2, ...) is trained on" in error["message"]
    # the window is clip frames 1, 3, 5, 7: of frames 3, 4 and 9 only 3 is trained
    fits = body | {"mask": {"kind": "missing_frames", "frames": [3, 4, 9]}}
    assert _occluded_fraction(client, settings, fits) == pytest.approx(1 / 4)


def _occluded_fraction(client: TestClient, settings: Settings, body: dict[str, Any]) -> float:
    """Queue the job, run it in this process and return its metrics' occluded fraction."""
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    run_job(job_id, settings.model_copy(update={"device": "cpu"}))
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job["error"]
    return float(job["metrics"]["occluded_fraction"])
