"""Intermediate checkpoints and worker threads with real processes: an API and two Celery
workers on Redis and PostgreSQL, nothing mocked."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.service.conftest import (
    REDIS_HOST,
    REDIS_PORT,
    TINY_TRAIN,
    free_port,
    require,
    schema_url,
    scratch_schema,
)
from tests.service.flows import decoded_frames, download, finished, ok, upload
from tests.service.processes import (
    Process,
    celery_command,
    dyngen_command,
    ready,
    run_cli,
    running,
    service_env,
    wait_for,
)
from worker.threads import available_cores


@contextmanager
def deployment(
    tmp: Path, workers: list[dict[str, str]]
) -> Iterator[tuple[httpx.Client, list[Process]]]:
    """An API and one worker per environment override, on a schema and queue of their own."""
    require("Redis", REDIS_HOST, REDIS_PORT)
    queue = f"dyngen-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    with scratch_schema("ckpt") as schema:
        env = service_env(
            tmp,
            database_url=schema_url(schema),
            broker_url=f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
            queue_name=queue,
            storage_dir=str(tmp / "shared-storage"),
            port=str(port),
        )
        run_cli(["migrate"], env)
        argv = [*celery_command(), "worker", "--pool", "solo", "-Q", queue, "--loglevel", "INFO"]
        procs = [
            Process([*argv, "-n", f"w{i}@%h"], {**env, **extra}, tmp / f"worker-{i}.log")
            for i, extra in enumerate(workers)
        ]
        api = Process([*dyngen_command(), "api"], env, tmp / "api.log")
        base = f"http://127.0.0.1:{port}"
        try:
            with running(api, *procs):
                wait_for("the API to be ready", ready(base), 60, api)
                with httpx.Client(base_url=base, timeout=10) as http:
                    yield http, [api, *procs]
        finally:
            redis.Redis(host=REDIS_HOST, port=REDIS_PORT).delete(queue)


def _intermediates(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in job["artifacts"] if a["kind"] == "intermediate_checkpoint"]


def _synthesize(http: httpx.Client, watched: list[Process], **source: str) -> dict[str, Any]:
    body = {"type": "synthesize", "config": {"num_videos": 1, "frames": 12, "fps": 10}} | source
    created = ok(http.post("/v1/jobs", json=body), 202)
    done = finished(http, created["id"], 120, *watched)
    assert done["status"] == "succeeded", done
    videos = [a for a in done["artifacts"] if a["filename"].endswith(".mp4")]
    assert decoded_frames(download(http, videos[0])) == [(16, 16)] * 12
    return done


def test_synthesis_from_a_running_trainings_checkpoint_and_a_cancelled_ones_last(
    tmp_path: Path, clip: Path
) -> None:
    keep = {"DYNGEN_KEEP_CHECKPOINTS": "2"}
    with deployment(tmp_path, [keep, keep]) as (http, watched):
        video_id = upload(http, clip)
        config = TINY_TRAIN | {"epochs": 50_000, "checkpoint_every": 20}
        body = {"type": "train", "video_ids": [video_id], "config": config}
        job_id = ok(http.post("/v1/jobs", json=body), 202)["id"]

        def three_published() -> dict[str, Any] | None:
            job: dict[str, Any] = ok(http.get(f"/v1/jobs/{job_id}"))
            return job if (job["checkpoint_epoch"] or 0) >= 60 else None

        job = wait_for("three checkpoints", three_published, 120, *watched)
        kept = _intermediates(job)
        assert len(kept) == 2 and all(a["epoch"] % 20 == 0 for a in kept), kept
        newest = max(kept, key=lambda a: a["epoch"])
        # the other worker samples from it while the first one trains on
        done = _synthesize(http, watched, checkpoint_id=newest["id"])
        assert done["checkpoint_id"] == newest["id"]
        training = ok(http.get(f"/v1/jobs/{job_id}"))
        assert training["status"] == "running", training
        assert training["progress"]["epoch"] > newest["epoch"]

        ok(http.post(f"/v1/jobs/{job_id}/cancel"), 202)
        job = finished(http, job_id, 60, *watched)
        assert job["status"] == "cancelled", job
        last = max(_intermediates(job), key=lambda a: a["epoch"])
        assert job["checkpoint_epoch"] == last["epoch"] >= newest["epoch"]
        model = ok(http.get(f"/v1/models/{job['model_id']}"))
        assert model["checkpoint"]["id"] == last["id"]
        assert model["metrics"]["checkpoint_epoch"] == last["epoch"]
        _synthesize(http, watched, model_id=job["model_id"])


@pytest.mark.parametrize("setting", ["2", None])
def test_a_worker_sets_torch_threads_from_the_setting_or_its_cores(
    tmp_path: Path, clip: Path, setting: str | None
) -> None:
    # no OMP_NUM_THREADS: with neither variable, the worker's share of the cores decides
    extra = {"OMP_NUM_THREADS": ""} | (
        {} if setting is None else {"DYNGEN_WORKER_THREADS": setting}
    )
    expected = int(setting) if setting else available_cores()
    with deployment(tmp_path, [extra]) as (http, watched):
        video_id = upload(http, clip)
        body = {"type": "train", "video_ids": [video_id], "config": TINY_TRAIN}
        job = finished(http, ok(http.post("/v1/jobs", json=body), 202)["id"], 120, *watched)
        assert job["status"] == "succeeded", job
        assert job["metrics"]["torch_threads"] == expected
        log = watched[1].text()
    assert f"torch threads per job: {expected} (" in log
