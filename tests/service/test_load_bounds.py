"""The API under held streams, stalled uploads and a busy database: a real `dyngen api` process.

Its pool is two connections and its quotas are small, so what takes hundreds of clients in a
deployment takes a handful here: requests beyond the pool are still answered, a pool that is
really exhausted answers 503 with Retry-After (never 500), and one key's requests in
progress, open streams and uploads are capped with 429s that leave other keys alone.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Connection, text

import migrations
from core import jobs
from core.auth import create_api_key
from core.db import engine_for, session_factory, session_scope
from tests.service.conftest import (
    REDIS_HOST,
    REDIS_PORT,
    TINY_TRAIN,
    assert_error,
    free_port,
    require,
    schema_url,
    scratch_schema,
)
from tests.service.processes import Process, dyngen_command, ready, service_env, wait_for

STREAMS_PER_KEY = 3
UPLOADS_PER_KEY = 2
REQUESTS_PER_KEY = 2


@dataclass
class Api:
    """A running `dyngen api` on PostgreSQL: its URL, database, a job and three keys."""

    base: str
    db_url: str
    schema: str
    job_id: str
    keys: list[str]

    def client(self, key: str) -> httpx.Client:
        """A client sending `key`."""
        headers = {"authorization": f"Bearer {key}"}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)


def _seed(db_url: str) -> tuple[str, list[str]]:
    """Three API keys and a queued job of the first (never sent to a worker)."""
    with session_scope(session_factory(db_url)) as session:
        made = [create_api_key(session=session, name=f"k{i}") for i in range(3)]
        job = jobs.create_job(
            session=session, owner_id=made[0][0].id, type="train", config=TINY_TRAIN, seed=0
        )
        return job.id, [plain for _, plain in made]


# One API per test, not per module: the first test's event streams, closed by the client,
# can leave a read queued in the API's thread pool. Under CI load such a read ran after the
# second test locked the jobs table and held one of the two pooled connections, so the owner's
# second request got 503 instead of waiting for the lock, and its third 503 instead of 429.
@pytest.fixture
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    require("Redis", REDIS_HOST, REDIS_PORT)
    tmp = tmp_path_factory.mktemp("load-bounds")
    with scratch_schema("load") as schema:
        url = schema_url(schema)
        migrations.upgrade(url)
        job_id, keys = _seed(url)
        port = free_port()
        env = service_env(
            tmp,
            # the application name finds the API's connections in pg_stat_activity
            database_url=f"{url}&application_name={schema}",
            broker_url=f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
            queue_name=f"load-{uuid.uuid4().hex[:8]}",
            auth="apikey",
            port=str(port),
            log_level="warning",
            db_pool_size="2",
            db_max_overflow="0",
            api_pool_timeout="1",
            max_streams_per_key=str(STREAMS_PER_KEY),
            max_uploads_per_key=str(UPLOADS_PER_KEY),
            max_requests_per_key=str(REQUESTS_PER_KEY),
            request_wait_seconds="1",
        )
        process = Process([*dyngen_command(), "api"], env, tmp / "api.log")
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for("the API to be ready", ready(base), 60, process)
            yield Api(base, url, schema, job_id, keys)
        finally:
            process.stop()
            engine_for(url).dispose()


def _open_stream(api: Api, key: str, stack: ExitStack) -> httpx.Response:
    """An SSE stream of the job, held open until `stack` closes."""
    client = stack.enter_context(api.client(key))
    headers = {"accept": "text/event-stream"}
    response = stack.enter_context(
        client.stream("GET", f"/v1/jobs/{api.job_id}/events", headers=headers)
    )
    return response


def _stalled_upload(api: Api, key: str, stack: ExitStack) -> socket.socket:
    """An upload that sends its headers and a little of its file, then nothing."""
    port = int(api.base.rsplit(":", 1)[1])
    sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
    sock.sendall(
        b"POST /v1/videos HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n"
        + f"Authorization: Bearer {key}\r\n".encode()
        + b"Content-Type: multipart/form-data; boundary=x\r\n\r\n"
        + b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'
        + b"\0" * 1000
    )
    return sock


def _api_connections(api: Api) -> dict[str, int]:
    """The API process's connections by state, counting only states held for over 0.5 s.

    (They carry the schema as application name.) A read between two queries of one request
    is idle in a transaction for a moment; a connection held across a stream would stay so.
    """
    with engine_for(api.db_url).connect() as conn:
        query = text(
            "SELECT state, count(*) FROM pg_stat_activity WHERE application_name = :name "
            "AND pid <> pg_backend_pid() AND now() - state_change > interval '0.5 seconds' "
            "GROUP BY state"
        )
        return {str(state): int(n) for state, n in conn.execute(query, {"name": api.schema})}


def test_the_pool_serves_others_while_streams_and_uploads_are_held(api: Api, clip: Path) -> None:
    owner, other, third = api.keys
    with ExitStack() as stack:
        # 1. more held streams and stalled uploads than the pool (2) has connections
        streams = [_open_stream(api, key, stack) for key in (owner, owner, owner)]
        assert all(s.status_code == 200 for s in streams)
        stalled = [_stalled_upload(api, key, stack) for key in (owner, owner, other, other)]
        assert len(stalled) == 4
        time.sleep(1.0)  # every stream has ticked, every upload is waiting for its body
        # 2. plain requests are still answered, fast, and no connection idles in a transaction
        with api.client(owner) as client:
            for _ in range(20):
                started = time.monotonic()
                response = client.get(f"/v1/jobs/{api.job_id}")
                assert response.status_code == 200, response.text
                assert time.monotonic() - started < 2
        connections = _api_connections(api)
        assert "idle in transaction" not in connections, connections
        assert sum(connections.values()) <= 2, connections
        # 3. another key uploads while the others' uploads stall
        with api.client(third) as client, clip.open("rb") as f:
            response = client.post("/v1/videos", files={"file": ("clip.mp4", f)})
            assert response.status_code == 201, response.text
        # 4. the capped key is refused more streams and uploads; the others are not
        with api.client(owner) as client:
            more = client.get(
                f"/v1/jobs/{api.job_id}/events", headers={"accept": "text/event-stream"}
            )
            error = assert_error(more, 429, "too_many_streams")
            assert error["details"] == {"limit": STREAMS_PER_KEY}
            assert more.headers["retry-after"]
            with clip.open("rb") as f:
                refused = client.post("/v1/videos", files={"file": ("clip.mp4", f)})
            assert_error(refused, 429, "too_many_uploads")
    # 5. closing them gives the slots back
    wait_for("the owner's upload slots to come back", lambda: _upload_ok(api, owner, clip), 10)
    wait_for("the owner's stream slots to come back", lambda: _streams_ok(api, owner), 10)


def _upload_ok(api: Api, key: str, clip: Path) -> bool:
    with api.client(key) as client, clip.open("rb") as f:
        return client.post("/v1/videos", files={"file": ("clip.mp4", f)}).status_code == 201


def _streams_ok(api: Api, key: str) -> bool:
    """Whether the key can open its whole quota of streams again."""
    with ExitStack() as stack:
        streams = [_open_stream(api, key, stack) for _ in range(STREAMS_PER_KEY)]
        return all(s.status_code == 200 for s in streams)


def wait_for_lock_waiters(conn: Connection, table: str, count: int, timeout: float = 60) -> None:
    """Until `count` sessions wait for a lock on `table` (a fixed sleep was too short under
    load: the owner's reads had not reached the database, so its next request was let in)."""
    query = text(
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = CAST(:t AS regclass)"
    )
    deadline = time.monotonic() + timeout
    while conn.execute(query, {"t": table}).scalar_one() < count:
        assert time.monotonic() < deadline, f"{count} requests never reached the database"
        time.sleep(0.05)


def test_an_exhausted_pool_answers_503_and_a_flooding_key_429(api: Api) -> None:
    owner, other = api.keys[:2]
    url = f"/v1/jobs/{api.job_id}"
    with engine_for(api.db_url).connect() as conn:
        # 1. hold the jobs table: two reads of the owner take both pooled connections and wait
        conn.execute(text(f"LOCK TABLE {api.schema}.jobs IN ACCESS EXCLUSIVE MODE"))
        with ThreadPoolExecutor(2) as pool, api.client(owner) as mine, api.client(other) as theirs:
            blocked = [pool.submit(mine.get, url) for _ in range(REQUESTS_PER_KEY)]
            wait_for_lock_waiters(conn, f"{api.schema}.jobs", REQUESTS_PER_KEY)
            # 2. the owner has its quota of requests in progress: its next one waits, then 429
            started = time.monotonic()
            queued = mine.get(url)
            error = assert_error(queued, 429, "too_many_requests")
            assert error["details"] == {"limit": REQUESTS_PER_KEY, "wait_seconds": 1.0}
            assert queued.headers["retry-after"]
            # 3. another key's request is let in, finds no free connection: 503, not 500
            busy = theirs.get("/v1/videos")
            assert_error(busy, 503, "database_busy")
            assert busy.headers["retry-after"]
            assert time.monotonic() - started < 6
            conn.rollback()  # 4. the lock goes; the blocked reads complete normally
            assert [f.result().status_code for f in blocked] == [200, 200]
            assert mine.get(url).status_code == 200
            assert theirs.get("/v1/videos").status_code == 200
