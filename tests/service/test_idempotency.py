"""Idempotency-Key on POST /v1/jobs and POST /v1/videos: a retry gets the first answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.db import session_factory, session_scope
from core.idempotency import purge_expired_keys
from core.settings import Settings
from tests.service.conftest import (
    TINY_TRAIN,
    RecordingQueue,
    assert_error,
    live_server,
    new_key,
    upload,
    write_clip,
)


@pytest.fixture
def video_id(client: TestClient, clip: Path) -> str:
    return str(upload(client, clip)["id"])


def _train(video_id: str, seed: int = 0) -> dict[str, Any]:
    return {"type": "train", "video_ids": [video_id], "config": TINY_TRAIN, "seed": seed}


def _post(client: TestClient, body: dict[str, Any], key: str, **headers: str) -> httpx.Response:
    return client.post("/v1/jobs", json=body, headers={"Idempotency-Key": key, **headers})


def test_the_same_key_and_body_twice_make_one_job(
    client: TestClient, queue: RecordingQueue, video_id: str
) -> None:
    first = _post(client, _train(video_id), "retry-1")
    second = _post(client, _train(video_id), "retry-1")
    assert first.status_code == second.status_code == 202, second.text
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert [j["id"] for j in client.get("/v1/jobs").json()["items"]] == [first.json()["id"]]
    assert queue.sent == [(first.json()["id"], "train")]
    # another key is another request
    third = _post(client, _train(video_id), "retry-2")
    assert third.status_code == 202 and third.json()["id"] != first.json()["id"]


def test_the_same_key_with_another_body_is_refused(client: TestClient, video_id: str) -> None:
    assert _post(client, _train(video_id), "k").status_code == 202
    error = assert_error(
        _post(client, _train(video_id, seed=5), "k"), 422, "idempotency_key_reused"
    )
    assert error["details"] == [{"field": "Idempotency-Key"}]
    assert len(client.get("/v1/jobs").json()["items"]) == 1


def test_a_failed_request_gives_its_key_back(client: TestClient, video_id: str) -> None:
    assert_error(_post(client, _train("vid_00aa"), "k"), 404, "not_found")
    assert _post(client, _train(video_id), "k").status_code == 202


def test_keys_are_per_api_key(
    settings: Settings, queue: RecordingQueue, clip: Path, tmp_path: Path
) -> None:
    secured = settings.model_copy(update={"auth": "apikey"})
    alice = {"Authorization": f"Bearer {new_key(secured, 'alice')}"}
    bob = {"Authorization": f"Bearer {new_key(secured, 'bob')}"}
    with TestClient(create_app(secured, queue=queue)) as client:
        ids = [
            _post(client, _train(upload(client, clip, **who)["id"]), "same", **who).json()["id"]
            for who in (alice, bob)
        ]
    assert len(set(ids)) == 2 and len(queue.sent) == 2


def test_malformed_keys_are_422(client: TestClient, video_id: str) -> None:
    for key in ("x" * 256, "has space", ""):
        response = _post(client, _train(video_id), key)
        assert_error(response, 422, "validation_error")
    assert client.get("/v1/jobs").json()["items"] == []


def test_an_upload_retried_with_its_key_is_one_video(
    client: TestClient, settings: Settings, clip: Path, tmp_path: Path
) -> None:
    headers = {"Idempotency-Key": "upload-1"}
    first = upload(client, clip, **headers)
    with clip.open("rb") as f:
        again = client.post("/v1/videos", files={"file": (clip.name, f)}, headers=headers)
    assert again.status_code == 201 and again.json() == first
    assert again.headers["idempotent-replayed"] == "true"
    other = write_clip(tmp_path / "other.mp4", frames=12)
    with other.open("rb") as f:
        refused = client.post("/v1/videos", files={"file": (clip.name, f)}, headers=headers)
    assert_error(refused, 422, "idempotency_key_reused")
    with clip.open("rb") as f:  # the same bytes under another file name: another request
        renamed = client.post("/v1/videos", files={"file": ("b.mp4", f)}, headers=headers)
    assert_error(renamed, 422, "idempotency_key_reused")
    assert [v["id"] for v in client.get("/v1/videos").json()["items"]] == [first["id"]]
    stored = [p for p in settings.store_dir.rglob("*") if p.is_file()]
    assert len(stored) == 1, stored  # the retries' staged files were deleted


def test_concurrent_duplicates_create_one_job(
    settings: Settings, queue: RecordingQueue, clip: Path
) -> None:
    with live_server(create_app(settings, queue=queue)) as port:
        base = f"http://127.0.0.1:{port}"
        with clip.open("rb") as f:
            video = httpx.post(f"{base}/v1/videos", files={"file": (clip.name, f)}, timeout=30)
        body = _train(video.json()["id"])
        start = threading.Barrier(6)
        answers: list[httpx.Response] = []

        def send() -> None:
            start.wait()
            headers = {"Idempotency-Key": "race"}
            answers.append(httpx.post(f"{base}/v1/jobs", json=body, headers=headers, timeout=30))

        threads = [threading.Thread(target=send) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        jobs = httpx.get(f"{base}/v1/jobs", timeout=10).json()["items"]
    assert len(jobs) == 1 and len(queue.sent) == 1
    for answer in answers:
        if answer.status_code == 202:
            assert answer.json()["id"] == jobs[0]["id"]
        else:
            assert_error(answer, 409, "idempotency_key_in_progress")
    assert sum(a.status_code == 202 for a in answers) >= 1


@pytest.fixture
def short_lived(settings: Settings, queue: RecordingQueue) -> Iterator[TestClient]:
    brief = settings.model_copy(update={"idempotency_ttl_seconds": 1.0})
    with TestClient(create_app(brief, queue=queue)) as client:
        yield client


def test_keys_expire_and_are_swept(short_lived: TestClient, settings: Settings, clip: Path) -> None:
    video_id = upload(short_lived, clip)["id"]
    first = _post(short_lived, _train(video_id), "k").json()
    time.sleep(1.2)
    later = _post(short_lived, _train(video_id, seed=9), "k")
    assert later.status_code == 202 and later.json()["id"] != first["id"]
    with session_scope(session_factory(settings.db_url)) as session:
        assert purge_expired_keys(session=session, ttl_seconds=3600) == 0
        time.sleep(1.2)
        assert purge_expired_keys(session=session, ttl_seconds=1.0) == 1
