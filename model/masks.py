"""Occlusion masks: the paper's .mat files, .npy arrays, mask videos and programmatic kinds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from model.errors import MaskError, VideoError


class MissingFramesMask(BaseModel):
    """Whole frames missing (0-based indices into the training frames)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["missing_frames"] = "missing_frames"
    frames: list[Annotated[int, Field(ge=0)]] = Field(min_length=1)


class Box(BaseModel):
    """A rectangle in fractions of the (square) frame; `frames` None means every frame."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    x: float = Field(ge=0, le=1)
    y: float = Field(ge=0, le=1)
    width: float = Field(gt=0, le=1)
    height: float = Field(gt=0, le=1)
    frames: list[Annotated[int, Field(ge=0)]] | None = None


class RegionsMask(BaseModel):
    """Rectangles missing, in every frame or in the frames each box names."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["regions"] = "regions"
    boxes: list[Box] = Field(min_length=1)


class FileMask(BaseModel):
    """A mask from a file: .mat (key `masks`, H x W x T x C), .npy (T x H x W [x C]) or a video."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["file"] = "file"
    path: str


MaskSpec = Annotated[MissingFramesMask | RegionsMask | FileMask, Field(discriminator="kind")]


def parse_frame_list(text: str) -> list[int]:
    """'3,5,10-14' -> [3, 5, 10, 11, 12, 13, 14] (inclusive ranges)."""
    frames: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            first, _, last = part.partition("-")
            frames.extend(range(int(first), int(last or first) + 1))
    except ValueError:
        raise MaskError(
            f"frame list {text!r}: expected numbers and ranges like 3,5,10-14"
        ) from None
    if not frames:
        raise MaskError(f"frame list {text!r} names no frame")
    return frames


def build_visible(
    spec: MissingFramesMask | RegionsMask | FileMask,
    *,
    frames: int,
    image_size: int,
    source_size: tuple[int, int] | None = None,
    resize: str = "crop",
) -> np.ndarray:
    """The mask as visibility, (T, S, S) bool, True = observed; MaskError if it can't fit."""
    if isinstance(spec, MissingFramesMask):
        occluded = _missing_frames(spec, frames, image_size)
    elif isinstance(spec, RegionsMask):
        occluded = _regions(spec, frames, image_size)
    else:
        occluded = _from_file(Path(spec.path), frames, image_size, source_size, resize)
    if occluded.all():
        raise MaskError("the mask hides every pixel: nothing is left to learn from")
    return ~occluded


def _missing_frames(spec: MissingFramesMask, frames: int, size: int) -> np.ndarray:
    """Whole frames blanked."""
    beyond = [f for f in spec.frames if f >= frames]
    if beyond:
        raise MaskError(f"missing frame {beyond[0]} is past the {frames} training frames")
    occluded = np.zeros((frames, size, size), dtype=bool)
    occluded[spec.frames] = True
    return occluded


def _regions(spec: RegionsMask, frames: int, size: int) -> np.ndarray:
    """Rectangles blanked, each in its frames."""
    occluded = np.zeros((frames, size, size), dtype=bool)
    for box in spec.boxes:
        if box.x + box.width > 1 + 1e-9 or box.y + box.height > 1 + 1e-9:
            raise MaskError(f"box {box.model_dump(exclude={'frames'})} reaches past the frame")
        x0, y0 = round(box.x * size), round(box.y * size)
        x1, y1 = (
            max(x0 + 1, round((box.x + box.width) * size)),
            max(y0 + 1, round((box.y + box.height) * size)),
        )
        which = range(frames) if box.frames is None else box.frames
        for t in which:
            if t >= frames:
                raise MaskError(f"box frame {t} is past the {frames} training frames")
            occluded[t, y0:y1, x0:x1] = True
    return occluded


def check_mask_fits(
    name: str, shape: tuple[int, int, int], *, frames: int, source_size: tuple[int, int] | None
) -> None:
    """Refuse a (T, H, W) mask that can't cover `frames` training frames of this source size."""
    mask_frames, height, width = shape
    if mask_frames not in (1, frames):
        raise MaskError(
            f"{name}: the mask has {mask_frames} frames but training uses {frames}; "
            f"train on {mask_frames} frames or give a mask of {frames}"
        )
    if height != width and (source_size is None or (width, height) != tuple(source_size)):
        expected = (
            "square" if source_size is None else f"square or {source_size[0]}x{source_size[1]}"
        )
        raise MaskError(f"{name}: mask frames are {width}x{height}, expected {expected}")


