"""Video in and out: streaming decode with crop / resize / frame selection; mp4, gif, PNG grid."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal, Protocol

import av
import numpy as np
from PIL import Image

from model.errors import VideoError, VideoTooCostly, VideoTooLarge, VideoTooLong
from model.files import PendingFile, atomic_path

Resample = Literal["lanczos", "nearest"]
_RESAMPLE = {"lanczos": Image.Resampling.LANCZOS, "nearest": Image.Resampling.NEAREST}


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
    _check_complete(path, header.frames, frames)
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


def _check_complete(path: Path, declared: int, decoded: int) -> None:
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


def square_frame(
    image: Image.Image, size: int, resize: str = "crop", resample: Resample = "lanczos"
) -> np.ndarray:
    """Centre-crop (or stretch) to a square and resize: (size, size, 3) uint8."""
    width, height = image.size
    if resize == "crop":
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    resized = image.convert("RGB").resize((size, size), _RESAMPLE[resample], reducing_gap=3.0)
    return np.asarray(resized, dtype=np.uint8)


def read_video(
    path: Path,
    *,
    image_size: int,
    frames: int,
    start: int = 0,
    every: int = 1,
    resize: str = "crop",
    resample: Resample = "lanczos",
) -> np.ndarray:
    """Frames start, start + every, ... (`frames` of them), squared, resized: (T, S, S, 3) uint8."""
    kept: list[np.ndarray] = []
    last = start + every * (frames - 1)
    decoded = 0
    for index, image in enumerate(iter_frames(path)):
        decoded = index + 1
        if index == 0:
            _check_frame_size(path, image, image_size, resize)
        if index >= start and (index - start) % every == 0:
            kept.append(square_frame(image, image_size, resize, resample))
        if index >= last:
            break
    if len(kept) < frames:
        # a header that declares the frames asked for but a file that ends early is truncated
        _check_complete(path, stream_info(path).frames, decoded)
        raise VideoError(
            f"{path}: has {decoded} frames; {frames} frames from frame {start} every {every} "
            f"need {last + 1}"
        )
    return np.stack(kept)


class ClipSettings(Protocol):
    """How a clip is read: TrainConfig and LDSConfig both have these fields."""

    @property
    def image_size(self) -> int: ...
    @property
    def frames(self) -> int: ...
    @property
    def start(self) -> int: ...
    @property
    def every(self) -> int: ...
    @property
    def resize(self) -> str: ...


def read_clips(paths: list[Path], settings: ClipSettings, extra: int = 0) -> np.ndarray:
    """Every video read the same way (`extra` frames past the clip too): (N, T, S, S, 3) uint8."""
    if not paths:
        raise VideoError("no training video given")
    return np.stack(
        [
            read_video(
                Path(p),
                image_size=settings.image_size,
                frames=settings.frames + extra,
                start=settings.start,
                every=settings.every,
                resize=settings.resize,
            )
            for p in paths
        ]
    )


def _check_frame_size(path: Path, image: Image.Image, size: int, resize: str) -> None:
    """Refuse to upscale: frames must be at least the training size."""
    width, height = image.size
    small = min(width, height) < size if resize == "crop" else (width < size or height < size)
    if small:
        raise VideoError(f"{path}: frames are {width}x{height}, smaller than the image size {size}")


def to_tensor_scale(frames: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3) -> float32 (T, 3, H, W) in [-1, 1] (pixel / 127.5 - 1)."""
    return (frames.astype(np.float32) / 127.5 - 1.0).transpose(0, 3, 1, 2)


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """float (..., 3, H, W) in [-1, 1] -> uint8 (..., H, W, 3)."""
    pixels = np.clip(np.rint((frames + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return np.moveaxis(pixels, -3, -1)


class Mp4Writer:
    """H.264 yuv420p mp4 that plays in browsers, written frame by frame, published on close."""

    def __init__(self, path: Path, fps: float) -> None:
        self._file = PendingFile(path)
        self._container = av.open(
            str(self._file.tmp), mode="w", format="mp4", options={"movflags": "faststart"}
        )
        self._stream = self._container.add_stream(
            "libx264", rate=Fraction(fps).limit_denominator(1001)
        )
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": "17", "preset": "medium"}
        self._started = False

    def write(self, frame: np.ndarray) -> None:
        """Append one uint8 (H, W, 3) frame (H and W even)."""
        if not self._started:
            self._stream.height, self._stream.width = frame.shape[:2]
            self._started = True
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            self._container.mux(packet)

    def close(self, commit: bool = True) -> None:
        """Flush and publish (or drop) the file."""
        try:
            if commit:
                for packet in self._stream.encode():
                    self._container.mux(packet)
        finally:
            self._container.close()
        self._file.commit() if commit else self._file.abort()


class GifWriter:
    """Looping gif; frames kept palettised (one byte a pixel) until close writes them."""

    def __init__(self, path: Path, fps: float) -> None:
        self._path, self._fps = Path(path), fps
        self._images: list[Image.Image] = []

    def write(self, frame: np.ndarray) -> None:
        """Append one uint8 (H, W, 3) frame."""
        self._images.append(Image.fromarray(frame).convert("P", palette=Image.Palette.ADAPTIVE))

    def close(self, commit: bool = True) -> None:
        """Write the gif (or nothing)."""
        if not commit or not self._images:
            return
        first, *rest = self._images
        with atomic_path(self._path) as tmp:
            first.save(
                tmp,
                format="GIF",
                save_all=True,
                append_images=rest,
                duration=max(20, round(1000 / self._fps)),
                loop=0,
            )


def open_writer(path: Path, fps: float) -> Mp4Writer | GifWriter:
    """A streaming writer chosen by the file's suffix (.mp4 or .gif)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".mp4":
        return Mp4Writer(path, fps)
    if suffix == ".gif":
        return GifWriter(path, fps)
    raise ValueError(f"{path}: videos are written as .mp4 or .gif")


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float) -> None:
    """Write uint8 (H, W, 3) frames as mp4 or gif (by suffix), atomically."""
    writer = open_writer(path, fps)
    try:
        for frame in frames:
            writer.write(frame)
    except BaseException:
        writer.close(commit=False)
        raise
    writer.close()


def write_grid(path: Path, videos: np.ndarray, columns: int = 10, cell: int = 64) -> None:
    """PNG of `columns` evenly spaced frames (across) of each video (down), (V, T, H, W, 3)."""
    count, length, height, width = videos.shape[:4]
    picks = np.linspace(0, length - 1, min(columns, length)).round().astype(int)
    zoom = max(1, math.ceil(cell / max(height, width)))
    pad = 2
    grid = np.full(
        (count * (height * zoom + pad) + pad, len(picks) * (width * zoom + pad) + pad, 3),
        255,
        dtype=np.uint8,
    )
    for row in range(count):
        for col, t in enumerate(picks):
            tile = videos[row, t].repeat(zoom, axis=0).repeat(zoom, axis=1)
            y, x = pad + row * (height * zoom + pad), pad + col * (width * zoom + pad)
            grid[y : y + height * zoom, x : x + width * zoom] = tile
    with atomic_path(path) as tmp:
        Image.fromarray(grid).save(tmp, format="PNG")
