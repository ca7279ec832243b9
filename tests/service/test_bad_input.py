"""Nothing a client sends produces a 500: every refusal is a 4xx in the JSON error shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import TINY_TRAIN, assert_error, upload

JSON = {"content-type": "application/json"}
BAD_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/v1/videos?limit=abc", {}),
    ("GET", "/v1/videos?limit=99999999999999999999", {}),
    ("GET", "/v1/videos?cursor=" + "a" * 500, {}),
    ("GET", "/v1/videos/%00", {}),
    ("GET", "/v1/videos/..%2F..%2Fetc%2Fpasswd/content", {}),
    ("GET", "/v1/videos/" + "x" * 5000, {}),
    ("GET", "/v1/videos/\u00e9\u00e8", {}),
    ("DELETE", "/v1/videos/vid_nope", {}),
    ("PUT", "/v1/videos", {}),
    ("POST", "/v1/videos", {"content": b"\xff\xfe", "headers": {"content-type": "text/plain"}}),
    ("POST", "/v1/videos", {"headers": {"content-type": "multipart/form-data"}}),
    ("POST", "/v1/videos", {"headers": {"content-type": "multipart/form-data; boundary="}}),
    ("POST", "/v1/jobs", {"content": b"\xff\xfe\x00", "headers": JSON}),
    ("POST", "/v1/jobs", {"content": b"null", "headers": JSON}),
    ("POST", "/v1/jobs", {"content": b'"train"', "headers": JSON}),
    ("POST", "/v1/jobs", {"content": b"1e999999", "headers": JSON}),
    ("POST", "/v1/jobs", {"content": b"[" * 10000, "headers": JSON}),
    ("POST", "/v1/jobs", {"json": {"type": None}}),
    ("POST", "/v1/jobs", {"json": {"type": "train", "video_ids": [None]}}),
    ("POST", "/v1/jobs", {"json": {"type": "train", "video_ids": ["../etc"]}}),
    ("POST", "/v1/jobs", {"json": {"type": "train", "video_ids": ["vid_0a"] * 100}}),
    ("POST", "/v1/jobs", {"json": {"type": "train", "video_ids": ["vid_0a"], "seed": 2**70}}),
    ("POST", "/v1/jobs", {"json": {"type": "train", "video_ids": ["vid_0a"], "seed": 1.5}}),
    ("POST", "/v1/jobs", {"json": {"type": "train", "video_ids": ["vid_0a"], "config": []}}),
    ("POST", "/v1/jobs", {"json": {"type": "train", "video_ids": ["vid_0a"], "mask": 5}}),
    (
        "POST",
        "/v1/jobs",
        {"json": {"type": "train", "video_ids": ["vid_0a"], "config": {"sigma": "NaN"}}},
    ),
    (
        "POST",
        "/v1/jobs",
        {"json": {"type": "train", "video_ids": ["vid_0a"], "config": {"mlp_widths": [0]}}},
    ),
    ("POST", "/v1/jobs", {"json": {"type": "synthesize", "model_id": 7}}),
    ("POST", "/v1/jobs", {"json": {"type": "synthesize", "model_id": "mdl_0a", "seed": "x"}}),
    ("GET", "/v1/jobs?status=queued&status=running&limit=-1", {}),
    ("GET", "/v1/jobs?type=eval", {}),
    ("GET", "/v1/jobs/job_0a/events?after=abc", {}),
    ("GET", "/v1/jobs/job_0a/events", {"headers": {"last-event-id": "x"}}),
    ("POST", "/v1/jobs/job_0a/cancel", {"json": {"why": "because"}}),
    ("GET", "/v1/models?limit=1001", {}),
    ("GET", "/v1/artifacts/art_0a", {"headers": {"range": "bytes=5-1"}}),
    ("POST", "/v1/artifacts/art_0a", {}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), BAD_REQUESTS)
def test_bad_requests_are_4xx_json(
    client: TestClient, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    response = client.request(method, path, **kwargs)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] and error["message"]
    assert "Traceback" not in response.text


def test_a_huge_json_body_is_refused(client: TestClient) -> None:
    huge = b'{"type": "train", "video_ids": ["' + b"a" * 2_000_000 + b'"]}'
    response = client.post("/v1/jobs", content=huge, headers=JSON)
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"

    def chunks() -> Any:
        yield huge[:1000]
        yield huge[1000:]

    streamed = client.post("/v1/jobs", content=chunks(), headers=JSON)
    assert streamed.status_code == 413, streamed.text
    assert streamed.json()["error"]["code"] == "body_too_large"


def test_bad_requests_against_real_objects(client: TestClient, clip: Path) -> None:
    video = upload(client, clip)
    content = f"/v1/videos/{video['id']}/content"
    for headers in (
        {"range": "bytes=abc"},
        {"range": "lines=1-2"},
        {"range": "bytes=0-1,4-2"},
        {"range": "bytes=99999999-"},
        {"range": "bytes=-0"},
        {"range": "=" * 1000},
    ):
        response = client.get(content, headers=headers)
        assert response.status_code in (200, 206, 400, 416), response.text
        if response.status_code >= 400:  # in the JSON error shape, not Starlette's plain text
            assert_error(response, response.status_code)
    beyond = client.get(content, headers={"range": "bytes=99999999-"})
    assert_error(beyond, 416, "range_not_satisfiable")
    assert beyond.headers["content-range"] == f"bytes */{video['bytes']}"
    job = client.post(
        "/v1/jobs", json={"type": "train", "video_ids": [video["id"]], "config": TINY_TRAIN}
    ).json()
    # the clip as its own mask video: its 10 mask frames are the whole clip's, taken from
    # frame 1 every 2nd like the 4 training frames (test_attacks has the masks that can't fit)
    mask_is_video = {"kind": "upload", "video_id": video["id"]}
    mask_job = client.post(
        "/v1/jobs",
        json={
            "type": "train",
            "video_ids": [video["id"]],
            "config": TINY_TRAIN | {"frames": 4, "start": 1, "every": 2},
            "mask": mask_is_video,
        },
    )
    assert mask_job.status_code == 202, mask_job.text
    for path in (f"/v1/jobs/{job['id']}/events?after=99999999999999999999999",):
        assert client.get(path).status_code == 422
    synth_on_a_job = client.post("/v1/jobs", json={"type": "synthesize", "model_id": job["id"]})
    assert synth_on_a_job.status_code == 404
