"""Occlusion masks: the paper's .mat files, .npy arrays, mask videos and programmatic kinds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, BinaryIO, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, Strict

from model.errors import MaskError, VideoError

MASK_SUFFIXES = (".npy", ".mat")
# Bytes per element of the MATLAB classes scipy reads as plain numeric arrays; cells,
# structs, sparse and char arrays can't be sized from their headers and are refused.
MAT_ITEMSIZE = {"double": 8, "single": 4, "logical": 1} | {
    f"{sign}int{bits}": bits // 8 for sign in ("", "u") for bits in (8, 16, 32, 64)
}
FrameIndex = Annotated[int, Strict(), Field(ge=0)]
Fraction = Annotated[float, Strict()]


class MaskTooLarge(MaskError):
    """A mask file whose arrays unpack to more than the limit allows."""

    code = "mask_too_large"


@dataclass(frozen=True)
class MaskLimits:
    """Bounds on a mask file, the same at upload and in the worker; None = unbounded."""

    max_bytes: int | None = None  # every array in the file, unpacked, together
    max_frames: int | None = None
    max_side: int | None = None


class MissingFramesMask(BaseModel):
    """Whole frames missing: the clip's frames, numbered from 0 over the whole clip like a
    mask file's and a box's, taken with the run's start and every."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["missing_frames"] = "missing_frames"
    frames: list[FrameIndex] = Field(min_length=1)


class Box(BaseModel):
    """A rectangle in fractions of the (square) frame, on the clip's frames `frames` (numbered
    from 0 over the whole clip, like a mask file's; taken with the run's start and every), or
    on every trained frame when None."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    x: Fraction = Field(ge=0, le=1)
    y: Fraction = Field(ge=0, le=1)
    width: Fraction = Field(gt=0, le=1)
    height: Fraction = Field(gt=0, le=1)
    frames: list[FrameIndex] | None = Field(
        None,
        description="the clip's frames it covers (from 0 over the whole clip, taken with start"
        " and every); null = every trained frame",
    )


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
    # the service's limits (the worker passes the ones uploads were checked against)
    max_bytes: int | None = None
    max_frames: int | None = None
    max_side: int | None = None

    @property
    def limits(self) -> MaskLimits:
        """The bounds this file is read under."""
        return MaskLimits(self.max_bytes, self.max_frames, self.max_side)


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
    start: int = 0,
    every: int = 1,
    clip_frames: int | None = None,
) -> np.ndarray:
    """The mask as visibility, (T, S, S) bool, True = observed; MaskError if it can't fit.

    A file mask longer than the training window is a mask of the whole clip: its frames are
    taken with the video's own `start` and `every`; so are boxes' frames, which are the
    clip's (one past the clip's `clip_frames`, when known, is refused)."""
    window = ClipWindow(frames, start, every)
    if isinstance(spec, MissingFramesMask):
        occluded = _missing_frames(spec, window, image_size, clip_frames)
    elif isinstance(spec, RegionsMask):
        if clip_frames is not None:
            check_mask_frames(spec, clip_frames)
        occluded = _regions(spec, window, image_size)
    else:
        occluded = _from_file(spec, window, image_size, source_size, resize)
    if occluded.all():
        raise MaskError("the mask hides every pixel: nothing is left to learn from")
    return ~occluded


def _missing_frames(
    spec: MissingFramesMask, window: ClipWindow, size: int, clip_frames: int | None
) -> np.ndarray:
    """Whole frames blanked: the trained frames the listed clip frames become."""
    if clip_frames is not None:
        check_mask_frames(spec, clip_frames)
    occluded = np.zeros((window.frames, size, size), dtype=bool)
    occluded[trained_missing_frames(spec, window)] = True
    return occluded


def trained_missing_frames(spec: MissingFramesMask, window: ClipWindow) -> list[int]:
    """Where the missing clip frames are among the trained ones; MaskError if nowhere."""
    trained = window.positions(spec.frames)
    if not trained:
        raise MaskError(
            f"none of the missing frames ({spec.frames[0]}, ...) is trained on: the run takes "
            f"the clip's frames {window.start} to {window.needed - 1}, every {window.every}"
        )
    return trained


def check_mask_frames(spec: MissingFramesMask | RegionsMask, clip_frames: int) -> None:
    """Refuse a missing frame or a box frame the clip doesn't have (both are the clip's)."""
    if isinstance(spec, MissingFramesMask):
        beyond = [t for t in spec.frames if t >= clip_frames]
        if beyond:
            raise MaskError(
                f"missing frame {beyond[0]} is past the clip's {clip_frames} frames (0 to "
                f"{clip_frames - 1}; missing frames are the clip's, before start and every)"
            )
        return
    for number, box in enumerate(spec.boxes, start=1):
        beyond = [t for t in box.frames or () if t >= clip_frames]
        if beyond:
            raise MaskError(
                f"box {number} names frame {beyond[0]}, but the clip has {clip_frames} frames "
                f"(0 to {clip_frames - 1}; box frames are the clip's, before start and every)"
            )


def _regions(spec: RegionsMask, window: ClipWindow, size: int) -> np.ndarray:
    """Rectangles blanked, each in the trained frames its clip frames become."""
    occluded = np.zeros((window.frames, size, size), dtype=bool)
    for box in spec.boxes:
        if box.x + box.width > 1 + 1e-9 or box.y + box.height > 1 + 1e-9:
            raise MaskError(f"box {box.model_dump(exclude={'frames'})} reaches past the frame")
        x0, y0 = round(box.x * size), round(box.y * size)
        x1, y1 = (
            max(x0 + 1, round((box.x + box.width) * size)),
            max(y0 + 1, round((box.y + box.height) * size)),
        )
        which = range(window.frames) if box.frames is None else window.positions(box.frames)
        for t in which:  # a clip frame the run doesn't train on hides nothing
            occluded[t, y0:y1, x0:x1] = True
    return occluded


@dataclass(frozen=True)
class ClipWindow:
    """The frames a run trains on: `frames` of them from `start`, every `every`-th."""

    frames: int
    start: int = 0
    every: int = 1

    @property
    def needed(self) -> int:
        """Frames of the clip the window reaches through."""
        return self.start + self.every * (self.frames - 1) + 1

    def positions(self, clip_frames: list[int]) -> list[int]:
        """Where these frames of the clip are in the window, those it trains on."""
        offsets = [t - self.start for t in clip_frames]
        return [
            o // self.every
            for o in offsets
            if o >= 0 and o % self.every == 0 and o // self.every < self.frames
        ]

    def align(self, occluded: np.ndarray) -> np.ndarray:
        """A mask of the window: one frame for all, the window's own, or the whole clip's
        frames taken like the video's."""
        if occluded.shape[0] in (1, self.frames):
            return occluded
        return occluded[self.start : self.needed : self.every]


