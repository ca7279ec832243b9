"""API keys: every /v1 route needs one, and each key sees only its own things."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.auth import authenticate
from core.db import session_factory, session_scope
from core.settings import Settings
from tests.service.conftest import TINY_TRAIN, RecordingQueue, assert_error, new_key, upload
from tests.service.factories import finished_training


@pytest.fixture
def keyed(settings: Settings, queue: RecordingQueue) -> Iterator[tuple[TestClient, Settings]]:
    secured = settings.model_copy(update={"auth": "apikey"})
    with TestClient(create_app(secured, queue=queue)) as client:
        yield client, secured


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_every_v1_route_needs_a_key(keyed: tuple[TestClient, Settings]) -> None:
    client, _ = keyed
    for method, path in [
        ("GET", "/v1/videos"),
        ("POST", "/v1/videos"),
        ("GET", "/v1/videos/vid_0a"),
        ("GET", "/v1/videos/vid_0a/content"),
        ("DELETE", "/v1/videos/vid_0a"),
        ("GET", "/v1/jobs"),
        ("POST", "/v1/jobs"),
        ("GET", "/v1/jobs/job_0a"),
        ("POST", "/v1/jobs/job_0a/cancel"),
        ("GET", "/v1/jobs/job_0a/events"),
        ("GET", "/v1/models"),
        ("GET", "/v1/models/mdl_0a"),
        ("GET", "/v1/artifacts/art_0a"),
    ]:
        response = client.request(method, path)
        assert_error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"
    assert_error(client.get("/v1/videos", headers=_bearer("dg_wrong")), 401)
    assert_error(client.get("/v1/videos", headers={"Authorization": "Basic abc"}), 401)
    assert client.get("/healthz").status_code == 200


def test_keys_see_only_their_own(
    keyed: tuple[TestClient, Settings], clip: Path, tmp_path: Path
) -> None:
    client, settings = keyed
    alice, bob = _bearer(new_key(settings, "alice")), _bearer(new_key(settings, "bob"))
    video = upload(client, clip, **alice)
    job = client.post(
        "/v1/jobs",
        json={"type": "train", "video_ids": [video["id"]], "config": TINY_TRAIN},
        headers=alice,
    ).json()
    with session_scope(session_factory(settings.db_url)) as s:
        owner = authenticate(session=s, key=alice["Authorization"].split()[1])
        assert owner is not None
        owner_id = owner.id
    _, model_id, checkpoint = finished_training(settings, tmp_path, owner_id=owner_id)
    mine = [
        f"/v1/videos/{video['id']}",
        f"/v1/videos/{video['id']}/content",
        f"/v1/jobs/{job['id']}",
        f"/v1/jobs/{job['id']}/events",
        f"/v1/models/{model_id}",
        f"/v1/artifacts/{checkpoint.id}",
    ]
    for path in mine:
        assert client.get(path, headers=alice).status_code == 200, path
        assert_error(client.get(path, headers=bob), 404)
    for path in ("/v1/videos", "/v1/jobs", "/v1/models"):
        assert client.get(path, headers=bob).json()["items"] == []
        assert client.get(path, headers=alice).json()["items"]
    stolen = {"type": "train", "video_ids": [video["id"]], "config": TINY_TRAIN}
    assert_error(client.post("/v1/jobs", json=stolen, headers=bob), 404)
    synth = {"type": "synthesize", "model_id": model_id}
    assert_error(client.post("/v1/jobs", json=synth, headers=bob), 404)
    assert_error(client.post(f"/v1/jobs/{job['id']}/cancel", headers=bob), 404)
    assert_error(client.delete(f"/v1/videos/{video['id']}", headers=bob), 404)
    in_use = client.delete(f"/v1/videos/{video['id']}", headers=alice)
    assert_error(in_use, 409, "video_in_use")


def test_open_mode_needs_no_key_but_honours_one(client: TestClient, settings: Settings) -> None:
    key = _bearer(new_key(settings))
    assert client.get("/v1/videos").status_code == 200
    assert client.get("/v1/videos", headers=key).status_code == 200
    assert_error(client.get("/v1/videos", headers=_bearer("dg_nope")), 401)
