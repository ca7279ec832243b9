"""Hostile uploads against the real app: each is a 4xx JSON error that leaves nothing stored."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import scipy.io
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlalchemy import select as sql_select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.app import create_app
from core.db import session_factory, session_scope
from core.settings import Settings
from core.tables import Video
from model.procedural import waves
from model.video_writers import write_video
from tests.conftest import shared_file
from tests.hostile import declare_size, ffconcat, m3u8, pickle_npy, raw_avi, truncated
from tests.service.conftest import RecordingQueue, assert_error, live_server, upload, write_clip


def stored(settings: Settings) -> tuple[int, list[Path]]:
    """(rows in `videos`, every file under the store, staging included)."""
    with session_scope(session_factory(settings.db_url)) as session:
        rows = session.scalar(sql_select(func.count()).select_from(Video)) or 0
    return rows, sorted(p for p in settings.store_dir.rglob("*") if p.is_file())


def assert_nothing_stored(settings: Settings) -> None:
    """No row and no file (published or staged) is left behind."""
    assert stored(settings) == (0, [])


def post_file(client: TestClient, path: Path, name: str | None = None) -> httpx.Response:
    with path.open("rb") as f:
        return client.post("/v1/videos", files={"file": (name or path.name, f)})


def _random(d: Path) -> Path:
    path = d / "random.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(20_000))
    return path


def _empty(d: Path) -> Path:
    (d / "empty.mp4").write_bytes(b"")
    return d / "empty.mp4"


def _cut_mp4(d: Path) -> Path:
    # faststart: the index comes first, so the cut file opens and just runs out of frames
    write_video(d / "whole.mp4", iter(waves(40, 32)), 25)
    return truncated(d / "whole.mp4", d / "cut.mp4")


def _cut_moov_last(d: Path) -> Path:
    return truncated(write_clip(d / "whole.mp4", frames=40, size=32), d / "cut.mp4")


def _cut_real_avi(d: Path) -> Path:
    return truncated(shared_file("videos/flag.avi"), d / "flag.avi")


def _declares_10000(d: Path) -> Path:
    return declare_size(raw_avi(d / "raw.avi"), d / "big.avi", 10_000, 10_000)


def _declares_100000(d: Path) -> Path:
    return declare_size(raw_avi(d / "raw.avi"), d / "huge.avi", 100_000, 100_000)


def _pickle_npy(d: Path) -> Path:
    return pickle_npy(d / "mask.npy", d / "pwned")


def _npy_that_lies(d: Path) -> Path:
    # the header promises 20000 x 4096 x 4096 bytes (within the frame and side limits): the
    # worker's np.load would try to allocate 335 GB for a file of a few bytes
    path = d / "lies.npy"
    np.save(path, np.zeros((2, 2, 2), np.uint8))
    data = path.read_bytes().replace(b"(2, 2, 2)", b"(20000, 4096, 4096)")
    path.write_bytes(data)
    return path


def _npy_of_five_channels(d: Path) -> Path:
    np.save(d / "five.npy", np.zeros((4, 8, 8, 5), np.uint8))
    return d / "five.npy"


def _mat_cells(d: Path) -> Path:
    cells = np.empty((2, 2, 2), dtype=object)
    cells[...] = "x"
    scipy.io.savemat(d / "cells.mat", {"masks": cells})
    return d / "cells.mat"


REFUSED: list[tuple[str, Callable[[Path], Path], str, str]] = [
    ("zero bytes", _empty, "empty_file", "empty"),
    ("random bytes named .mp4", _random, "invalid_video", "not a readable video"),
    ("mp4 cut in half", _cut_mp4, "invalid_video", "truncated"),
    ("mp4 cut in half, index last", _cut_moov_last, "invalid_video", "not a readable video"),
    ("real avi cut in half", _cut_real_avi, "invalid_video", "declares 250 frames"),
    ("declares 10000 x 10000", _declares_10000, "video_too_large", "10000x10000"),
    ("declares 100000 x 100000", _declares_100000, "invalid_video", "no valid frame size"),
    ("pickle disguised as .npy", _pickle_npy, "invalid_mask", "object arrays"),
    ("npy whose header lies", _npy_that_lies, "invalid_mask", "declares"),
    ("npy of 5 channels", _npy_of_five_channels, "invalid_mask", "C 1 or 3"),
    ("mat of cells", _mat_cells, "invalid_mask", "MATLAB cell"),
]


@pytest.mark.parametrize(
    ("make", "code", "says"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_hostile_files_are_refused_and_nothing_stored(
    client: TestClient,
    settings: Settings,
    tmp_path: Path,
    make: Callable[[Path], Path],
    code: str,
    says: str,
) -> None:
    work = tmp_path / "hostile"
    work.mkdir()
    started = time.monotonic()
    error = assert_error(post_file(client, make(work)), 422, code)
    assert says in error["message"], error
    assert str(work) not in error["message"] and ".part" not in error["message"]
    assert time.monotonic() - started < 30  # refused from headers, not by decoding for ages
    assert not (work / "pwned").exists()  # the pickle never ran
    assert_nothing_stored(settings)
    assert client.get("/healthz").status_code == 200  # and the server is still up


def test_far_more_frames_than_the_limit(
    settings: Settings, queue: RecordingQueue, tmp_path: Path
) -> None:
    strict = settings.model_copy(update={"max_video_frames": 20})
    declared = write_clip(tmp_path / "long.mp4", frames=400)
    undeclared = write_clip(tmp_path / "long.mkv", frames=400)  # matroska declares no count
    with TestClient(create_app(strict, queue=queue)) as client:
        error = assert_error(post_file(client, declared), 422, "video_too_long")
        assert error["details"] == {"frames": 400, "limit": 20}
        error = assert_error(post_file(client, undeclared), 422, "video_too_long")
        assert error["details"] == {"frames": None, "limit": 20}
        assert "more than 20 frames" in error["message"]
    assert_nothing_stored(settings)


def test_playlists_naming_other_files_are_refused(
    client: TestClient, settings: Settings, tmp_path: Path, clip: Path
) -> None:
    other = upload(client, clip)
    other_path = settings.store_dir / "videos" / f"{other['id']}.mp4"
    assert other_path.is_file()
    lists = [
        ffconcat(tmp_path / "passwd.ffconcat", "/etc/passwd"),
        ffconcat(tmp_path / "abs.ffconcat", str(other_path)),
        ffconcat(tmp_path / "rel.ffconcat", f"../videos/{other_path.name}"),
        ffconcat(tmp_path / "rel.txt", other_path.name),
        m3u8(tmp_path / "passwd.m3u8", "/etc/passwd"),
        m3u8(tmp_path / "file.m3u8", f"file:{other_path}"),
        m3u8(tmp_path / "concat.m3u8", f"concat:{other_path}|{other_path}"),
        m3u8(tmp_path / "net.m3u8", "http://127.0.0.1:9/x.ts"),
    ]
    for path in lists:
        assert_error(post_file(client, path), 422, "invalid_video")
    rows, files = stored(settings)
    assert (rows, files) == (1, [other_path])


HOSTILE_NAMES = [
    b"../../etc/passwd",
    b"..\\..\\windows\\system32\\evil.mp4",
    b"/etc/cron.d/evil.mp4",
    b"a\x00b.mp4",
    b"x" * 10_000 + b".mp4",
    "vid\u00e9o \u2603 \U0001f600.mp4".encode(),
    b"\xff\xfe\xfd.mp4",
    b"..",
    b".",
    b"clip.mp4\r\nX-Injected: 1",
    b"clip.mp4/../../../../tmp/evil.mp4",
    b"clip.MP4;.exe",
]


def _multipart(filename: bytes, content: bytes) -> tuple[bytes, dict[str, str]]:
    """A multipart body with exactly these filename bytes (httpx would escape some)."""
    head = b'--bnd\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n\r\n' % filename
    body = head + content + b"\r\n--bnd--\r\n"
    return body, {"content-type": "multipart/form-data; boundary=bnd"}


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_hostile_filenames_never_choose_a_storage_path(
    client: TestClient, settings: Settings, clip: Path, tmp_path: Path, name: bytes
) -> None:
    before = set(tmp_path.parent.rglob("*"))
    body, headers = _multipart(name, clip.read_bytes())
    response = client.post("/v1/videos", content=body, headers=headers)
    if response.status_code != 201:  # a header the multipart parser refuses is fine too
        assert_error(response, 400)
        assert_nothing_stored(settings)
        return
    video = response.json()
    rows, files = stored(settings)
    assert rows == 1 and len(files) == 1
    assert files[0].parent == settings.store_dir / "videos"
    assert files[0].name.startswith(video["id"])  # the server's id, never the client's name
    filename = video["filename"]
    assert len(filename) <= 200 and filename.isprintable() and filename.strip(".")
    assert not set(filename) & set("/\\\x00\r\n")
    download = client.get(video["content_url"])
    assert download.content == clip.read_bytes()
    assert "x-injected" not in download.headers
    created = set(tmp_path.parent.rglob("*")) - before
    strays = [
        p
        for p in created
        if settings.store_dir not in (p, *p.parents) and not p.name.startswith("dyngen.sqlite")
    ]
    assert strays == []
    assert not Path("/tmp/evil.mp4").exists() and not Path("/etc/cron.d/evil.mp4").exists()


class CountingApp:
    """ASGI wrapper that counts the body bytes the app actually pulled from the server."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.received = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