def check_mask_fits(
    name: str,
    shape: tuple[int, int, int],
    *,
    frames: int | ClipWindow,
    source_size: tuple[int, int] | None,
) -> None:
    """Refuse a (T, H, W) mask that can't cover the training window of this source size: it
    must have one frame, the window's frames, or reach through the window in the clip."""
    window = frames if isinstance(frames, ClipWindow) else ClipWindow(frames)
    mask_frames, height, width = shape
    if mask_frames not in (1, window.frames) and mask_frames < window.needed:
        raise MaskError(
            f"{name}: the mask has {mask_frames} frames but training uses {window.frames} "
            f"(a mask of the whole clip needs at least {window.needed}: start {window.start}, "
            f"every {window.every}); give a mask of {window.frames} frames or of the whole clip"
        )
    if height != width and (source_size is None or (width, height) != tuple(source_size)):
        expected = (
            "square" if source_size is None else f"square or {source_size[0]}x{source_size[1]}"
        )
        raise MaskError(f"{name}: mask frames are {width}x{height}, expected {expected}")


def _from_file(
    spec: FileMask,
    window: ClipWindow,
    size: int,
    source_size: tuple[int, int] | None,
    resize: str,
) -> np.ndarray:
    """Read, check and resize a mask file to (T, S, S) occluded."""
    path = Path(spec.path)
    if not path.is_file():
        raise MaskError(f"{path}: no such mask file")
    suffix = path.suffix.lower()
    if suffix in MASK_SUFFIXES:
        full = read_mask_array(path, spec.limits)
        shape = (full.shape[0], full.shape[1], full.shape[2])
        occluded = _resize_nearest(full, size, resize)
    else:
        occluded, shape = _read_mask_video(path, size, resize)
    check_mask_fits(str(path), shape, frames=window, source_size=source_size)
    occluded = window.align(occluded)
    if occluded.shape[0] == 1:  # one frame stands for all of them
        occluded = np.repeat(occluded, window.frames, axis=0)
    return occluded


def read_mask_array(path: Path, limits: MaskLimits) -> np.ndarray:
    """A .mat or .npy mask as (T, H, W) bool, 1 = occluded; checked against `limits` from
    its headers before any data is read or unpacked."""
    if path.suffix.lower() == ".mat":
        name, _ = inspect_mat(path, limits)
        return _read_mat(path, name)
    inspect_npy(path, limits)
    return _read_npy(path)


def inspect_mask_file(
    path: Path, limits: MaskLimits, suffix: str | None = None
) -> tuple[int, int, int]:
    """The (T, H, W) of a .mat or .npy mask (by `suffix`, default the path's) from its headers
    alone, within `limits`."""
    if (suffix or path.suffix).lower() == ".mat":
        return inspect_mat(path, limits)[1]
    return inspect_npy(path, limits)


