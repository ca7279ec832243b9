"""`dyngen worker-health` (the compose healthcheck) against a real worker: healthy while it is
busy training (a solo worker answers no broker ping then), unhealthy once it is frozen."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import migrations
from api.app import create_app
from core.settings import Settings
from tests.service.conftest import (
    REDIS_HOST,
    REDIS_PORT,
    TINY_TRAIN,
    require,
    schema_url,
    scratch_schema,
    upload,
)
from tests.service.processes import ROOT, Process, dyngen_command, service_env, wait_for

pytestmark = pytest.mark.slow
STALE_SECONDS = 3.0


def _health(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [*dyngen_command(), "worker-health"]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def _job(client: TestClient, job_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
    return body


def test_the_health_check_passes_during_a_long_job_and_fails_when_frozen(
    tmp_path: Path, clip: Path
) -> None:
    require("Redis", REDIS_HOST, REDIS_PORT)
    with scratch_schema("health") as schema:
        url = schema_url(schema)
        migrations.upgrade(url)
        env = service_env(
            tmp_path,
            database_url=url,
            broker_url=f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
            queue_name=f"health-{uuid.uuid4().hex[:8]}",
            storage_dir=str(tmp_path / "storage"),
            worker_health_file=str(tmp_path / "worker.health"),
            worker_stale_seconds=str(STALE_SECONDS),
        )
        # 1. no worker yet: unhealthy, one line saying why
        before = _health(env)
        assert before.returncode != 0 and "no health file" in before.stderr, before
        values = {k.removeprefix("DYNGEN_").lower(): v for k, v in env.items()}
        settings = Settings(**{k: v for k, v in values.items() if k in Settings.model_fields})
        worker = Process([*dyngen_command(), "worker"], env, tmp_path / "worker.log")
        try:
            with TestClient(create_app(settings)) as client:
                _check_busy_then_frozen(client, worker, env, clip)
        finally:
            worker.stop()


def _check_busy_then_frozen(
    client: TestClient, worker: Process, env: dict[str, str], clip: Path
) -> None:
    video = upload(client, clip)
    config = TINY_TRAIN | {"epochs": 100_000}
    job = client.post(
        "/v1/jobs", json={"type": "train", "video_ids": [video["id"]], "config": config}
    )
    assert job.status_code == 202, job.text
    job_id = job.json()["id"]
    running = lambda: _job(client, job_id)["progress"]["epoch"]  # noqa: E731
    wait_for("the job to train", running, 120, worker)
    # 2. busy with the job for longer than the stale bound: healthy at every look
    until = time.monotonic() + 2 * STALE_SECONDS
    while time.monotonic() < until:
        done = _health(env)
        assert done.returncode == 0 and "healthy" in done.stdout, (done, worker.tail())
        time.sleep(0.5)
    assert _job(client, job_id)["status"] == "running"
    # 3. frozen (SIGSTOP: alive, but nothing runs): unhealthy once the file is stale
    os.killpg(worker.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(STALE_SECONDS + 1.5)
        frozen = _health(env)
        assert frozen.returncode != 0 and "unhealthy" in frozen.stderr, frozen
        assert len(frozen.stderr.strip().splitlines()) == 1
    finally:
        os.killpg(worker.proc.pid, signal.SIGCONT)
    # 4. thawed: healthy again
    wait_for("the worker to be healthy again", lambda: _health(env).returncode == 0, 30, worker)
    assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
