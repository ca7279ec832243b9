"""Video decoding as a stream, in every container we promise, and writing that plays."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from model.errors import VideoError, VideoTooLarge, VideoTooLong
from model.procedural import waves
from model.video_decode import iter_frames, probe_video, stream_info
from model.video_frames import read_video, to_tensor_scale, to_uint8
from model.video_writers import write_grid, write_video
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
        "from pathlib import Path; from model.video_frames import read_video;"
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


def test_playlists_and_file_lists_never_open_other_files(tmp_path: Path) -> None:
    from tests.hostile import ffconcat, m3u8

    # a real video beside the lists: each list would make ffmpeg decode it (or /etc/passwd)
    encode(tmp_path / "other.mp4", "libx264", waves(6, 16))
    lists = [
        ffconcat(tmp_path / "sibling.ffconcat", "other.mp4"),
        ffconcat(tmp_path / "sibling.part", "other.mp4"),  # content sniffing, not the name
        ffconcat(tmp_path / "passwd.ffconcat", "/etc/passwd"),
        m3u8(tmp_path / "sibling.m3u8", "other.mp4"),
        m3u8(tmp_path / "file.m3u8", f"file:{tmp_path / 'other.mp4'}"),
        m3u8(tmp_path / "net.m3u8", "http://127.0.0.1:9/segment.ts"),
        m3u8(tmp_path / "passwd.m3u8", "/etc/passwd"),
    ]
    for path in lists:
        for read in (probe_video, stream_info, lambda p: list(iter_frames(p))):
            with pytest.raises(VideoError, match=r"not a video container|not a readable video"):
                read(path)


def test_a_declared_frame_size_is_refused_before_decoding(tmp_path: Path) -> None:
    from tests.hostile import declare_size, raw_avi

    avi = raw_avi(tmp_path / "raw.avi")
    assert probe_video(avi, max_side=16).width == 16
    # 10000 x 10000 is a size ffmpeg accepts; the frames inside are 16 x 16, so decoding would
    # fail: a VideoTooLarge proves the refusal came from the header
    big = declare_size(avi, tmp_path / "big.avi", 10_000, 10_000)
    with pytest.raises(VideoTooLarge) as refused:
        probe_video(big, max_side=4096)
    assert (refused.value.width, refused.value.height) == (10_000, 10_000)
    # 100000 x 100000 is one ffmpeg itself deems impossible: it reports no size at all
    huge = declare_size(avi, tmp_path / "huge.avi", 100_000, 100_000)
    with pytest.raises(VideoError, match="declares no valid frame size"):
        probe_video(huge, max_side=4096)


def test_counting_stops_past_the_frame_limit(tmp_path: Path) -> None:
    declared = encode(tmp_path / "long.mp4", "libx264", waves(40, 16))
    with pytest.raises(VideoTooLong) as refused:
        probe_video(declared, max_frames=10)
    assert (refused.value.frames, refused.value.limit) == (40, 10)  # from the header
    undeclared = encode(tmp_path / "long.mkv", "libx264", waves(40, 16))
    assert stream_info(undeclared).frames == 0  # matroska declares no count
    with pytest.raises(VideoTooLong) as refused:
        probe_video(undeclared, max_frames=10)
    assert refused.value.frames is None  # counted to 11, then stopped
    assert probe_video(undeclared, max_frames=40).frames == 40
