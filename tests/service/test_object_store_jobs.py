"""Jobs against a real S3 server with real processes and no shared filesystem: every worker
keeps its own scratch directory and finds inputs, resume state and outputs in the bucket.
Upload, train, synthesize and download (curl, by presigned URL); a worker killed mid-job and
another one finishing it from the resume state in the bucket; a store cut off mid-job."""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

import pytest

from tests.service.chaos import RedisServer, TcpProxy
from tests.service.conftest import upload
from tests.service.flows import decoded_frames
from tests.service.processes import Process, dyngen_command, wait_for
from tests.service.s3server import Bucket, MotoServer, bucket, moto_server, point_at
from tests.service.test_faults import (
    RESUME_EVERY,
    Stack,
    _epoch,
    _finished,
    _holder,
    _resumed_run,
    _stack,
    _train,
    pg_schema,
    redis_server,
)
from tests.service.test_object_store import curl

pytestmark = pytest.mark.slow
__all__ = ["bucket", "moto_server", "pg_schema", "redis_server"]  # fixtures this module uses


def _s3_stack(tmp_path: Path, schema: str, redis: RedisServer, bucket: Bucket) -> Stack:
    """A deployment whose store is the bucket: the API's local directory is its own."""
    stack = _stack(tmp_path, schema, redis)
    del stack.env["DYNGEN_STORAGE_DIR"]
    stack.env |= {
        "DYNGEN_STORAGE_URL": bucket.url,
        "DYNGEN_DATA_DIR": str(tmp_path / "host-api"),
        "DYNGEN_STORAGE_TIMEOUT_SECONDS": "3",
        "DYNGEN_STORAGE_RETRIES": "1",
    }
    return stack


def _hosts(stack: Stack, names: list[str]) -> list[Process]:
    """Workers as if on machines of their own: each with its own data and scratch directory."""
    started = []
    for name in names:
        env = stack.env | {"DYNGEN_DATA_DIR": str(stack.tmp / f"host-{name}")}
        log = stack.tmp / f"worker-{name}.log"
        started.append(Process([*dyngen_command(), "worker"], env, log))
    stack.workers += started
    for name, process in zip(names, started, strict=True):
        check = lambda p=process: " ready." in p.text()  # noqa: E731
        wait_for(f"worker {name} to be ready", check, 90, *started)
    return started


def _fetch(http: object, artifact: dict[str, str]) -> bytes:
    """An artifact by the presigned URL its route redirects to, checked against its sha256."""
    response = http.get(artifact["url"], follow_redirects=False)  # type: ignore[attr-defined]
    assert response.status_code == 307, response.text
    body, _ = curl(response.headers["location"])
    assert hashlib.sha256(body).hexdigest() == artifact["sha256"]
    return body


def test_upload_train_synthesize_and_download_through_the_bucket(
    tmp_path: Path, pg_schema: str, redis_server: RedisServer, bucket: Bucket, clip: Path
) -> None:
    stack = _s3_stack(tmp_path, pg_schema, redis_server, bucket)
    with stack, stack.client() as http:
        (worker,) = _hosts(stack, ["a"])
        video_id = upload(http, clip)["id"]
        job = _finished(http, _train(http, video_id, epochs=3), 120, worker)
        assert job["status"] == "succeeded", job
        kinds = {a["kind"]: a for a in job["artifacts"]}
        assert {"checkpoint", "reconstruction_video", "loss_curve", "metrics"} <= set(kinds)
        assert sorted(bucket.keys("artifacts/")) == sorted(
            f"artifacts/{a['id']}/{a['filename']}" for a in job["artifacts"]
        )
        _fetch(http, kinds["metrics"])

        config = {"num_videos": 1, "frames": 8, "fps": 10, "formats": ["mp4"]}
        body = {"type": "synthesize", "model_id": job["model_id"], "config": config}
        created = http.post("/v1/jobs", json=body)
        assert created.status_code == 202, created.text
        done = _finished(http, created.json()["id"], 120, worker)
        assert done["status"] == "succeeded", done
        (video,) = [a for a in done["artifacts"] if a["filename"].endswith(".mp4")]
        assert decoded_frames(_fetch(http, video)) == [(16, 16)] * 8
    assert bucket.keys("resume/") == [] and bucket.keys("tmp/") == []
    assert not (tmp_path / "shared-storage").exists()
    # the worker's scratch held the job's inputs and outputs only while it ran
    assert list((tmp_path / "host-a" / "scratch" / "jobs").iterdir()) == []


def test_a_killed_workers_job_finishes_on_another_machine_from_the_buckets_resume_state(
    tmp_path: Path, pg_schema: str, redis_server: RedisServer, bucket: Bucket, clip: Path
) -> None:
    stack = _s3_stack(tmp_path, pg_schema, redis_server, bucket)
    epochs = 3 * RESUME_EVERY
    with stack, stack.client() as http:
        a, b = _hosts(stack, ["a", "b"])
        job_id = _train(http, upload(http, clip)["id"], epochs=epochs)
        wait_for("resume state in the bucket", lambda: bucket.keys("resume/"), 90, a, b)
        wait_for("an epoch past it", lambda: _epoch(http, job_id) > RESUME_EVERY, 60, a, b)
        victim = _holder(http, job_id, [a, b])
        survivor = b if victim is a else a
        os.killpg(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait(10)
        job = _finished(http, job_id, 180, survivor)
        assert job["status"] == "succeeded", job
        _, second = _resumed_run(http, job_id, epochs)
        # the survivor never saw the victim's disk: it started from the bucket's state
        saved = (second[0]["data"]["epoch"] - 1) // RESUME_EVERY * RESUME_EVERY
        assert second[0]["data"]["epoch"] == saved + 1 and saved >= RESUME_EVERY
    assert bucket.keys("resume/") == []


def test_a_store_cut_off_mid_job_fails_it_storage_error_with_no_artifact(
    tmp_path: Path,
    pg_schema: str,
    redis_server: RedisServer,
    bucket: Bucket,
    moto_server: MotoServer,
    clip: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = TcpProxy("127.0.0.1", moto_server.port)
    stack = _s3_stack(tmp_path, pg_schema, redis_server, bucket)
    with stack, stack.client() as http:
        video_id = upload(http, clip)["id"]  # the API talks to the store directly
        point_at(monkeypatch, f"http://127.0.0.1:{proxy.port}")
        stack.env["AWS_ENDPOINT_URL_S3"] = f"http://127.0.0.1:{proxy.port}"
        (worker,) = _hosts(stack, ["a"])
        job_id = _train(http, video_id, epochs=10 * RESUME_EVERY)
        wait_for("training to run", lambda: _epoch(http, job_id) >= 2, 90, worker)
        proxy.cut()  # the next resume save finds no store
        job = _finished(http, job_id, 120, worker)
        proxy.restore()
        assert job["status"] == "failed", job
        assert job["error"]["code"] == "storage_error", job
        assert "object store" in job["error"]["message"]
        assert job["artifacts"] == []
    proxy.close()
    assert bucket.keys("artifacts/") == [] and bucket.unfinished_uploads() == []
