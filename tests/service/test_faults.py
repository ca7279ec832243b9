"""Faults with real processes: workers killed or stopped mid-training, Redis losing its data,
an API killed mid-upload, PostgreSQL cut off, SQLite shared by API and worker, failing jobs.

Nothing is mocked: `dyngen worker` / `dyngen api` / `dyngen serve` processes, real
PostgreSQL, a redis-server of the test's own. Leases are 5 s and workers sweep every second,
so what takes minutes in a deployment takes seconds here.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

import migrations
from api.app import create_app
from core.settings import Settings
from tests.service.chaos import RedisServer, TcpProxy
from tests.service.conftest import (
    PG_BASE,
    PG_HOST,
    PG_PORT,
    TINY_TRAIN,
    free_port,
    scratch_schema,
    upload,
    write_clip,
)
from tests.service.processes import (
    Process,
    dyngen_command,
    ready,
    run_cli,
    running,
    service_env,
    wait_for,
)

pytestmark = pytest.mark.slow
RESUME_EVERY = 10
TERMINAL = ("succeeded", "failed", "cancelled")


# -- setups -----------------------------------------------------------------------------


def _schema_url(schema: str, port: int = PG_PORT) -> str:
    base = PG_BASE.replace(f":{PG_PORT}/", f":{port}/")
    return f"{base}?options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema in PostgreSQL's `test` database, migrated; its name."""
    with scratch_schema("faults") as schema:
        migrations.upgrade(_schema_url(schema))
        yield schema


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    yield server
    server.kill()


class Stack:
    """One deployment: PostgreSQL + the test's Redis + shared storage, its workers, an API."""

    def __init__(self, tmp: Path, database_url: str, broker_url: str) -> None:
        self.tmp = tmp
        values = {
            "database_url": database_url,
            "broker_url": broker_url,
            "storage_dir": str(tmp / "shared-storage"),
            "queue_name": f"faults-{uuid.uuid4().hex[:8]}",
            "sweep_seconds": "1",
            "resume_every": str(RESUME_EVERY),
        }
        self.env = service_env(tmp, **values)
        self.workers: list[Process] = []

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_exc: object) -> None:
        for process in self.workers:
            process.stop()

    def settings(self) -> Settings:
        """The API's settings, from the same variables the processes get."""
        values = {k.removeprefix("DYNGEN_").lower(): v for k, v in self.env.items()}
        return Settings(**{k: v for k, v in values.items() if k in Settings.model_fields})

    def client(self) -> TestClient:
        """The API in this process: real database, real broker (a CeleryQueue)."""
        return TestClient(create_app(self.settings()))

    def worker(self, name: str, preexec: Callable[[], None] | None = None) -> Process:
        """Start `dyngen worker` and wait until Celery says it is ready."""
        return self.start_workers([name], preexec)[0]

    def start_workers(
        self, names: list[str], preexec: Callable[[], None] | None = None
    ) -> list[Process]:
        """Start several `dyngen worker`s at once and wait until each says it is ready."""
        started = []
        for name in names:
            log = self.tmp / f"worker-{name}.log"
            started.append(Process([*dyngen_command(), "worker"], self.env, log, preexec))
        self.workers += started
        for name, process in zip(names, started, strict=True):
            check = lambda p=process: " ready." in p.text()  # noqa: E731
            wait_for(f"worker {name} to be ready", check, 90, *started)
        return started


def _stack(tmp_path: Path, schema: str, redis_server: RedisServer) -> Stack:
    return Stack(tmp_path, _schema_url(schema), redis_server.url)


# -- what a test reads ------------------------------------------------------------------


def _job(http: TestClient | httpx.Client, job_id: str) -> dict[str, Any]:
    response = http.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _epoch(http: TestClient, job_id: str) -> int:
    return int(_job(http, job_id)["progress"]["epoch"] or 0)


def _events(http: TestClient | httpx.Client, job_id: str) -> list[dict[str, Any]]:
    """The job's whole history, oldest first."""
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        page = http.get(f"/v1/jobs/{job_id}/events", params={"after": after}).json()
        events += page["items"]
        if not page["items"]:
            return events
        after = page["last_id"]