GIB = 1024**3
LIMIT = 1_000_000
BLOCK = b"\0" * 65536
PART = b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'


def _gigabyte(sent: list[int]) -> Iterator[bytes]:
    """A 1 GiB multipart body made on the fly; `sent[0]` counts what the client took."""
    yield PART
    for _ in range(GIB // len(BLOCK)):
        sent[0] += len(BLOCK)
        yield BLOCK


def test_an_oversize_stream_is_refused_having_read_only_the_limit(
    settings: Settings, queue: RecordingQueue
) -> None:
    small = settings.model_copy(update={"max_upload_bytes": LIMIT})
    app = CountingApp(create_app(small, queue=queue))
    headers = {"content-type": "multipart/form-data; boundary=x"}
    with live_server(app) as port:
        # 1. a raw socket: the 413 arrives while most of the gigabyte is still unsent
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/videos HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                b"Content-Type: multipart/form-data; boundary=x\r\n\r\n"
            )
            sent = [0]
            for block in _gigabyte(sent):
                if select.select([sock], [], [], 0)[0]:
                    break
                sock.sendall(b"%x\r\n%s\r\n" % (len(block), block))
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 413") and b"upload_too_large" in answer
        assert sent[0] < 64 * 1024**2, f"the client sent {sent[0]} bytes before the 413"
        assert app.received < LIMIT + 2 * 1024**2, app.received
        # 2. httpx streaming a generator: a clean 413 JSON, the app read about the limit
        app.received, sent = 0, [0]
        url = f"http://127.0.0.1:{port}/v1/videos"
        response = httpx.post(url, content=_gigabyte(sent), headers=headers, timeout=60)
        assert_error(response, 413, "upload_too_large")
        assert app.received < LIMIT + 2 * 1024**2, app.received
    assert_nothing_stored(settings)


