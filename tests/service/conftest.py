"""Fixtures of the service suite: real PostgreSQL and SQLite databases, migrated by Alembic."""

from __future__ import annotations

import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import text

import migrations
from api.app import create_app
from core.auth import create_api_key
from core.db import engine_for, session_factory, session_scope
from core.settings import Settings

PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
PG_BASE = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/test"
TABLES = "api_keys, videos, jobs, job_events, artifacts, models, webhook_secrets, idempotency_keys"


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections there (a short timeout: never a hang)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require(name: str, host: str, port: int) -> None:
    """Skip, saying how to fix it, when a server the test needs is not running."""
    if not port_open(host, port):
        pytest.skip(
            f"{name} is not reachable on {host}:{port}; start it with `bash .ci/services.sh`"
        )


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_clip(path: Path, frames: int = 10, size: int = 16, fps: int = 25) -> Path:
    """A tiny procedural video: a bright square drifting over a gradient (H.264 mp4)."""
    y, x = np.mgrid[0:size, 0:size]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for t in range(frames):
            frame = np.zeros((size, size, 3), np.uint8)
            frame[..., 0] = (x * 255 // size + t * 20) % 256
            frame[..., 1] = y * 255 // size
            cx = (t * 2) % (size - 4)
            frame[4:8, cx : cx + 4] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@contextmanager
def live_server(app: Any) -> Iterator[int]:
    """Serve `app` with uvicorn on a free port in a thread (for what TestClient can't do)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10-frame 16x16 mp4 made for the session."""
    return write_clip(tmp_path_factory.mktemp("clips") / "clip.mp4")


@contextmanager
def scratch_schema(prefix: str) -> Iterator[str]:
    """An empty schema of PostgreSQL's `test` database (its name), dropped afterwards."""
    require("PostgreSQL", PG_HOST, PG_PORT)
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = engine_for(PG_BASE)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


def schema_url(schema: str) -> str:
    """The PostgreSQL URL whose search path is `schema`."""
    return f"{PG_BASE}?options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A fresh schema in PostgreSQL's `test` database, migrated to head, dropped afterwards."""
    with scratch_schema("svc") as schema:
        url = schema_url(schema)
        migrations.upgrade(url)
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test copies it."""
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite"
    url = f"sqlite:///{path}"
    migrations.upgrade(url)
    engine_for(url).dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "dyngen.sqlite"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("pg_schema_url")
    with engine_for(url).begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    return url


@dataclass
class RecordingQueue:
    """The queue seam for API tests: records what would be sent; can play a dead broker."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    broken: bool = False

    def enqueue(self, job_id: str, job_type: str) -> None:
        if self.broken:
            raise ConnectionError("broker down")
        self.sent.append((job_id, job_type))

    def ping(self) -> None:
        if self.broken:
            raise ConnectionError("broker down")


def make_settings(db_url: str, root: Path, **overrides: Any) -> Settings:
    """Settings for a test: its own database and store."""
    values: dict[str, Any] = {
        "data_dir": root,
        "database_url": db_url,
        "storage_dir": root / "storage",
        "auth": "open",
    }
    return Settings(**(values | overrides))


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path)


@pytest.fixture
def client(settings: Settings, queue: RecordingQueue) -> Iterator[TestClient]:
    """An open-mode client (no API key) on a fresh database."""
    with TestClient(create_app(settings, queue=queue)) as test_client:
        yield test_client


def new_key(settings: Settings, name: str = "test") -> str:
    """A plain API key stored in the settings' database."""
    with session_scope(session_factory(settings.db_url)) as session:
        _, key = create_api_key(session=session, name=name)
    return key


def upload(client: TestClient, path: Path, **headers: str) -> dict[str, Any]:
    """POST a file to /v1/videos and return the 201 body."""
    with path.open("rb") as f:
        response = client.post("/v1/videos", files={"file": (path.name, f)}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


TINY_TRAIN = {
    "method": "abptt",  # the default `auto` would keep the LDS over most models this tiny
    "image_size": 16,
    "base_channels": 4,
    "state_dim": 4,
    "noise_dim": 4,
    "epochs": 3,
    "langevin_steps": 2,
    "frames": 8,
    "chunk_length": 4,
}


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is the JSON error shape with this status (and code)."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error
