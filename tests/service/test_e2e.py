"""End to end over HTTP: real API and worker processes, no eager mode, nothing mocked.

Two setups: the deployment's (API + Celery worker on Redis + PostgreSQL) and the embedded
default (`dyngen serve`: SQLite database, Celery over SQLite, one child worker).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.service.conftest import (
    REDIS_HOST,
    REDIS_PORT,
    free_port,
    require,
    schema_url,
    scratch_schema,
)
from tests.service.flows import progress_stream_and_cancel, train_then_synthesize
from tests.service.processes import (
    Process,
    celery_command,
    dyngen_command,
    ready,
    run_cli,
    running,
    service_env,
    serving,
    wait_for,
)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """An empty schema (no tables: `dyngen migrate` makes them) in PostgreSQL's `test` db."""
    with scratch_schema("e2e") as schema:
        yield schema_url(schema)


def test_deployment_api_and_celery_worker_on_redis_and_postgres(
    pg_schema: str, tmp_path: Path, clip: Path
) -> None:
    require("Redis", REDIS_HOST, REDIS_PORT)
    queue = f"dyngen-test-{uuid.uuid4().hex[:8]}"  # a queue of our own on the shared Redis
    port = free_port()
    env = service_env(
        tmp_path,
        database_url=pg_schema,
        broker_url=f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
        queue_name=queue,
        storage_dir=str(tmp_path / "shared-storage"),
        auth="apikey",
        port=str(port),
    )
    run_cli(["migrate"], env)
    key = run_cli(["apikey", "create", "e2e"], env).strip()
    worker = Process(
        [*celery_command(), "worker", "--pool", "solo", "-Q", queue, "--loglevel", "INFO"],
        env,
        tmp_path / "worker.log",
    )
    api = Process([*dyngen_command(), "api"], env, tmp_path / "api.log")
    base = f"http://127.0.0.1:{port}"
    with running(api, worker):
        wait_for("the API to be ready", ready(base), 60, api)
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
            assert httpx.get(f"{base}/v1/videos").status_code == 401
            train_then_synthesize(http, clip, api, worker)
            progress_stream_and_cancel(http, clip, api, worker)
    redis.Redis(host=REDIS_HOST, port=REDIS_PORT).delete(queue)


def test_embedded_default_dyngen_serve(tmp_path: Path, clip: Path) -> None:
    env = service_env(tmp_path)
    with (
        serving(tmp_path, env, free_port()) as (base, serve),
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        train_then_synthesize(http, clip, serve)
        progress_stream_and_cancel(http, clip, serve)
    # uvicorn re-raises the SIGTERM it handled, after a clean shutdown of API and worker
    assert serve.proc.returncode in (0, -15), serve.tail()
    assert "Traceback" not in serve.log.read_text(), serve.tail()
    assert (tmp_path / "data" / "dyngen.sqlite").is_file()
    assert "DYNGEN_AUTH=open" in serve.log.read_text()
