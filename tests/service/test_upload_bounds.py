"""Uploads cheap to send but costly to take: every byte counts, the body must end, decoding is
bounded in pixels and seconds, probes at once are capped, a stalled client is dropped."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from tests.hostile import decode_bomb
from tests.service.conftest import RecordingQueue, assert_error, live_server
from tests.service.test_attacks import assert_nothing_stored

BOMB_SIDE = 1024  # a 1 Mpx frame decodes in a few ms: the bounds below are a few frames' worth
BOMB_FRAMES = 600


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same decode bomb in a container that declares its frame count and one that doesn't."""
    folder = tmp_path_factory.mktemp("bombs")
    return {
        suffix: decode_bomb(folder / f"bomb{suffix}", BOMB_SIDE, BOMB_FRAMES)
        for suffix in (".mp4", ".mkv")
    }


@pytest.fixture(scope="module")
def long_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bomb whose decoding lasts seconds even on an idle machine (600 frames take under 0.3 s
    there; all 60,000 about 16 s on an idle AMD EPYC core), to be probed with the pixel and
    frame bounds lifted."""
    return decode_bomb(tmp_path_factory.mktemp("long") / "long.mkv", BOMB_SIDE, 60_000)


UNBOUNDED_BUT_TIME = {"max_probe_pixels": 10**13, "max_video_frames": 1_000_000}


def _client(settings: Settings, queue: RecordingQueue, **limits: object) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=limits), queue=queue))


def _post(client: TestClient, path: Path) -> httpx.Response:
    with path.open("rb") as f:
        return client.post("/v1/videos", files={"file": (path.name, f)})


def test_a_decode_bomb_is_refused_within_its_pixel_bound(
    settings: Settings, queue: RecordingQueue, bombs: dict[str, Path]
) -> None:
    assert all(path.stat().st_size < 300_000 for path in bombs.values())
    bound = 50 * BOMB_SIDE**2  # 50 of its 600 frames
    with _client(settings, queue, max_probe_pixels=bound) as client:
        # 1. the mp4 declares 600 frames: refused from its header, nothing decoded
        error = assert_error(_post(client, bombs[".mp4"]), 422, "video_too_costly")
        assert error["details"]["bound"] == "pixels"
        assert error["details"]["reached"] == BOMB_FRAMES * BOMB_SIDE**2
        # 2. the mkv declares nothing: decoding stops one frame past the bound
        error = assert_error(_post(client, bombs[".mkv"]), 422, "video_too_costly")
        assert error["details"] == {"bound": "pixels", "limit": bound, "reached": 51 * 2**20}
    assert_nothing_stored(settings)


def test_a_decode_bomb_is_refused_within_its_time_bound(
    settings: Settings, queue: RecordingQueue, long_bomb: Path
) -> None:
    with _client(settings, queue, max_probe_seconds=0.3, **UNBOUNDED_BUT_TIME) as client:
        started = time.monotonic()
        error = assert_error(_post(client, long_bomb), 422, "video_too_costly")
        assert error["details"]["bound"] == "seconds"
        assert time.monotonic() - started < 5
    assert_nothing_stored(settings)


def test_probes_past_the_cap_answer_503_with_retry_after(
    settings: Settings, queue: RecordingQueue, long_bomb: Path
) -> None:
    # Two long bombs at once against one probe slot: whichever arrives first holds it for its
    # whole 5 s bound (decoding all of it takes three times as long on an idle machine; 30,000
    # frames against a 10 s bound finished in time on one), the other is refused. No order is
    # assumed, so no sleep has to outlast a loaded machine's start-up.
    limits = {"max_concurrent_probes": 1, "max_probe_seconds": 5.0, **UNBOUNDED_BUT_TIME}
    app = create_app(settings.model_copy(update=limits), queue=queue)
    answers: list[httpx.Response] = []
    with live_server(app) as port:
        url = f"http://127.0.0.1:{port}/v1/videos"

        def post_bomb() -> None:
            with long_bomb.open("rb") as f:
                answers.append(httpx.post(url, files={"file": ("b.mkv", f)}, timeout=60))

        posters = [threading.Thread(target=post_bomb) for _ in range(2)]
        for poster in posters:
            poster.start()
        for poster in posters:
            poster.join()
    slow, busy = sorted(answers, key=lambda answer: answer.status_code)
    error = assert_error(busy, 503, "probes_busy")
    assert error["details"] == {"limit": 1}
    assert int(busy.headers["retry-after"]) > 0
    assert_error(slow, 422, "video_too_costly")
    assert_nothing_stored(settings)


def test_the_whole_body_counts_toward_the_upload_limit(
    settings: Settings, queue: RecordingQueue
) -> None:
    small = 100_000
    with _client(settings, queue, max_upload_bytes=small) as client:
        # a tiny file part beside a 1 MB part of another name: the body is over the limit
        files = {"file": ("a.mp4", b"\0" * 100), "extra": ("x.bin", b"\0" * 1_000_000)}
        error = assert_error(client.post("/v1/videos", files=files), 413, "upload_too_large")
        assert error["details"] == {"limit_bytes": small}
    assert_nothing_stored(settings)


def test_a_body_without_its_closing_boundary_is_refused(
    settings: Settings, queue: RecordingQueue, clip: Path
) -> None:
    head = b'--x\r\nContent-Disposition: form-data; name="file"; filename="clip.mp4"\r\n\r\n'
    headers = {"content-type": "multipart/form-data; boundary=x"}
    with _client(settings, queue) as client:
        cut = client.post("/v1/videos", content=head + clip.read_bytes(), headers=headers)
        error = assert_error(cut, 400, "malformed_multipart")
        assert "closing boundary" in error["message"]
        whole = head + clip.read_bytes() + b"\r\n--x--\r\n"
        assert client.post("/v1/videos", content=whole, headers=headers).status_code == 201


def test_a_stalled_upload_is_dropped_after_its_idle_time(
    settings: Settings, queue: RecordingQueue
) -> None:
    app = create_app(settings.model_copy(update={"upload_idle_seconds": 0.5}), queue=queue)
    with live_server(app) as port, socket.create_connection(("127.0.0.1", port), 10) as sock:
        started = time.monotonic()
        sock.sendall(
            b"POST /v1/videos HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n\r\n"
            b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'
        )
        answer = sock.recv(65536)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408") and b"upload_stalled" in answer, answer
    assert 0.4 < waited < 5
    assert_nothing_stored(settings)