def test_a_mask_that_does_not_fit_the_video_is_refused_at_job_creation(
    client: TestClient, clip: Path, tmp_path: Path
) -> None:
    video = upload(client, clip)  # 10 frames of 16 x 16
    config = {"image_size": 16, "frames": 8, "chunk_length": 4, "epochs": 1}
    fits = tmp_path / "fits.npy"
    np.save(fits, np.zeros((8, 16, 16), np.uint8))
    cases = {
        "frames.npy": np.zeros((5, 16, 16), np.uint8),
        "wide.npy": np.zeros((8, 16, 24), np.uint8),
    }
    # 7 frames: neither the 8 trained on nor the whole clip (a whole clip's mask aligns)
    scipy.io.savemat(tmp_path / "frames.mat", {"masks": np.zeros((16, 16, 7))})
    for name, array in cases.items():
        np.save(tmp_path / name, array)
    for name in [*cases, "frames.mat"]:
        mask = upload(client, tmp_path / name)
        body = {
            "type": "train",
            "video_ids": [video["id"]],
            "config": config,
            "mask": {"kind": "upload", "video_id": mask["id"]},
        }
        error = assert_error(client.post("/v1/jobs", json=body), 422, "mask_mismatch")
        assert mask["id"] in error["message"]
    good = upload(client, fits)
    body["mask"] = {"kind": "upload", "video_id": good["id"]}
    assert client.post("/v1/jobs", json=body).status_code == 202


def test_a_compressed_mat_that_unpacks_past_the_limit(
    settings: Settings, queue: RecordingQueue, tmp_path: Path
) -> None:
    bomb = tmp_path / "bomb.mat"
    # 200 x 200 x 70 doubles: 22 MB unpacked, a few kB on the wire
    scipy.io.savemat(bomb, {"masks": np.zeros((200, 200, 70))}, do_compression=True)
    assert bomb.stat().st_size < 100_000
    strict = settings.model_copy(update={"max_upload_bytes": 1_000_000})
    with TestClient(create_app(strict, queue=queue)) as client:
        error = assert_error(post_file(client, bomb), 422, "mask_too_large")
        assert "unpack to 22400000 bytes" in error["message"]
        # the mask itself is small: an extra compressed variable is counted all the same
        extra = tmp_path / "extra.mat"
        masks = np.zeros((16, 16, 8), np.uint8)
        scipy.io.savemat(
            extra, {"masks": masks, "x": np.zeros((200, 200, 70))}, do_compression=True
        )
        error = assert_error(post_file(client, extra), 422, "mask_too_large")
        assert (
            "unpack to 22402048 bytes" in error["message"] and str(tmp_path) not in error["message"]
        )
        assert "upload-" not in error["message"]
    assert_nothing_stored(settings)


def test_a_client_that_hangs_up_mid_upload_leaves_nothing(
    settings: Settings, queue: RecordingQueue
) -> None:
    with live_server(create_app(settings, queue=queue)) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/videos HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n"
                b"Content-Type: multipart/form-data; boundary=x\r\n\r\n" + PART + BLOCK * 16
            )
            deadline = time.monotonic() + 10
            while not list((settings.store_dir / "tmp").iterdir()):  # the upload is staged
                assert time.monotonic() < deadline, "the upload was never staged"
                time.sleep(0.02)
        deadline = time.monotonic() + 10
        while stored(settings) != (0, []):
            assert time.monotonic() < deadline, f"left behind: {stored(settings)}"
            time.sleep(0.05)