def _finished(
    http: TestClient | httpx.Client, job_id: str, timeout: float, *watched: Process
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        job = _job(http, job_id)
        return job if job["status"] in TERMINAL else None

    return dict(wait_for(f"job {job_id} to finish", check, timeout, *watched))


def _train(http: TestClient | httpx.Client, video_id: str, **config: Any) -> str:
    body = {"type": "train", "video_ids": [video_id], "config": TINY_TRAIN | config, "seed": 3}
    response = http.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _attempts(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Progress events split by the `running` status event that began each attempt."""
    attempts: list[list[dict[str, Any]]] = []
    for event in events:
        if event["kind"] == "status" and event["data"].get("status") == "running":
            attempts.append([])
        elif event["kind"] == "progress":
            assert attempts, f"progress before any attempt started: {event}"
            attempts[-1].append(event)
    return attempts


def _holder(http: TestClient, job_id: str, workers: list[Process]) -> Process:
    """The worker process whose attempt is running the job now (from its `running` event)."""
    started = [e for e in _events(http, job_id) if e["data"].get("status") == "running"]
    pid = int(started[-1]["data"]["worker"].split(":")[1])
    return next(w for w in workers if w.proc.pid == pid)


def _resumed_run(
    http: TestClient, job_id: str, epochs: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Check a job that ran in two attempts, the second resuming; the two attempts' epochs."""
    job = _job(http, job_id)
    assert job["status"] == "succeeded", job
    assert job["progress"]["epoch"] == epochs and job["progress"]["fraction"] == 1.0
    first, second = _attempts(_events(http, job_id))  # exactly two attempts: no third runner
    first_epochs = [e["data"]["epoch"] for e in first]
    second_epochs = [e["data"]["epoch"] for e in second]
    assert first_epochs == list(range(1, len(first_epochs) + 1))
    # the second attempt continues where the first one's resume state left off
    assert second_epochs == list(range(second_epochs[0], epochs + 1))
    # (+2: a kill can land after an epoch's state was saved but before its progress was)
    assert 1 < second_epochs[0] <= first_epochs[-1] + 2, (first_epochs[-1], second_epochs[0])
    return first, second


# -- 1. SIGKILL -------------------------------------------------------------------------


def test_sigkilled_worker_job_resumes_on_another_worker_from_saved_state(
    tmp_path: Path, pg_schema: str, redis_server: RedisServer, clip: Path
) -> None:
    stack = _stack(tmp_path, pg_schema, redis_server)
    epochs = 200
    with stack, stack.client() as http:
        a, b = stack.start_workers(["a", "b"])
        job_id = _train(http, upload(http, clip)["id"], epochs=epochs)
        wait_for("a few epochs", lambda: _epoch(http, job_id) >= RESUME_EVERY + 5, 60, a, b)
        victim = _holder(http, job_id, [a, b])
        survivor = b if victim is a else a
        os.killpg(victim.proc.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        _finished(http, job_id, 120, survivor)
        took = time.monotonic() - killed_at
        first, second = _resumed_run(http, job_id, epochs)
        # the survivor idled while the victim held a live lease, then took over by its sweeper
        saved = (second[0]["data"]["epoch"] - 1) // RESUME_EVERY * RESUME_EVERY
        assert second[0]["data"]["epoch"] == saved + 1 and saved >= RESUME_EVERY
    assert "re-sent 1 job" in survivor.text(), survivor.tail()
    print(f"killed at epoch {first[-1]['data']['epoch']}, resumed at {saved + 1}, {took:.1f}s")


# -- 2. SIGTERM -------------------------------------------------------------------------


def test_sigterm_saves_state_gives_job_back_and_another_worker_continues(
    tmp_path: Path, pg_schema: str, redis_server: RedisServer, clip: Path
) -> None:
    stack = _stack(tmp_path, pg_schema, redis_server)
    epochs = 200
    with stack, stack.client() as http:
        a, b = stack.start_workers(["a", "b"])
        job_id = _train(http, upload(http, clip)["id"], epochs=epochs)
        wait_for("a few epochs", lambda: _epoch(http, job_id) >= 5, 60, a, b)
        victim = _holder(http, job_id, [a, b])
        survivor = b if victim is a else a
        victim.proc.send_signal(signal.SIGTERM)
        began = time.monotonic()
        wait_for("the stopped worker to exit", lambda: victim.proc.poll() is not None, 30)
        exited_in = time.monotonic() - began
        _finished(http, job_id, 120, survivor)
        first, second = _resumed_run(http, job_id, epochs)
        events = _events(http, job_id)
    # it saved its state on the way out: the next attempt starts right after its last epoch
    assert second[0]["data"]["epoch"] == first[-1]["data"]["epoch"] + 1
    given_back = [e["data"] for e in events if e["data"].get("reason") == "worker_shutdown"]
    assert given_back == [{"status": "queued", "reason": "worker_shutdown"}]
    assert victim.proc.returncode == 0, victim.tail()
    assert "given back to the queue" in victim.text()
    print(f"exited {exited_in:.1f}s after SIGTERM at epoch {first[-1]['data']['epoch']}")


# -- 3. Redis restarted empty ----------------------------------------------------------


def test_redis_restarted_empty_queued_jobs_are_resent_and_running_one_continues(
    tmp_path: Path, pg_schema: str, redis_server: RedisServer, clip: Path
) -> None:
    stack = _stack(tmp_path, pg_schema, redis_server)
    with stack, stack.client() as http:
        worker = stack.worker("w")
        video_id = upload(http, clip)["id"]
        first = _train(http, video_id, epochs=200)
        wait_for("the first job to run", lambda: _epoch(http, first) >= 3, 60, worker)
        behind = [_train(http, video_id) for _ in range(2)]  # their messages wait in Redis
        assert [_job(http, j)["status"] for j in behind] == ["queued", "queued"]
        redis_server.kill()
        redis_server.start()  # same port, nothing in it: the two messages are gone
        for job_id in (first, *behind):
            job = _finished(http, job_id, 120, worker)
            assert job["status"] == "succeeded", job
        # the running job went on through the outage: one attempt, epochs 1..200 in order
        (attempt,) = _attempts(_events(http, first))
        assert [e["data"]["epoch"] for e in attempt] == list(range(1, 201))
    assert "re-sent" in worker.text(), worker.tail()


# -- 4. API killed mid-upload -----------------------------------------------------------

UPLOAD_BYTES = 64 * 1024**2


def _stream_upload(port: int, stop: threading.Event) -> None:
    """POST a large multipart body by hand, slowly, until told to stop or the server dies."""
    boundary = "faultsboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    request = (
        f"POST /v1/videos HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(head) + UPLOAD_BYTES + len(tail)}\r\n\r\n"
    ).encode()
    chunk = b"\0" * 256 * 1024
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(request + head)
            while not stop.is_set():
                sock.sendall(chunk)
                time.sleep(0.01)
    except OSError:
        pass  # the server was killed under us: that is the point


def _staged(staging: Path) -> list[Path]:
    return list(staging.glob("upload-*.part")) if staging.exists() else []


def test_api_killed_mid_upload_leaves_no_video_and_no_orphan_bytes(
    tmp_path: Path, clip: Path
) -> None:
    from core.storage import STAGING_GRACE_SECONDS

    port = free_port()
    env = service_env(tmp_path, port=str(port))  # the embedded default: SQLite, local store
    run_cli(["migrate"], env)
    storage = tmp_path / "data" / "storage"
    api = Process([*dyngen_command(), "api"], env, tmp_path / "api.log")
    stop = threading.Event()
    streamer = threading.Thread(target=_stream_upload, args=(port, stop), daemon=True)
    with running(api):
        wait_for("the API to be ready", ready(f"http://127.0.0.1:{port}"), 60, api)
        streamer.start()
        growing = lambda: any(p.stat().st_size > 2 * 1024**2 for p in _staged(storage / "tmp"))  # noqa: E731
        wait_for("the upload to be half-way", growing, 60, api)
        os.killpg(api.proc.pid, signal.SIGKILL)
        api.proc.wait(10)
    stop.set()
    streamer.join(10)
    (orphan,) = _staged(storage / "tmp")  # what the kill left behind
    wait_for(
        "the orphan to age",
        lambda: time.time() - orphan.stat().st_mtime > STAGING_GRACE_SECONDS,
        10,
    )
    again = Process([*dyngen_command(), "api"], env, tmp_path / "api-again.log")
    with running(again), httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        wait_for("the API to be ready again", ready(f"http://127.0.0.1:{port}"), 60, again)
        assert _staged(storage / "tmp") == [], "the restarted API kept the partial upload"
        assert http.get("/v1/videos").json()["items"] == []
        assert not list((storage / "videos").glob("*")) if (storage / "videos").exists() else True
        with clip.open("rb") as f:  # and it takes uploads as before
            assert http.post("/v1/videos", files={"file": ("c.mp4", f)}).status_code == 201
    assert "deleted 1 staged upload" in again.text(), again.tail()


# -- 5. PostgreSQL cut off --------------------------------------------------------------


def _ready_status(base: str) -> int:
    try:
        return httpx.get(f"{base}/readyz", timeout=10).status_code
    except httpx.HTTPError:
        return 0


def test_database_cut_gives_503_then_200_and_training_survives(
    tmp_path: Path, pg_schema: str, redis_server: RedisServer, clip: Path
) -> None:
    from tests.service.flows import upload as upload_over_http

    proxy = TcpProxy(PG_HOST, PG_PORT)
    stack = Stack(tmp_path, _schema_url(pg_schema, proxy.port), redis_server.url)
    port = free_port()
    stack.env["DYNGEN_PORT"] = str(port)
    base = f"http://127.0.0.1:{port}"
    api = Process([*dyngen_command(), "api"], stack.env, tmp_path / "api.log")
    epochs = 200
    with stack, running(api), httpx.Client(base_url=base, timeout=30) as http:
        worker = stack.worker("w")
        wait_for("the API to be ready", ready(base), 60, api)
        job_id = _train(http, upload_over_http(http, clip), epochs=epochs)
        wait_for("training to report epochs", lambda: _epoch(http, job_id) >= 5, 60, worker)
        proxy.cut()
        cut_at = time.monotonic()
        wait_for("/readyz to say 503", lambda: _ready_status(base) == 503, 30, api)
        body = httpx.get(f"{base}/readyz", timeout=10).json()
        assert body["status"] == "unavailable" and body["checks"]["database"].startswith("error")
        response = http.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "database_unavailable"
        wait_for("the worker to retry", lambda: "failed (" in worker.text(), 30, worker)
        # stay cut past the lease (5 s): the job must outlive an expired lease, too
        wait_for("the lease to run out", lambda: time.monotonic() - cut_at > 7, 15, worker)
        proxy.restore()
        wait_for("/readyz to say 200 again", lambda: _ready_status(base) == 200, 30, api)
        job = _finished(http, job_id, 120, worker, api)
        assert job["status"] == "succeeded" and job["progress"]["epoch"] == epochs, job
        (attempt,) = _attempts(_events(http, job_id))  # carried on: never restarted
        assert attempt[-1]["data"]["epoch"] == epochs
    proxy.close()


# -- 6. SQLite shared by API and worker --------------------------------------------------


def test_sqlite_api_and_worker_writing_at_once_never_say_database_is_locked(
    tmp_path: Path, clip: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    serve = Process(
        [*dyngen_command(), "serve", "--port", str(port), "--data-dir", str(data)],
        service_env(tmp_path),
        tmp_path / "serve.log",
    )
    problems: list[str] = []
    counts: dict[str, int] = {}
    with running(serve), httpx.Client(base_url=base, timeout=60) as http:
        wait_for("dyngen serve to be ready", ready(base), 60, serve)
        video_id = _upload_httpx(http, clip)
        job_id = _train(http, video_id, epochs=100_000)
        start = wait_for("training to start", lambda: _epoch(http, job_id), 60, serve)

        def create_and_cancel() -> httpx.Response:
            created = http.post("/v1/jobs", json=_train_body(video_id))
            if created.status_code != 202:
                return created
            return http.post(f"/v1/jobs/{created.json()['id']}/cancel")

        actions: dict[str, Callable[[], httpx.Response]] = {
            "poll": lambda: http.get(f"/v1/jobs/{job_id}"),
            "events": lambda: http.get(f"/v1/jobs/{job_id}/events"),
            "list": lambda: http.get("/v1/jobs", params={"limit": 5}),
            "upload": lambda: _post_clip(http, clip),
            "create+cancel": create_and_cancel,
        }
        stop = threading.Event()
        threads = [
            threading.Thread(target=_hammer, args=(n, a, stop, problems, counts), daemon=True)
            for n, a in actions.items()
        ]
        for thread in threads:
            thread.start()
        # the load runs while the worker writes 200 epochs of progress
        wait_for("200 epochs under load", lambda: _epoch(http, job_id) >= start + 200, 120, serve)
        stop.set()
        for thread in threads:
            thread.join(60)
        assert http.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
        assert _finished(http, job_id, 60, serve)["status"] == "cancelled"
    assert problems == [], problems[:5]
    assert all(counts.get(name, 0) >= 3 for name in actions), counts
    assert "database is locked" not in serve.text(), serve.tail()


def _train_body(video_id: str) -> dict[str, Any]:
    return {"type": "train", "video_ids": [video_id], "config": TINY_TRAIN}


def _post_clip(http: httpx.Client, clip: Path) -> httpx.Response:
    with clip.open("rb") as f:
        return http.post("/v1/videos", files={"file": (clip.name, f, "video/mp4")})


def _upload_httpx(http: httpx.Client, clip: Path) -> str:
    response = _post_clip(http, clip)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _hammer(
    name: str,
    action: Callable[[], httpx.Response],
    stop: threading.Event,
    problems: list[str],
    counts: dict[str, int],
) -> None:
    """Repeat one request until told to stop, noting any 5xx or lock error a client would see."""
    while not stop.is_set():
        try:
            response = action()
        except httpx.HTTPError as err:
            problems.append(f"{name}: {err!r}")
            continue
        if response.status_code >= 500 or "locked" in response.text:
            problems.append(f"{name}: {response.status_code} {response.text[:200]}")
        counts[name] = counts.get(name, 0) + 1


# -- 7. failing jobs --------------------------------------------------------------------

WORKER_MEMORY_LIMIT = 4 * 1024**3


def _limit_memory() -> None:
    # The worker's address space is capped, so a job too big for it fails its allocation
    # at once, as on a small machine, instead of eating the shared test machine's memory.
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_LIMIT, WORKER_MEMORY_LIMIT))


def test_failing_jobs_end_failed_with_a_code_and_the_worker_takes_the_next(
    tmp_path: Path, pg_schema: str, redis_server: RedisServer, clip: Path
) -> None:
    big_clip = write_clip(tmp_path / "big.mp4", size=256)
    stack = _stack(tmp_path, pg_schema, redis_server)
    # admission control would refuse the too-big job up front (test_admission.py); here it
    # is let through to show what a worker does when memory runs out all the same
    stack.env["DYNGEN_MAX_JOB_MEMORY_BYTES"] = str(2**50)
    store = tmp_path / "shared-storage"
    with stack, stack.client() as http:
        worker = stack.worker("w", preexec=_limit_memory)
        small, big = upload(http, clip)["id"], upload(http, big_clip)["id"]
        diverges = _train(http, small, sigma=1e-30)  # 1/sigma^2 overflows: the loss is inf
        too_big = _train(http, big, image_size=256, base_channels=512)
        good = _train(http, small)
        ended = {j: _finished(http, j, 120, worker) for j in (diverges, too_big, good)}
    assert ended[diverges]["status"] == "failed", ended[diverges]
    assert ended[diverges]["error"]["code"] == "training_diverged"
    assert "loss became" in ended[diverges]["error"]["message"]
    assert ended[too_big]["status"] == "failed", ended[too_big]
    assert ended[too_big]["error"]["code"] == "out_of_memory"
    assert "memory" in ended[too_big]["error"]["message"]
    assert ended[good]["status"] == "succeeded", ended[good]
    assert ended[good]["started_at"] > ended[too_big]["finished_at"]  # the same worker, after
    for job_id in (diverges, too_big):
        # documented: a failed job publishes nothing and leaves no scratch or resume state
        assert ended[job_id]["artifacts"] == []
        assert not (store / "resume" / job_id).exists()
        assert not list((store / "tmp").glob(f"job-{job_id}-*"))