def _from_file(
    path: Path, frames: int, size: int, source_size: tuple[int, int] | None, resize: str
) -> np.ndarray:
    """Read, check and resize a mask file to (T, S, S) occluded."""
    if not path.is_file():
        raise MaskError(f"{path}: no such mask file")
    suffix = path.suffix.lower()
    if suffix in (".mat", ".npy"):
        full = _read_mat(path) if suffix == ".mat" else _read_npy(path)
        shape = (full.shape[0], full.shape[1], full.shape[2])
        occluded = _resize_nearest(full, size, resize)
    else:
        occluded, shape = _read_mask_video(path, size, resize)
    check_mask_fits(str(path), shape, frames=frames, source_size=source_size)
    if occluded.shape[0] == 1:  # one frame stands for all of them
        occluded = np.repeat(occluded, frames, axis=0)
    return occluded


def _read_mat(path: Path) -> np.ndarray:
    """The authors' layout: key `masks`, H x W x T (x C), 1 = occluded -> (T, H, W) bool."""
    import scipy.io  # scipy is slow to import; only .mat masks need it

    try:
        content = scipy.io.loadmat(str(path))
    except NotImplementedError:
        raise MaskError(
            f"{path}: MATLAB v7.3 (HDF5) files are not supported; save with -v7"
        ) from None
    except (ValueError, TypeError, OSError) as err:
        raise MaskError(f"{path}: not a readable .mat file ({err})") from None
    arrays = {k: v for k, v in content.items() if not k.startswith("__")}
    if "masks" not in arrays and len(arrays) != 1:
        raise MaskError(f"{path}: no `masks` array (found {sorted(arrays) or 'none'})")
    array = np.asarray(arrays.get("masks", next(iter(arrays.values()))))
    if array.ndim == 4:
        array = array.max(axis=3)
    if array.ndim != 3:
        raise MaskError(f"{path}: mask shape {array.shape} is not H x W x T (x C)")
    return np.moveaxis(array, 2, 0) > 0


def _read_npy(path: Path) -> np.ndarray:
    """T x H x W (x C), nonzero = occluded -> (T, H, W) bool; never unpickles."""
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise MaskError(f"{path}: not a plain .npy array ({err})") from None
    except OSError as err:
        raise MaskError(f"{path}: not a readable .npy file ({err})") from None
    if array.ndim == 4 and array.shape[-1] in (1, 3):
        array = array.max(axis=3)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or (not np.issubdtype(array.dtype, np.number) and array.dtype != bool):
        raise MaskError(f"{path}: mask shape {array.shape} ({array.dtype}) is not T x H x W (x C)")
    return array.astype(np.float32) > 0.5


def _read_mask_video(path: Path, size: int, resize: str) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A video where white pixels are occluded -> (T, S, S) bool and its (T, H, W) shape."""
    from model.video_io import iter_frames

    # Each plane is resized as it is decoded: T full-size planes of a 4K mask video would
    # not fit in memory, T planes of the training size do.
    planes, height, width = [], 0, 0
    try:
        for image in iter_frames(path):
            width, height = image.size
            plane = np.asarray(image.convert("L")) > 127
            planes.append(_resize_nearest(plane[None], size, resize)[0])
    except VideoError as err:
        raise MaskError(f"mask {err}") from None
    if not planes:
        raise MaskError(f"{path}: the mask video has no frames")
    return np.stack(planes), (len(planes), height, width)


def _resize_nearest(occluded: np.ndarray, size: int, resize: str) -> np.ndarray:
    """Crop like the video (a non-square mask has the video's shape), then nearest-resize."""
    _, height, width = occluded.shape
    if height != width and resize == "crop":
        side = min(width, height)
        top, left = (height - side) // 2, (width - side) // 2
        occluded = occluded[:, top : top + side, left : left + side]
        height = width = side
    rows = ((np.arange(size) + 0.5) * height / size).astype(int)
    cols = ((np.arange(size) + 0.5) * width / size).astype(int)
    return occluded[:, rows][:, :, cols]
