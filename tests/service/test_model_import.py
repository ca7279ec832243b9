"""POST /v1/models: a checkpoint from `dyngen train` becomes a model; anything else is a 4xx."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch
from fastapi.testclient import TestClient
from safetensors.torch import load_file, safe_open, save_file

from api.app import create_app
from api.limits import JSON_BODY_LIMIT
from core.settings import Settings
from model.checkpoint import save_checkpoint
from model.config import TrainConfig
from model.networks import DynamicGenerator
from tests.service.conftest import RecordingQueue, assert_error
from tests.service.offline_model import offline_checkpoint

__all__ = ["offline_checkpoint"]  # the fixture, imported for these tests


def post(client: TestClient, path: Path, name: str | None = None) -> Any:
    with path.open("rb") as f:
        return client.post("/v1/models", files={"file": (name or path.name, f)})


def rewritten(source: Path, target: Path, **changes: Any) -> Path:
    """A copy of the checkpoint with tensors (`tensors=`) or metadata fields replaced."""
    tensors = load_file(str(source))
    with safe_open(str(source), framework="pt") as handle:
        metadata = dict(handle.metadata())
    tensors |= changes.pop("tensors", {})
    save_file(tensors, str(target), metadata=metadata | changes)
    return target


def nothing_stored(client: TestClient, settings: Settings) -> None:
    assert client.get("/v1/models").json()["items"] == []
    artifacts = settings.store_dir / "artifacts"
    assert not artifacts.exists() or not any(artifacts.rglob("*"))
    assert not any((settings.store_dir / "tmp").glob("upload-*"))


def test_an_offline_checkpoint_imports_and_a_synthesis_can_name_it(
    client: TestClient, queue: RecordingQueue, offline_checkpoint: Path
) -> None:
    response = post(client, offline_checkpoint)
    assert response.status_code == 201, response.text
    model = response.json()
    assert model["source"] == "import" and model["job_id"] is None
    assert model["config"]["image_size"] == 16 and model["config"]["state_dim"] == 4
    assert model["checkpoint"]["bytes"] == offline_checkpoint.stat().st_size
    downloaded = client.get(model["checkpoint"]["url"])
    assert downloaded.content == offline_checkpoint.read_bytes()
    assert client.get("/v1/models").json()["items"][0]["id"] == model["id"]

    job = client.post("/v1/jobs", json={"type": "synthesize", "model_id": model["id"]})
    assert job.status_code == 202, job.text
    assert queue.sent == [(job.json()["id"], "synthesize")]


def test_what_is_not_our_checkpoint_is_refused_by_name(
    client: TestClient, settings: Settings, offline_checkpoint: Path, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all" * 10)
    pickled = tmp_path / "pickled.safetensors"
    pickled.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    wrong_config = json.loads(safe_open(str(offline_checkpoint), "pt").metadata()["config"])
    cases = {
        "invalid_checkpoint": [
            (junk, None),
            (pickled, None),
            (offline_checkpoint, "model.pt"),  # not sent as .safetensors
            (rewritten(offline_checkpoint, tmp_path / "a.safetensors", format="other"), None),
            (rewritten(offline_checkpoint, tmp_path / "b.safetensors", config="{"), None),
        ],
        "unsupported_checkpoint_version": [
            (rewritten(offline_checkpoint, tmp_path / "c.safetensors", format_version="9"), None)
        ],
        "checkpoint_mismatch": [
            (
                rewritten(
                    offline_checkpoint,
                    tmp_path / "d.safetensors",
                    config=json.dumps(wrong_config | {"state_dim": 5}),
                ),
                None,
            ),
            (
                rewritten(
                    offline_checkpoint,
                    tmp_path / "e.safetensors",
                    tensors={"initial_state": torch.full((1, 4), float("nan"))},
                ),
                None,
            ),
            (
                rewritten(
                    offline_checkpoint,
                    tmp_path / "f.safetensors",
                    tensors={"extra": torch.zeros(3)},
                ),
                None,
            ),
        ],
    }
    for code, files in cases.items():
        for path, name in files:
            error = assert_error(post(client, path, name), 422, code)
            assert str(tmp_path) not in error["message"]  # names the upload, not our paths
    nothing_stored(client, settings)


def test_a_checkpoint_past_the_limit_is_413(
    settings: Settings, queue: RecordingQueue, offline_checkpoint: Path
) -> None:
    small = settings.model_copy(update={"max_model_bytes": 1000})
    with TestClient(create_app(small, queue=queue)) as client:
        assert_error(post(client, offline_checkpoint), 413, "upload_too_large")
        nothing_stored(client, settings)


def test_a_checkpoint_larger_than_a_json_body_streams_in(
    client: TestClient, tmp_path: Path
) -> None:
    config = TrainConfig.model_validate({"image_size": 64, "base_channels": 32})
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, config, DynamicGenerator(config), torch.zeros(1, 100), torch.zeros(1, 0))
    assert path.stat().st_size > 2 * JSON_BODY_LIMIT
    response = post(client, path)
    assert response.status_code == 201, response.text
    assert response.json()["checkpoint"]["bytes"] == path.stat().st_size
