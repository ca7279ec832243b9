"""Still images as uploads: probed with Pillow (`kind: image`), refused when not an image or too
large; `animate` job bodies checked before anything is queued."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from core.settings import Settings
from tests.service.conftest import RecordingQueue, assert_error, upload, write_clip
from tests.service.test_attacks import assert_nothing_stored, post_file


def _image(path: Path, width: int = 60, height: int = 40) -> Path:
    pixels = (np.arange(width * height * 3) % 251).astype(np.uint8).reshape(height, width, 3)
    Image.fromarray(pixels).save(path)
    return path


def test_png_jpeg_and_webp_uploads_are_images(client: TestClient, tmp_path: Path) -> None:
    for suffix in ("png", "jpg", "webp"):
        body = upload(client, _image(tmp_path / f"still.{suffix}"))
        assert (body["kind"], body["frames"], body["fps"]) == ("image", 1, None)
        assert (body["width"], body["height"]) == (60, 40)
        content = client.get(body["content_url"])
        assert content.status_code == 200 and content.headers["content-type"].startswith("image/")
    kinds = {item["kind"] for item in client.get("/v1/videos").json()["items"]}
    assert kinds == {"image"}


def test_a_file_named_like_an_image_that_is_not_one_is_refused(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "notes.png").write_text("these are notes, not pixels\n")
    error = assert_error(post_file(client, tmp_path / "notes.png"), 422, "invalid_image")
    assert "not a usable image" in error["message"] and str(tmp_path) not in error["message"]
    whole = _image(tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    assert_error(post_file(client, tmp_path / "cut.png"), 422, "invalid_image")
    # a video is not an image because of its name either
    (tmp_path / "clip.webp").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    assert_error(post_file(client, tmp_path / "clip.webp"), 422, "invalid_image")
    assert_nothing_stored(settings)


def test_an_image_past_the_pixel_bound_is_refused_from_its_header(
    settings: Settings, queue: RecordingQueue, tmp_path: Path
) -> None:
    app = create_app(settings.model_copy(update={"max_video_side": 50}), queue=queue)
    with TestClient(app) as client:
        error = assert_error(
            post_file(client, _image(tmp_path / "wide.png")), 422, "image_too_large"
        )
        assert error["details"] == {"width": 60, "height": 40, "limit": 50}
        assert upload(client, _image(tmp_path / "small.png", 50, 30))["kind"] == "image"


def test_animate_bodies_name_one_still(client: TestClient, tmp_path: Path) -> None:
    image = upload(client, _image(tmp_path / "still.png"))
    base = {"type": "animate", "model_id": "mdl_0123"}
    for wrong in (
        {},
        {"image_id": image["id"], "video_id": image["id"], "frame": 0},
        {"video_id": image["id"]},
        {"image_id": image["id"], "frame": 3},
        {"image_id": image["id"], "config": {"frames": "9"}},
    ):
        assert_error(client.post("/v1/jobs", json=base | wrong), 422)
    assert_error(client.post("/v1/jobs", json=base | {"image_id": image["id"]}), 404)
    # an image is not a training video
    train = {"type": "train", "video_ids": [image["id"]], "config": {"image_size": 16}}
    error = assert_error(client.post("/v1/jobs", json=train), 422, "not_a_video")
    assert "image" in error["message"]
    # nor a mask
    clip = upload(client, write_clip(tmp_path / "clip.mp4"))
    masked = {
        "type": "train",
        "video_ids": [clip["id"]],
        "config": {"image_size": 16, "frames": 8},
        "mask": {"kind": "upload", "video_id": image["id"]},
    }
    error = assert_error(client.post("/v1/jobs", json=masked), 422, "mask_mismatch")
    assert "still image" in error["message"]
