"""Still images (PNG, JPEG, WebP): probed within bounds and read like a training frame."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from model.errors import VideoError, VideoTooLarge
from model.video_frames import read_video, square_frame

STILL_FORMATS = ("PNG", "JPEG", "WEBP")
STILL_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


class NotAnImage(VideoError):
    """A file that is not a PNG, JPEG or WebP image Pillow can decode."""

    code = "invalid_image"


class ImageTooLarge(VideoTooLarge):
    """An image wider or taller than the caller accepts."""

    code = "image_too_large"


@dataclass(frozen=True)
class StillInfo:
    """What probing an image found."""

    format: str
    width: int
    height: int


def _open_still(path: Path, max_side: int | None) -> Image.Image:
    """Open an image from its header alone, refusing other formats and oversized frames."""
    if not Path(path).is_file():
        raise NotAnImage(f"{path}: no such file")
    try:
        # Pillow reads only the header here; the size is checked before any pixel is decoded
        image = Image.open(path, formats=list(STILL_FORMATS))
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise NotAnImage(f"{path}: not a PNG, JPEG or WebP image ({err})") from None
    width, height = image.size
    if max_side is not None and max(width, height) > max_side:
        image.close()
        raise ImageTooLarge(
            f"{path}: the image is {width}x{height}, more than {max_side} pixels a side",
            width=width,
            height=height,
            limit=max_side,
        )
    return image


def _decoded(image: Image.Image, path: Path) -> Image.Image:
    """The first frame fully decoded as RGB; a truncated or damaged file is refused."""
    try:
        with warnings.catch_warnings():
            # our own bound on the side was checked; Pillow's bomb warning is an error here
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.seek(0)
            return image.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning) as err:
        raise NotAnImage(f"{path}: the image could not be decoded ({err})") from None


def probe_still(path: Path, max_side: int | None = None) -> StillInfo:
    """Format and size of an image, decoded once to prove it is whole; within `max_side`."""
    image = _open_still(path, max_side)
    with image:
        info = StillInfo(str(image.format), *image.size)
        _decoded(image, path)
    return info


def read_still(
    path: Path, size: int, resize: str = "crop", max_side: int | None = None
) -> np.ndarray:
    """An image squared and resized like a training frame: (size, size, 3) uint8."""
    image = _open_still(path, max_side)
    with image:
        width, height = image.size
        if min(width, height) < size:  # never upscaled, as training frames never are
            raise NotAnImage(f"{path}: the image is {width}x{height}, smaller than {size}")
        return square_frame(_decoded(image, path), size, resize)


def read_video_frame(path: Path, frame: int, size: int, resize: str = "crop") -> np.ndarray:
    """Frame `frame` (0-based) of a video, squared and resized: (size, size, 3) uint8."""
    frames = read_video(path, image_size=size, frames=1, start=frame, resize=resize)
    return np.asarray(frames[0])


def is_still(path: Path) -> bool:
    """Whether the file name says it is an image (by suffix)."""
    return Path(path).suffix.lower() in STILL_SUFFIXES
