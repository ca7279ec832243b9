"""Frames as training reads them: decoded, squared (crop or stretch), resized, selected
(start, every, frames), and scaled to and from [-1, 1]."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from PIL import Image

from model.errors import VideoError
from model.video_decode import check_complete, iter_frames, stream_info

Resample = Literal["lanczos", "nearest"]
_RESAMPLE = {"lanczos": Image.Resampling.LANCZOS, "nearest": Image.Resampling.NEAREST}


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
        check_complete(path, stream_info(path).frames, decoded)
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
