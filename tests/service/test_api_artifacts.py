"""Artifact downloads: whole, by Range, conditional on the sha256 ETag; /docs is served."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from core.settings import Settings
from core.storage import ArtifactStore
from tests.service.conftest import assert_error
from tests.service.factories import finished_training


def test_download_whole_ranged_and_conditional(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    job_id, _, artifact = finished_training(settings, tmp_path)
    listed = client.get(f"/v1/jobs/{job_id}").json()["artifacts"]
    assert listed == [
        {
            "id": artifact.id,
            "kind": "checkpoint",
            "filename": "model.safetensors",
            "media_type": "application/octet-stream",
            "bytes": 10240,
            "sha256": artifact.sha256,
            "url": f"/v1/artifacts/{artifact.id}",
            "epoch": None,  # only a training's intermediate checkpoints have one
        }
    ]
    whole = client.get(listed[0]["url"])
    assert whole.status_code == 200 and len(whole.content) == 10240
    assert whole.headers["etag"] == f'"{artifact.sha256}"'
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-disposition"] == 'attachment; filename="model.safetensors"'
    tail = client.get(listed[0]["url"], headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == whole.content[-100:]
    same = client.get(listed[0]["url"], headers={"If-None-Match": whole.headers["etag"]})
    assert same.status_code == 304 and same.content == b""
    changed = client.get(listed[0]["url"], headers={"If-None-Match": '"other"'})
    assert changed.status_code == 200
    assert client.get(listed[0]["url"], headers={"Range": "bytes=abc"}).status_code in (200, 400)
    ArtifactStore(settings.store_dir).delete(artifact.storage_key)
    assert_error(client.get(listed[0]["url"]), 410, "content_gone")


def test_openapi_and_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {
        "/v1/videos",
        "/v1/jobs",
        "/v1/jobs/{job_id}/events",
        "/v1/artifacts/{artifact_id}",
    } <= set(spec["paths"])
    upload_body = spec["paths"]["/v1/videos"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload_body
    assert {"VideoRead", "JobRead", "TrainJobCreate", "ErrorBody"} <= set(
        spec["components"]["schemas"]
    )
    assert client.get("/docs").status_code == 200
