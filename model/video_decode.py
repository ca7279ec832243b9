"""Decoding a video with limits: single-file containers only, the header checked before any
frame is decoded, decoding stopped past a budget of frames, size, pixels or seconds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image

from model.errors import VideoError, VideoTooCostly, VideoTooLarge, VideoTooLong


@dataclass(frozen=True)
class VideoInfo:
    """What probing a video found."""

    frames: int
    fps: float
    width: int
    height: int


# The demuxers a video may be read with: single-file containers only. Left out on purpose:
# playlists and lists of files (hls, concat/ffconcat, image2 sequences, ...), which would open
# further files or URLs named inside an upload, such as /etc/passwd or another user's video.
VIDEO_FORMATS = (
    "mov,mp4,m4a,3gp,3g2,mj2",
    "avi",
    "matroska,webm",
    "gif",
    "mpeg",
    "mpegts",
    "flv",
    "ogg",
    "yuv4mpegpipe",
)
# Only the local file we name may be opened: no other protocol (http:, concat:, pipe:, ...).
_OPEN_OPTIONS = {"protocol_whitelist": "file", "format_whitelist": ",".join(VIDEO_FORMATS)}


def _open(path: Path) -> av.container.InputContainer:
    """Open a file for decoding, turning every failure into a VideoError naming the file."""
    if not Path(path).is_file():
        raise VideoError(f"{path}: no such file")
    if Path(path).stat().st_size == 0:
        raise VideoError(f"{path}: the file is empty")
    try:
        container = av.open(str(path), mode="r", options=_OPEN_OPTIONS)
    except av.error.ArgumentError:
        # What ffmpeg says when the demuxer it found is not on the whitelist.
        raise VideoError(
            f"{path}: not a video container this reader accepts (mp4, mov, avi, mkv, webm, gif, "
            "mpeg, flv, ogg, y4m); playlists and lists of files are refused"
        ) from None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as err:
        raise VideoError(f"{path}: not a readable video ({err})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: the file has no video stream")
    return container


def _decoded(path: Path) -> Iterator[av.VideoFrame]:
    """Decoded frames of the first video stream, one at a time."""
    container = _open(path)
    decoded = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            decoded += 1
            yield frame
    except av.error.FFmpegError as err:
        declared = container.streams.video[0].frames
        if declared > decoded:  # a cut file: say how much of what it promises is there
            raise VideoError(f"{_truncation(path, declared, decoded)} ({err})") from None
        raise VideoError(f"{path}: the video is damaged or truncated ({err})") from None
    finally:
        container.close()


def iter_frames(path: Path) -> Iterator[Image.Image]:
    """Decode a video frame by frame as RGB images; memory holds one frame at a time."""
    for frame in _decoded(path):
        yield frame.to_image()


def stream_info(path: Path) -> VideoInfo:
    """Rate and size from the container header; `frames` as declared (0 when unknown)."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
        context = stream.codec_context
        return VideoInfo(stream.frames, rate, context.width, context.height)
    finally:
        container.close()


@dataclass(frozen=True)
class DecodeBudget:
    """What one probe may spend: decoded pixels (frames x width x height) and wall seconds."""

    pixels: int | None = None
    seconds: float | None = None


def probe_video(
    path: Path,
    *,
    max_frames: int | None = None,
    max_side: int | None = None,
    budget: DecodeBudget | None = None,
) -> VideoInfo:
    """Decode the whole file (as a stream) and report its true frame count, rate and size.

    With limits, the header's declared size and frame count are checked before any frame is
    decoded, and decoding stops at the first frame past `max_frames` or past the budget (a
    small file of one huge key frame and thousands of empty ones costs its pixels, not bytes).
    """
    budget = budget or DecodeBudget()
    started = time.monotonic()
    header = stream_info(path)
    _check_declared(path, header, max_frames, max_side)
    _check_spent(path, budget, header.frames * header.width * header.height, 0.0, "declares")
    frames = pixels = 0
    for frame in _decoded(path):
        frames += 1
        pixels += frame.width * frame.height
        _check_decoded(path, frame, frames, max_frames, max_side)
        _check_spent(path, budget, pixels, time.monotonic() - started, "decoded")
    if frames == 0:
        raise VideoError(f"{path}: no frame could be decoded")
    check_complete(path, header.frames, frames)
    return VideoInfo(frames=frames, fps=header.fps, width=header.width, height=header.height)


def _check_declared(
    path: Path, header: VideoInfo, max_frames: int | None, max_side: int | None
) -> None:
    """Refuse from the header alone: no frame of a 100000 x 100000 stream is ever decoded."""
    if header.width < 1 or header.height < 1:
        # ffmpeg zeroes sizes it deems impossible (e.g. 100000 x 100000): nothing to decode into.
        raise VideoError(f"{path}: the video stream declares no valid frame size")
    if max_side is not None and max(header.width, header.height) > max_side:
        raise _too_large(path, header.width, header.height, max_side)
    if max_frames is not None and header.frames > max_frames:
        raise VideoTooLong(
            f"{path}: the video declares {header.frames} frames, more than {max_frames}",
            frames=header.frames,
            limit=max_frames,
        )


def _check_decoded(
    path: Path, frame: av.VideoFrame, count: int, max_frames: int | None, max_side: int | None
) -> None:
    """The same limits on what decoding finds, for headers that lie or declare no count."""
    if max_frames is not None and count > max_frames:
        raise VideoTooLong(
            f"{path}: the video has more than {max_frames} frames", frames=None, limit=max_frames
        )
    if max_side is not None and max(frame.width, frame.height) > max_side:
        raise _too_large(path, frame.width, frame.height, max_side)


def _check_spent(path: Path, budget: DecodeBudget, pixels: int, seconds: float, how: str) -> None:
    """Stop a decode that passed its budget of pixels or of seconds."""
    if budget.pixels is not None and pixels > budget.pixels:
        raise VideoTooCostly(
            f"{path}: the video {how} more than {budget.pixels} pixels (frames x width x height)",
            bound="pixels",
            limit=budget.pixels,
            reached=pixels,
        )
    if budget.seconds is not None and seconds > budget.seconds:
        raise VideoTooCostly(
            f"{path}: decoding took more than {budget.seconds:g} s",
            bound="seconds",
            limit=budget.seconds,
            reached=round(seconds, 2),
        )


def check_complete(path: Path, declared: int, decoded: int) -> None:
    """Refuse a cut file: decoding a truncated one just stops early, without an error."""
    # A little slack: some encoders count frames a decoder drops (empty AVI packets).
    if declared > 0 and decoded < declared - max(2, declared // 100):
        raise VideoError(_truncation(path, declared, decoded))


def _truncation(path: Path, declared: int, decoded: int) -> str:
    return (
        f"{path}: the file is truncated: its header declares {declared} frames, "
        f"only {decoded} decode"
    )


def _too_large(path: Path, width: int, height: int, limit: int) -> VideoTooLarge:
    return VideoTooLarge(
        f"{path}: frames are {width}x{height}, larger than {limit} pixels a side",
        width=width,
        height=height,
        limit=limit,
    )
