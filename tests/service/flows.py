"""What a user does over HTTP, as steps the end-to-end tests share."""

from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path
from typing import Any

import av
import httpx

from tests.service.conftest import TINY_TRAIN
from tests.service.processes import Process, wait_for

TERMINAL = ("succeeded", "failed", "cancelled")


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The JSON body of a response that must have this status (else show what came back)."""
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()


def finished(http: httpx.Client, job_id: str, timeout: float, *watched: Process) -> dict[str, Any]:
    """Poll the job until it ends."""

    def check() -> dict[str, Any] | None:
        job: dict[str, Any] = ok(http.get(f"/v1/jobs/{job_id}"))
        return job if job["status"] in TERMINAL else None

    return dict(wait_for(f"job {job_id} to finish", check, timeout, *watched))


def download(http: httpx.Client, artifact: dict[str, Any]) -> bytes:
    """Fetch an artifact and check it against its recorded sha256."""
    response = http.get(artifact["url"])
    assert response.status_code == 200, response.text
    assert hashlib.sha256(response.content).hexdigest() == artifact["sha256"]
    assert response.headers["etag"] == f'"{artifact["sha256"]}"'
    return response.content


def decoded_frames(data: bytes) -> list[tuple[int, int]]:
    """The (width, height) of every frame of an encoded video."""
    with av.open(io.BytesIO(data)) as container:
        return [(f.width, f.height) for f in container.decode(video=0)]


def upload(http: httpx.Client, clip: Path) -> str:
    with clip.open("rb") as f:
        response = http.post("/v1/videos", files={"file": (clip.name, f, "video/mp4")})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def train_then_synthesize(http: httpx.Client, clip: Path, *watched: Process) -> None:
    """Upload, train a tiny model, synthesize, download and decode the mp4."""
    video_id = upload(http, clip)
    body = {"type": "train", "video_ids": [video_id], "config": TINY_TRAIN, "seed": 1}
    job = ok(http.post("/v1/jobs", json=body), 202)
    assert job["status"] == "queued", job
    job = finished(http, job["id"], 120, *watched)
    assert job["status"] == "succeeded", job
    assert job["progress"]["epoch"] == 3 and job["progress"]["fraction"] == 1.0
    kinds = {a["kind"]: a for a in job["artifacts"]}
    assert {"checkpoint", "reconstruction_video", "loss_curve", "metrics"} <= set(kinds)
    checkpoint = download(http, kinds["checkpoint"])
    header = int.from_bytes(checkpoint[:8], "little")
    assert "dyngen" in checkpoint[8 : 8 + header].decode()  # a safetensors file of ours
    model = ok(http.get(f"/v1/models/{job['model_id']}"))
    assert model["checkpoint"]["id"] == kinds["checkpoint"]["id"]

    config = {"num_videos": 1, "frames": 16, "fps": 10, "formats": ["mp4", "gif"]}
    synth = {"type": "synthesize", "model_id": job["model_id"], "config": config}
    created = http.post("/v1/jobs", json=synth)
    assert created.status_code == 202, created.text
    done = finished(http, created.json()["id"], 60, *watched)
    assert done["status"] == "succeeded", done
    videos = [a for a in done["artifacts"] if a["filename"].endswith(".mp4")]
    assert len(videos) == 1 and videos[0]["media_type"] == "video/mp4"
    assert decoded_frames(download(http, videos[0])) == [(16, 16)] * 16


def progress_stream_and_cancel(http: httpx.Client, clip: Path, *watched: Process) -> None:
    """A long training: progress moves, /events streams, polls stay quick, cancel stops it."""
    video_id = upload(http, clip)
    config = TINY_TRAIN | {"epochs": 20_000}
    body = {"type": "train", "video_ids": [video_id], "config": config}
    job_id = ok(http.post("/v1/jobs", json=body), 202)["id"]

    def epoch() -> int:
        return int(ok(http.get(f"/v1/jobs/{job_id}"))["progress"]["epoch"] or 0)

    first = wait_for("training to report epochs", lambda: epoch() >= 2 and epoch(), 60, *watched)
    slowest = 0.0
    for _ in range(10):
        began = time.monotonic()
        later = epoch()
        slowest = max(slowest, time.monotonic() - began)
        time.sleep(0.05)
    assert later > first, "progress did not move"
    assert slowest < 1.0, f"a poll took {slowest:.2f}s while the worker trained"

    seen: list[dict[str, Any]] = []
    with http.stream(
        "GET", f"/v1/jobs/{job_id}/events", headers={"Accept": "text/event-stream"}
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line.removeprefix("data: ")))
            if sum(e["kind"] == "progress" for e in seen) >= 5:
                break
    assert seen[0]["data"]["status"] == "queued"
    epochs = [e["data"]["epoch"] for e in seen if e["kind"] == "progress"]
    assert epochs == sorted(epochs) and len(set(epochs)) == len(epochs)

    cancelled = ok(http.post(f"/v1/jobs/{job_id}/cancel"), 202)
    assert cancelled["cancel_requested"] and cancelled["status"] == "running"
    at_cancel = cancelled["progress"]["epoch"]
    job = finished(http, job_id, 30, *watched)
    assert job["status"] == "cancelled", job
    assert job["progress"]["epoch"] <= at_cancel + 1, (at_cancel, job["progress"])
    assert job["progress"]["epoch"] < 20_000
