"""Video and picture writers: mp4 (H.264, plays in browsers) frame by frame, looping gif, a
PNG grid of frames; every file published whole (temporary name, then rename)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from model.files import PendingFile, atomic_path


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
