"""Jobs over HTTP: creation, validation, listing, cancel, events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from tests.service.conftest import TINY_TRAIN, RecordingQueue, assert_error, upload
from tests.service.factories import finished_training


@pytest.fixture
def video_id(client: TestClient, clip: Path) -> str:
    return str(upload(client, clip)["id"])


def _train(client: TestClient, video_id: str, **extra: Any) -> Any:
    body = {"type": "train", "video_ids": [video_id], "config": TINY_TRAIN} | extra
    return client.post("/v1/jobs", json=body)


def test_a_train_job_is_queued_after_commit(
    client: TestClient, queue: RecordingQueue, video_id: str
) -> None:
    response = _train(client, video_id, seed=3)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued" and job["type"] == "train" and job["seed"] == 3
    assert job["progress"] == {
        "epoch": None,
        "epochs": 3,
        "fraction": 0.0,
        "loss": None,
        "eta_seconds": None,
    }
    assert job["error"] is None and job["artifacts"] == [] and job["model_id"].startswith("mdl_")
    assert job["config"]["image_size"] == 16 and job["config"]["sigma"] == 1.0
    assert queue.sent == [(job["id"], "train")]
    assert client.get(f"/v1/jobs/{job['id']}").json() == job


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "train", "video_ids": ["vid_0a"], "colour": "red"}, "colour"),
        ({"type": "train", "video_ids": ["vid_0a"], "config": {"epochs": 0}}, "config.epochs"),
        ({"type": "train", "video_ids": ["vid_0a"], "config": {"image_size": 20}}, "config"),
        ({"type": "train", "video_ids": ["vid_0a"], "config": {"frames": "many"}}, "config"),
        ({"type": "train", "video_ids": []}, "video_ids"),
        ({"type": "train", "video_ids": "vid_0a"}, "video_ids"),
        ({"type": "train", "video_ids": ["vid_0a"], "seed": -1}, "seed"),
        ({"type": "train", "video_ids": ["vid_0a"], "mask": {"kind": "file", "path": "/"}}, "mask"),
        ({"type": "train", "video_ids": ["vid_0a"], "mask": {"kind": "regions"}}, "mask.boxes"),
        (
            {"type": "train", "video_ids": ["vid_0a"], "config": {"warm_start": "pca"}}
            | {"mask": {"kind": "missing_frames", "frames": [1]}},
            "mask",
        ),
        (
            {"type": "train", "video_ids": ["vid_0a"], "config": {"method": "lds"}}
            | {"mask": {"kind": "missing_frames", "frames": [1]}},
            "mask",
        ),
        ({"type": "dance"}, "body"),
        ({"type": "synthesize", "model_id": "mdl_0a", "config": {"formats": ["avi"]}}, "config"),
        ({"type": "synthesize", "model_id": "mdl_0a", "config": {"num_videos": 0}}, "config"),
        ([1, 2], "body"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(client: TestClient, body: Any, field: str) -> None:
    error = assert_error(client.post("/v1/jobs", json=body), 422, "validation_error")
    assert any(d["field"].startswith(field) or field == "body" for d in error["details"]), error
    assert error["message"].split(":")[0]


def test_a_mask_with_lds_or_a_pca_warm_start_is_refused_naming_why(client: TestClient) -> None:
    mask = {"kind": "missing_frames", "frames": [1]}
    for config, reason in [
        ({"warm_start": "pca"}, "warm_start pca learns from complete videos only"),
        ({"method": "lds"}, "method lds learns from complete videos only"),
    ]:
        body = {"type": "train", "video_ids": ["vid_0a"], "config": config, "mask": mask}
        error = assert_error(client.post("/v1/jobs", json=body), 422, "validation_error")
        assert reason in error["message"], error


def test_malformed_json_and_wrong_content(client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    assert_error(client.post("/v1/jobs", content=b"{bad", headers=headers), 400, "malformed_json")
    assert client.post("/v1/jobs", content=b"", headers=headers).status_code == 422
    assert client.post("/v1/jobs", content=b"x=1").status_code in (400, 415, 422)


def test_unknown_ids_are_404(client: TestClient, video_id: str) -> None:
    assert_error(_train(client, "vid_00aa"), 404, "not_found")
    mask = {"kind": "upload", "video_id": "vid_00bb"}
    assert_error(_train(client, video_id, mask=mask), 404)
    synth = {"type": "synthesize", "model_id": "mdl_00cc"}
    assert_error(client.post("/v1/jobs", json=synth), 404)
    for path in ("/v1/jobs/job_00dd", "/v1/jobs/job_00dd/events", "/v1/models/mdl_00ee"):
        assert_error(client.get(path), 404)
    assert_error(client.post("/v1/jobs/job_00dd/cancel"), 404)
    assert_error(client.get("/v1/artifacts/art_00ff"), 404)
    assert_error(client.get("/v1/nothing-here"), 404)


def test_config_beyond_the_server_limits_or_the_clip(client: TestClient, video_id: str) -> None:
    error = assert_error(_train(client, video_id, config=TINY_TRAIN | {"epochs": 200_000}), 422)
    assert "config.epochs" in error["message"]
    error = assert_error(_train(client, video_id, config=TINY_TRAIN | {"frames": 11}), 422)
    assert error["code"] == "video_too_short" and "10 frames" in error["message"]


def test_synthesis_needs_a_finished_model(
    client: TestClient, settings: Settings, tmp_path: Path, video_id: str, queue: RecordingQueue
) -> None:
    pending = _train(client, video_id).json()
    synth = {"type": "synthesize", "model_id": pending["model_id"]}
    error = assert_error(client.post("/v1/jobs", json=synth), 409, "model_not_ready")
    assert error["details"]["job_id"] == pending["id"]
    _, model_id, checkpoint = finished_training(settings, tmp_path)
    model = client.get(f"/v1/models/{model_id}").json()
    assert model["checkpoint"]["sha256"] == checkpoint.sha256
    assert [m["id"] for m in client.get("/v1/models").json()["items"]] == [model_id]
    config = {"num_videos": 1, "frames": 16, "formats": ["mp4", "gif"]}
    response = client.post(
        "/v1/jobs", json={"type": "synthesize", "model_id": model_id, "config": config}
    )
    assert response.status_code == 202, response.text
    assert response.json()["config"]["formats"] == ["mp4", "gif"]
    assert queue.sent[-1] == (response.json()["id"], "synthesize")
    too_many = {"type": "synthesize", "model_id": model_id, "config": {"num_videos": 256}}
    too_many["config"]["frames"] = 100_000
    assert_error(client.post("/v1/jobs", json=too_many), 422, "limit_exceeded")


def test_list_filters_and_pages(client: TestClient, video_id: str) -> None:
    ids = [_train(client, video_id).json()["id"] for _ in range(3)]
    client.post(f"/v1/jobs/{ids[0]}/cancel")
    page = client.get("/v1/jobs", params={"limit": 1, "status": "queued"}).json()
    assert [j["id"] for j in page["items"]] == [ids[2]]
    params = {"limit": 5, "cursor": page["next_cursor"], "status": "queued"}
    page = client.get("/v1/jobs", params=params).json()
    assert [j["id"] for j in page["items"]] == [ids[1]] and page["next_cursor"] is None
    everything = client.get("/v1/jobs").json()["items"]
    assert [j["id"] for j in everything] == ids[::-1]
    cancelled = client.get("/v1/jobs", params={"status": "cancelled", "type": "train"}).json()
    assert [j["id"] for j in cancelled["items"]] == [ids[0]]
    assert_error(client.get("/v1/jobs", params={"status": "sleeping"}), 422)
    assert_error(client.get("/v1/jobs", params={"limit": 0}), 422)


def test_cancel_and_events(client: TestClient, video_id: str) -> None:
    job = _train(client, video_id).json()
    cancelled = client.post(f"/v1/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    assert_error(client.post(f"/v1/jobs/{job['id']}/cancel"), 409, "job_finished")
    events = client.get(f"/v1/jobs/{job['id']}/events").json()
    assert [e["data"]["status"] for e in events["items"]] == ["queued", "cancelled"]
    later = client.get(f"/v1/jobs/{job['id']}/events", params={"after": events["last_id"]})
    assert later.json() == {"items": [], "last_id": events["last_id"]}
    first = events["items"][0]["id"]
    with client.stream(
        "GET", f"/v1/jobs/{job['id']}/events", headers={"Accept": "text/event-stream"}
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        text = "".join(stream.iter_text())
    assert f"id: {first}\nevent: status" in text and "event: end" in text
    assert_error(client.get(f"/v1/jobs/{job['id']}/events", params={"after": -1}), 422)


def test_a_dead_broker_fails_the_job_with_503(
    client: TestClient, queue: RecordingQueue, video_id: str
) -> None:
    queue.broken = True
    assert_error(_train(client, video_id), 503, "queue_unavailable")
    failed = client.get("/v1/jobs", params={"status": "failed"}).json()["items"]
    assert failed[0]["error"]["code"] == "queue_unavailable"
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["broker"].startswith("error")
    assert client.get("/healthz").json()["status"] == "ok"


def test_a_masked_job_gets_the_recovery_defaults_unless_it_names_them(
    client: TestClient, video_id: str
) -> None:
    mask = {"kind": "missing_frames", "frames": [2, 3]}
    masked = _train(client, video_id, mask=mask)
    assert masked.status_code == 202, masked.text
    named = _train(client, video_id, mask=mask, config=TINY_TRAIN | {"sigma": 2.0})
    plain = _train(client, video_id)
    assert masked.json()["config"]["sigma"] == 0.5  # the authors' value, as `dyngen recover`
    assert masked.json()["config"]["fill_warmup"] == 1.0
    assert named.json()["config"]["sigma"] == 2.0
    assert plain.json()["config"]["sigma"] == 1.0
    assert plain.json()["config"]["fill_warmup"] == 0.0
    # a masked job holds visible pixels out to fit the recovery blend; a plain one doesn't
    assert (masked.json()["config"]["holdout"], plain.json()["config"]["holdout"]) == (0.1, 0.0)


def test_an_unset_frame_count_is_fitted_to_the_shortest_video(
    client: TestClient, clip: Path
) -> None:
    short = str(upload(client, clip)["id"])  # the 10-frame test clip
    config = {k: v for k, v in TINY_TRAIN.items() if k != "frames"}
    job = _train(client, short, config=config)
    assert job.status_code == 202, job.text
    assert job.json()["config"]["frames"] == 10
    asked = _train(client, short, config=config | {"frames": 60})
    assert_error(asked, 422, "video_too_short")


def test_event_ids_are_whole_numbers_in_digits(client: TestClient, video_id: str) -> None:
    events = f"/v1/jobs/{_train(client, video_id).json()['id']}/events"
    for params, headers in [({"after": "3.0"}, {}), ({}, {"Last-Event-ID": "3.0"})]:
        response = client.get(events, params=params, headers=headers)
        assert_error(response, 422, "validation_error")
    assert client.get(events, params={"after": "3"}, headers={"Last-Event-ID": "2"}).is_success
