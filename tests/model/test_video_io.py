"""Video decoding as a stream, in every container we promise, and writing that plays."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from model.errors import VideoError
from model.procedural import waves
from model.video_io import (
    probe_video,
    read_video,
    to_tensor_scale,
    to_uint8,
    write_grid,
    write_video,
)
from tests.conftest import ROOT, shared_file


def encode(path: Path, codec: str, frames: np.ndarray, pix_fmt: str = "yuv420p") -> Path:
    """Write frames with PyAV in the container the suffix names."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize(
    ("suffix", "codec"),
    [
        ("mp4", "libx264"),
        ("avi", "mpeg4"),
        ("mov", "libx264"),
        ("mkv", "libx264"),
        ("webm", "libvpx"),
    ],
)
def test_reads_each_container(tmp_path: Path, suffix: str, codec: str) -> None:
    frames = waves(12, 32)
    path = encode(tmp_path / f"clip.{suffix}", codec, frames)
    clip = read_video(path, image_size=16, frames=10)
    assert clip.shape == (10, 16, 16, 3) and clip.dtype == np.uint8


def test_reads_a_gif_and_writes_one(tmp_path: Path) -> None:
    write_video(tmp_path / "a.gif", iter(waves(8, 16)), 10)
    assert read_video(tmp_path / "a.gif", image_size=16, frames=8).shape == (8, 16, 16, 3)


def test_start_and_every_pick_the_right_frames(tmp_path: Path) -> None:
    frames = np.zeros((20, 16, 16, 3), np.uint8)
    frames[:, :, :] = (np.arange(20) * 12)[:, None, None, None]  # brightness = frame index
    path = encode(tmp_path / "ramp.mp4", "libx264", frames)
    clip = read_video(path, image_size=16, frames=4, start=2, every=5)
    np.testing.assert_allclose(clip.mean(axis=(1, 2, 3)), [24, 84, 144, 204], atol=4)


def test_written_mp4_is_h264_yuv420p(tmp_path: Path) -> None:
    write_video(tmp_path / "out.mp4", iter(waves(10, 16)), 25)
    with av.open(str(tmp_path / "out.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
    assert probe_video(tmp_path / "out.mp4").frames == 10


def test_crop_and_stretch(tmp_path: Path) -> None:
    wide = np.zeros((4, 16, 48, 3), np.uint8)
    wide[:, :, 16:32] = 255  # white centre square, black sides
    path = encode(tmp_path / "wide.mp4", "libx264", wide)
    cropped = read_video(path, image_size=16, frames=4, resize="crop")
    stretched = read_video(path, image_size=16, frames=4, resize="stretch")
    assert cropped.mean() > 230
    assert 60 < stretched.mean() < 120


def test_scale_is_fixed_not_per_frame() -> None:
    frames = np.full((2, 4, 4, 3), 64, np.uint8)
    scaled = to_tensor_scale(frames)
    np.testing.assert_allclose(scaled, 64 / 127.5 - 1)
    np.testing.assert_array_equal(to_uint8(scaled), frames)


def test_grid_png(tmp_path: Path) -> None:
    write_grid(tmp_path / "g.png", np.stack([waves(12, 16), waves(12, 16, seed=1)]), columns=5)
    from PIL import Image

    image = Image.open(tmp_path / "g.png")
    assert image.size == (5 * (64 + 2) + 2, 2 * (64 + 2) + 2)


def test_the_720p_clip_loads_in_bounded_memory() -> None:
    fire = shared_file("videos/fire_720p.avi")
    script = (
        "from pathlib import Path; from model.video_io import read_video;"
        f"v = read_video(Path({str(fire)!r}), image_size=64, frames=200);"
        # VmHWM is this process's own peak (ru_maxrss would carry the forking parent's)
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1];"
        "print(v.shape[0], hwm)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    frames, peak_kib = map(int, out.stdout.split())
    assert frames == 200
    # all 200 frames decoded at once would be 200 x 720 x 1280 x 3 = 553 MB
    assert peak_kib < 250_000, f"peak RSS {peak_kib / 1024:.0f} MiB"


def test_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(VideoError, match="not a readable video"):
        read_video(path, image_size=16, frames=4)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").touch()
    with pytest.raises(VideoError, match="empty"):
        probe_video(tmp_path / "empty.mp4")


def test_truncated_video_gives_too_few_frames(tmp_path: Path) -> None:
    path = encode(tmp_path / "full.avi", "mpeg4", waves(40, 32))
    data = path.read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 3])
    with pytest.raises(VideoError, match=r"not a readable video|has \d+ frames|damaged"):
        read_video(tmp_path / "cut.avi", image_size=16, frames=40)


def test_fewer_frames_than_asked(tmp_path: Path) -> None:
    path = encode(tmp_path / "short.mp4", "libx264", waves(6, 16))
    with pytest.raises(VideoError, match="has 6 frames"):
        read_video(path, image_size=16, frames=10)


def test_frames_too_small_for_the_size(tmp_path: Path) -> None:
    path = encode(tmp_path / "small.mp4", "libx264", waves(6, 16))
    with pytest.raises(VideoError, match="smaller than the image size 32"):
        read_video(path, image_size=32, frames=4)
