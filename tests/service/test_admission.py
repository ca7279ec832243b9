"""What a job may ask for: strict types, distinct formats, models that will never be ready,
and admission control (a job estimated past the deployment's memory or work is refused)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core import jobs
from core.db import session_factory, session_scope
from core.settings import JOB_MEMORY_SHARE, Settings, machine_memory
from model.budget import PROCESS_BASELINE
from tests.service.conftest import TINY_TRAIN, RecordingQueue, assert_error, upload
from tests.service.factories import finished_training


@pytest.fixture
def video_id(client: TestClient, clip: Path) -> str:
    return str(upload(client, clip)["id"])


def _train(client: TestClient, video_id: str, **extra: Any) -> Any:
    body = {"type": "train", "video_ids": [video_id], "config": TINY_TRAIN} | extra
    return client.post("/v1/jobs", json=body)


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"epochs": "3"}, "config.epochs"),
        ({"epochs": True}, "config.epochs"),
        ({"sigma": "1.0"}, "config.sigma"),
        ({"sigma": False}, "config.sigma"),
        ({"image_size": "16"}, "config.image_size"),
        ({"mlp_widths": ["20", 20]}, "config.mlp_widths.0"),
    ],
)
def test_strings_and_booleans_are_not_numbers(
    client: TestClient, video_id: str, config: dict[str, Any], field: str
) -> None:
    error = assert_error(_train(client, video_id, config=TINY_TRAIN | config), 422)
    assert error["code"] == "validation_error"
    assert [d["field"] for d in error["details"]] == [field], error


def test_strict_types_in_masks_seeds_and_synthesis(client: TestClient, video_id: str) -> None:
    mask = {"kind": "missing_frames", "frames": ["1"]}
    error = assert_error(_train(client, video_id, mask=mask), 422, "validation_error")
    assert error["details"][0]["field"] == "mask.frames.0"
    error = assert_error(_train(client, video_id, seed="3"), 422, "validation_error")
    assert error["details"][0]["field"] == "seed"
    for config, field in (({"frames": "16"}, "frames"), ({"fresh_state": 1}, "fresh_state")):
        synth = {"type": "synthesize", "model_id": "mdl_00aa", "config": config}
        error = assert_error(client.post("/v1/jobs", json=synth), 422, "validation_error")
        assert error["details"][0]["field"] == f"config.{field}"
    # JSON numbers for floats and arrays for tuples are still what a config is made of
    fine = TINY_TRAIN | {"sigma": 1, "mlp_widths": [8, 8], "learning_rate": 0.002}
    assert _train(client, video_id, config=fine).status_code == 202


def test_a_repeated_synthesis_format_is_refused_at_creation(
    client: TestClient, settings: Settings, tmp_path: Path, queue: RecordingQueue
) -> None:
    _, model_id, _ = finished_training(settings, tmp_path)
    synth = {"type": "synthesize", "model_id": model_id, "config": {"formats": ["mp4", "mp4"]}}
    error = assert_error(client.post("/v1/jobs", json=synth), 422, "validation_error")
    assert error["details"][0]["field"] == "config.formats" and "repeated: mp4" in error["message"]
    assert queue.sent == []


def test_a_model_whose_training_was_cancelled_is_refused_for_good(
    client: TestClient, video_id: str
) -> None:
    pending = _train(client, video_id).json()
    assert client.post(f"/v1/jobs/{pending['id']}/cancel").json()["status"] == "cancelled"
    synth = {"type": "synthesize", "model_id": pending["model_id"]}
    error = assert_error(client.post("/v1/jobs", json=synth), 409, "model_unavailable")
    assert error["details"] == {"job_id": pending["id"], "status": "cancelled"}
    assert "never be ready" in error["message"]


def test_a_job_past_the_memory_limit_is_refused_with_its_estimate(
    settings: Settings, queue: RecordingQueue, clip: Path, tmp_path: Path
) -> None:
    limit = PROCESS_BASELINE + 200 * 1024**2
    small = settings.model_copy(update={"max_job_memory_bytes": limit})
    with TestClient(create_app(small, queue=queue)) as client:
        video_id = upload(client, clip)["id"]
        assert _train(client, video_id).status_code == 202  # a tiny job fits
        # eight 4096-wide transition layers (2.7 GB of weights and Adam moments) do not
        huge = TINY_TRAIN | {"state_dim": 4096, "mlp_widths": [4096] * 8}
        error = assert_error(_train(client, video_id, config=huge), 422, "job_too_large")
        estimate, limits = error["details"]["estimate"], error["details"]["limit"]
        assert estimate["memory_bytes"] > limit == limits["memory_bytes"]
        assert estimate["memory_bytes"] == sum(estimate["parts"].values())
        assert "GiB of memory" in error["message"]
        _, model_id, _ = finished_training(small, tmp_path)  # a 64 x 64 model
        many = {"num_videos": 256, "frames": 390, "formats": ["mp4", "gif"]}
        synth = {"type": "synthesize", "model_id": model_id, "config": many}
        error = assert_error(client.post("/v1/jobs", json=synth), 422, "job_too_large")
        assert error["details"]["estimate"]["parts"]["encoders"] > 0
    assert len(queue.sent) == 1


def test_a_job_past_the_work_limit_is_refused(
    settings: Settings, queue: RecordingQueue, clip: Path
) -> None:
    tight = settings.model_copy(update={"max_job_flops": 1e9})
    with TestClient(create_app(tight, queue=queue)) as client:
        video_id = upload(client, clip)["id"]
        long = TINY_TRAIN | {"epochs": 5000}
        error = assert_error(_train(client, video_id, config=long), 422)
        assert error["code"] == "job_too_large" and "floating-point" in error["message"]
        assert error["details"]["estimate"]["flops"] > 1e9


def test_the_worker_checks_the_budget_again_before_it_starts(
    client: TestClient, settings: Settings, video_id: str
) -> None:
    from worker.runner import run_job

    job_id = _train(client, video_id).json()["id"]  # queued under the API's roomy limits
    tight = settings.model_copy(update={"device": "cpu", "max_job_memory_bytes": 1024**2})
    assert run_job(job_id, tight).outcome is jobs.ClaimOutcome.CLAIMED
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed" and job["error"]["code"] == "job_too_large", job
    assert job["progress"]["epoch"] is None and job["artifacts"] == []
    with session_scope(session_factory(settings.db_url)) as s:
        assert jobs.list_events(session=s, job_id=job_id)[-1].data["status"] == "failed"


def test_the_default_memory_limit_is_a_share_of_this_machines_memory() -> None:
    assert 0 < machine_memory() <= 2**50
    assert Settings().max_job_memory_bytes == int(machine_memory() * JOB_MEMORY_SHARE)
