"""Uploads: streamed, probed, limited; downloads with Range and ETag."""

from __future__ import annotations

import hashlib
import select
import socket
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from tests.service.conftest import (
    RecordingQueue,
    assert_error,
    live_server,
    upload,
    write_clip,
)


def _stored_files(settings: Settings) -> list[Path]:
    root = settings.store_dir
    return [p for p in root.rglob("*") if p.is_file() and "tmp" not in p.relative_to(root).parts]


def test_upload_probes_and_stores_the_video(client: TestClient, clip: Path) -> None:
    body = upload(client, clip)
    assert body["id"].startswith("vid_") and body["kind"] == "video"
    assert (body["frames"], body["width"], body["height"], body["fps"]) == (10, 16, 16, 25.0)
    assert body["bytes"] == clip.stat().st_size
    assert body["sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()
    assert client.get(f"/v1/videos/{body['id']}").json() == body
    content = client.get(body["content_url"])
    assert content.content == clip.read_bytes()
    assert content.headers["etag"] == f'"{body["sha256"]}"'


def test_list_pages_with_a_cursor_then_delete(client: TestClient, clip: Path) -> None:
    ids = [upload(client, clip)["id"] for _ in range(3)]
    first = client.get("/v1/videos", params={"limit": 2}).json()
    assert [v["id"] for v in first["items"]] == ids[::-1][:2]
    rest = client.get("/v1/videos", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [v["id"] for v in rest["items"]] == ids[:1] and rest["next_cursor"] is None
    assert client.delete(f"/v1/videos/{ids[0]}").status_code == 204
    assert_error(client.get(f"/v1/videos/{ids[0]}"), 404, "not_found")
    assert_error(client.get(f"/v1/videos/{ids[0]}/content"), 404)
    assert_error(client.get("/v1/videos", params={"cursor": "not a cursor"}), 422)


def test_range_and_conditional_downloads(client: TestClient, clip: Path) -> None:
    body = upload(client, clip)
    part = client.get(body["content_url"], headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == clip.read_bytes()[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{body['bytes']}"
    etag = part.headers["etag"]
    assert client.get(body["content_url"], headers={"If-None-Match": etag}).status_code == 304
    beyond = client.get(body["content_url"], headers={"Range": "bytes=999999-"})
    assert beyond.status_code == 416
    assert 'filename="clip.mp4"' in part.headers["content-disposition"]


def test_refused_uploads_say_why_and_store_nothing(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).bytes(5000))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with junk.open("rb") as f:
        error = assert_error(client.post("/v1/videos", files={"file": f}), 422, "invalid_video")
    assert str(tmp_path) not in error["message"] and "tmp" not in error["message"]
    with empty.open("rb") as f:
        assert_error(client.post("/v1/videos", files={"file": f}), 422, "empty_file")
    with junk.open("rb") as f:
        other = client.post("/v1/videos", files={"video": f})
    assert_error(other, 422, "missing_file")
    assert_error(client.post("/v1/videos", content=b"abc"), 415, "unsupported_media_type")
    assert_error(client.post("/v1/videos", json={"file": "x"}), 415)
    bad = client.post(
        "/v1/videos",
        content=b'--b\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc',
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert bad.status_code in (400, 422), bad.text
    assert _stored_files(settings) == []
    assert list((settings.store_dir / "tmp").iterdir()) == []


def test_limits_refuse_large_and_long_uploads(
    settings: Settings, queue: RecordingQueue, tmp_path: Path, clip: Path
) -> None:
    small = settings.model_copy(update={"max_upload_bytes": 1000, "max_video_frames": 5})
    with TestClient(create_app(small, queue=queue)) as client:
        big = tmp_path / "big.bin"
        big.write_bytes(b"\0" * 5_000_000)
        with big.open("rb") as f:
            error = assert_error(client.post("/v1/videos", files={"file": f}), 413)
        assert error["code"] == "upload_too_large" and error["details"]["limit_bytes"] == 1000
    roomy = settings.model_copy(update={"max_video_frames": 5})
    with TestClient(create_app(roomy, queue=queue)) as client, clip.open("rb") as f:
        error = assert_error(client.post("/v1/videos", files={"file": f}), 422, "video_too_long")
        assert error["details"] == {"frames": 10, "limit": 5}
    assert _stored_files(settings) == []


def _post_until_answered(port: int, headers: str, chunks: int) -> tuple[bytes, int]:
    """Send a streamed upload on a raw socket, stopping when the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(headers.encode())
        sent = 0
        part = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
        for _ in range(chunks):
            if select.select([sock], [], [], 0)[0]:
                break
            block = part + b"\0" * 65536
            part = b""
            try:
                sock.sendall(
                    b"%x\r\n%s\r\n" % (len(block), block) if "chunked" in headers else block
                )
            except OSError:
                break
            sent += len(block)
        return sock.recv(65536), sent


def test_an_oversize_upload_is_refused_before_it_is_all_read(
    settings: Settings, queue: RecordingQueue
) -> None:
    small = settings.model_copy(update={"max_upload_bytes": 200_000})
    with live_server(create_app(small, queue=queue)) as port:
        head = "POST /v1/videos HTTP/1.1\r\nHost: t\r\n"
        head += "Content-Type: multipart/form-data; boundary=x\r\n"
        declared = head + "Content-Length: 100000000\r\n\r\n"
        answer, sent = _post_until_answered(port, declared, 0)
        assert answer.startswith(b"HTTP/1.1 413") and b"upload_too_large" in answer
        streamed = head + "Transfer-Encoding: chunked\r\n\r\n"
        answer, sent = _post_until_answered(port, streamed, 1000)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        # stopped early (socket buffers take a few MB), not after all 65 MB
        assert sent < 16_000_000


def test_mask_arrays_upload_as_masks(client: TestClient, tmp_path: Path) -> None:
    np.save(tmp_path / "mask.npy", np.zeros((8, 16, 16), np.uint8))
    body = upload(client, tmp_path / "mask.npy")
    assert (body["kind"], body["frames"], body["width"], body["fps"]) == ("mask", 8, 16, None)
    np.save(tmp_path / "evil.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with (tmp_path / "evil.npy").open("rb") as f:
        assert_error(client.post("/v1/videos", files={"file": f}), 422, "invalid_mask")


def test_a_real_clip_from_the_shared_data(client: TestClient) -> None:
    from tests.conftest import shared_file

    body = upload(client, shared_file("videos/flag.avi"))
    assert (body["frames"], body["width"], body["height"]) == (250, 352, 288)


def test_other_containers(client: TestClient, tmp_path: Path) -> None:
    body = upload(client, write_clip(tmp_path / "clip.mkv", frames=4))
    assert body["frames"] == 4 and body["filename"] == "clip.mkv"
