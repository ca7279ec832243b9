"""API keys: every /v1 route needs one, and each key sees only its own things."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from api.app import create_app
from core.auth import authenticate, revoke_api_key
from core.db import session_factory, session_scope
from core.settings import Settings
from tests.service.conftest import (
    TINY_TRAIN,
    RecordingQueue,
    assert_error,
    live_server,
    new_key,
    upload,
)
from tests.service.factories import finished_training


@pytest.fixture
def keyed(settings: Settings, queue: RecordingQueue) -> Iterator[tuple[TestClient, Settings]]:
    secured = settings.model_copy(update={"auth": "apikey"})
    with TestClient(create_app(secured, queue=queue)) as client:
        yield client, secured


JSON = {"content-type": "application/json"}


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
        ("GET", "/v1/jobs/job_0a/webhooks"),
        ("POST", "/v1/webhooks/secret"),
        ("DELETE", "/v1/jobs/job_0a"),
        ("GET", "/v1/models"),
        ("POST", "/v1/models"),
        ("GET", "/v1/models/mdl_0a"),
        ("DELETE", "/v1/models/mdl_0a"),
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


def test_a_revoked_key_is_refused(keyed: tuple[TestClient, Settings]) -> None:
    client, settings = keyed
    key = new_key(settings, "leaver")
    assert client.get("/v1/videos", headers=_bearer(key)).status_code == 200
    with session_scope(session_factory(settings.db_url)) as s:
        row = authenticate(session=s, key=key)
        assert row is not None and revoke_api_key(session=s, key_id=row.id)
    error = assert_error(client.get("/v1/videos", headers=_bearer(key)), 401, "unauthorized")
    assert error == assert_error(client.get("/v1/videos", headers=_bearer("dg_never")), 401)
    assert_error(client.post("/v1/jobs", json={}, headers=_bearer(key)), 401)


def _same_404(theirs: Response, missing: Response, their_id: str, missing_id: str) -> None:
    """Two 404s that differ only in the id asked for: nothing tells them apart."""
    assert theirs.status_code == missing.status_code == 404
    assert theirs.text == missing.text.replace(missing_id, their_id)
    drop = {"content-length", "date"}
    assert {k: v for k, v in theirs.headers.items() if k not in drop} == {
        k: v for k, v in missing.headers.items() if k not in drop
    }


def test_another_keys_ids_read_exactly_like_missing_ones(
    keyed: tuple[TestClient, Settings], clip: Path, tmp_path: Path
) -> None:
    client, settings = keyed
    alice, bob = _bearer(new_key(settings, "alice")), _bearer(new_key(settings, "bob"))
    video = upload(client, clip, **alice)["id"]
    job = client.post(
        "/v1/jobs",
        json={"type": "train", "video_ids": [video], "config": TINY_TRAIN},
        headers=alice,
    ).json()["id"]
    with session_scope(session_factory(settings.db_url)) as s:
        owner = authenticate(session=s, key=alice["Authorization"].split()[1])
        assert owner is not None
        owner_id = owner.id
    _, model, checkpoint = finished_training(settings, tmp_path, owner_id=owner_id)
    artifact = checkpoint.id
    requests: list[tuple[str, str, Any]] = [
        ("GET", "/v1/videos/{}", None),
        ("GET", "/v1/videos/{}/content", None),
        ("DELETE", "/v1/videos/{}", None),
        ("GET", "/v1/jobs/{}", None),
        ("GET", "/v1/jobs/{}/events", None),
        ("POST", "/v1/jobs/{}/cancel", None),
        ("GET", "/v1/models/{}", None),
        ("GET", "/v1/artifacts/{}", None),
    ]
    ids = {"videos": video, "jobs": job, "models": model, "artifacts": artifact}
    for method, template, _ in requests:
        their_id = ids[template.split("/")[2]]
        missing_id = their_id[:-6] + "abcdef"  # same kind and length, never issued
        theirs = client.request(method, template.format(their_id), headers=bob)
        missing = client.request(method, template.format(missing_id), headers=bob)
        _same_404(theirs, missing, their_id, missing_id)
    bodies = [
        ({"type": "train", "video_ids": [video], "config": TINY_TRAIN}, video),
        ({"type": "synthesize", "model_id": model}, model),
        (
            {
                "type": "train",
                "video_ids": [upload(client, clip, **bob)["id"]],
                "config": TINY_TRAIN,
                "mask": {"kind": "upload", "video_id": video},
            },
            video,
        ),
    ]
    for body, their_id in bodies:
        missing_id = their_id[:-6] + "abcdef"
        theirs = client.post("/v1/jobs", json=body, headers=bob)
        text = json.dumps(body).replace(their_id, missing_id)
        missing = client.post("/v1/jobs", content=text, headers=bob | JSON)
        _same_404(theirs, missing, their_id, missing_id)
    assert client.get(f"/v1/videos/{video}", headers=alice).status_code == 200


BAD_IDS = [
    "..%2F..%2Fetc%2Fpasswd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..",
    "%2e%2e",
    "%00",
    "vid_0a%00",
    "vid_0a%00.mp4",
    "%0d%0aX-Injected:%201",
    "vid_0A",
    "vid_0a%20",
    "vid_-1",
    "1 OR 1=1",
    "vid_0a'--",
    "%E2%80%AE",
    "%FF%FE",
    "x" * 300,
    "vid_" + "0" * 5000,
    "%252e%252e%252f",
    "vid_0a%2Fcontent",
    "..%5C..%5Cwindows",
]
ID_ROUTES = [
    ("GET", "/v1/videos/{}"),
    ("GET", "/v1/videos/{}/content"),
    ("DELETE", "/v1/videos/{}"),
    ("GET", "/v1/jobs/{}"),
    ("GET", "/v1/jobs/{}/events"),
    ("POST", "/v1/jobs/{}/cancel"),
    ("GET", "/v1/models/{}"),
    ("GET", "/v1/artifacts/{}"),
]


def test_ids_that_are_not_ids_are_4xx_json_in_every_segment(
    keyed: tuple[TestClient, Settings],
) -> None:
    client, settings = keyed
    key = _bearer(new_key(settings))
    for method, template in ID_ROUTES:
        for bad in BAD_IDS:
            response = client.request(method, template.format(bad), headers=key)
            assert 400 <= response.status_code < 500, (method, template, bad, response.text)
            assert_error(response, response.status_code)
            assert "x-injected" not in response.headers
            # and without a key, the same paths say 401 or 404, never 500
            bare = client.request(method, template.format(bad))
            assert bare.status_code in (401, 404, 405, 422), (template, bad, bare.text)


def test_raw_request_lines_with_traversal_reach_no_file(settings: Settings) -> None:
    secured = settings.model_copy(update={"auth": "apikey"})
    key = new_key(secured)
    with live_server(create_app(secured, queue=RecordingQueue())) as port:
        for target in (
            "/v1/videos/../../../../etc/passwd",
            "/v1/artifacts/../../etc/passwd",
            "/v1/videos/vid_0a/../../../etc/passwd",
            "/v1/artifacts/%2e%2e/%2e%2e/etc/passwd",
            "/v1/videos/%00/content",
        ):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(
                    f"GET {target} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n"
                    "Connection: close\r\n\r\n".encode()
                )
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
            status = int(answer.split(b" ", 2)[1])
            assert 400 <= status < 500, (target, answer[:300])
            assert b"root:" not in answer and b'"error"' in answer


def test_dyngen_apikey_revoke(keyed: tuple[TestClient, Settings]) -> None:
    from click.testing import CliRunner

    from cli.main import cli

    client, settings = keyed
    key = new_key(settings, "cli")
    with session_scope(session_factory(settings.db_url)) as s:
        row = authenticate(session=s, key=key)
        assert row is not None
        key_id = row.id
    env = {"DYNGEN_DATABASE_URL": settings.db_url, "DYNGEN_DATA_DIR": str(settings.data_dir)}
    runner = CliRunner()
    done = runner.invoke(cli, ["apikey", "revoke", key_id], env=env)
    assert done.exit_code == 0, done.output
    assert_error(client.get("/v1/videos", headers=_bearer(key)), 401)
    unknown = runner.invoke(cli, ["apikey", "revoke", "key_0000"], env=env)
    assert unknown.exit_code == 1 and "no API key with id" in unknown.output