def inspect_mat(path: Path, limits: MaskLimits) -> tuple[str, tuple[int, int, int]]:
    """The mask variable's name and (T, H, W); every variable in the file is counted."""
    import scipy.io  # scipy is slow to import; only .mat masks need it

    try:
        variables = scipy.io.whosmat(str(path))
    except NotImplementedError:
        raise MaskError(
            f"{path}: MATLAB v7.3 (HDF5) files are not supported; save with -v7"
        ) from None
    except (ValueError, TypeError, OSError) as err:
        raise MaskError(f"{path}: not a readable MATLAB v5 .mat file ({err})") from None
    found = {name: (tuple(int(n) for n in shape), kind) for name, shape, kind in variables}
    if "masks" not in found and len(found) != 1:
        raise MaskError(f"{path}: no `masks` array (found {sorted(found) or 'none'})")
    name = "masks" if "masks" in found else next(iter(found))
    for other, (_, kind) in found.items():
        if kind not in MAT_ITEMSIZE:
            raise MaskError(f"{path}: variable `{other}` is a MATLAB {kind}, not a numeric array")
    # .mat variables may be zlib-compressed: a small file can unpack to gigabytes. Every
    # variable counts, also those the reader never loads.
    unpacked = sum(math.prod(shape) * MAT_ITEMSIZE[kind] for shape, kind in found.values())
    _check_bytes(path, unpacked, limits)
    shape = found[name][0]
    if len(shape) not in (3, 4):
        raise MaskError(f"{path}: mask shape {shape} is not H x W x T (x C)")
    height, width, frames = shape[:3]
    return name, _check_shape(path, (frames, height, width), limits)


def inspect_npy(path: Path, limits: MaskLimits) -> tuple[int, int, int]:
    """The (T, H, W) of a .npy mask from its header; refuses pickles and short files."""
    try:
        with path.open("rb") as f:
            major, _ = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if major == 1 else _header_2_0
            shape, _, dtype = read(f)
            data_bytes = path.stat().st_size - f.tell()
    except (ValueError, OSError) as err:
        raise MaskError(f"{path}: not a .npy array ({err})") from None
    if dtype.hasobject:
        raise MaskError(f"{path}: object arrays are not accepted (they would need unpickling)")
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise MaskError(f"{path}: the array holds {dtype}, not numbers")
    # A header may promise more than the file holds; np.load would allocate what it promises.
    declared = math.prod(shape) * dtype.itemsize
    if declared != data_bytes:
        raise MaskError(
            f"{path}: the header declares {declared} bytes of data, the file has {data_bytes}"
        )
    _check_bytes(path, declared, limits)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] not in (1, 3)):
        raise MaskError(f"{path}: mask shape {shape} is not T x H x W (x C, C 1 or 3)")
    frames, height, width = (int(n) for n in shape[:3])
    return _check_shape(path, (frames, height, width), limits)


def _header_2_0(f: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    # Versions 2 and 3 share the header layout apart from its encoding.
    return np.lib.format.read_array_header_2_0(f)


def _check_bytes(path: Path, unpacked: int, limits: MaskLimits) -> None:
    if limits.max_bytes is not None and unpacked > limits.max_bytes:
        raise MaskTooLarge(
            f"{path}: the file's arrays unpack to {unpacked} bytes, more than the limit of "
            f"{limits.max_bytes}"
        )


def _check_shape(
    path: Path, shape: tuple[int, int, int], limits: MaskLimits
) -> tuple[int, int, int]:
    frames, height, width = shape
    if min(shape) < 1:
        raise MaskError(f"{path}: mask shape {shape} is empty")
    if limits.max_frames is not None and frames > limits.max_frames:
        raise MaskTooLarge(f"{path}: the mask has {frames} frames, more than {limits.max_frames}")
    if limits.max_side is not None and max(height, width) > limits.max_side:
        raise MaskTooLarge(
            f"{path}: mask frames are {width}x{height}, more than {limits.max_side} a side"
        )
    return shape


def _read_mat(path: Path, name: str) -> np.ndarray:
    """The authors' layout: key `masks`, H x W x T (x C), 1 = occluded -> (T, H, W) bool."""
    import scipy.io

    try:
        # only the mask variable is unpacked; the others were counted, never loaded
        content = scipy.io.loadmat(str(path), variable_names=[name])
    except (ValueError, TypeError, OSError, NotImplementedError) as err:
        raise MaskError(f"{path}: not a readable .mat file ({err})") from None
    if name not in content:
        raise MaskError(f"{path}: no `{name}` array")
    array = np.asarray(content[name])
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
    missing: np.ndarray = array.astype(np.float32) > 0.5
    return missing


def _read_mask_video(path: Path, size: int, resize: str) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A video where white pixels are occluded -> (T, S, S) bool and its (T, H, W) shape."""
    from model.video_decode import iter_frames

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
