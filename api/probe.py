"""What an upload is: a decodable video within the limits, or a mask array (.npy / .mat)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import BinaryIO

import numpy as np

from api.errors import ApiError
from core.settings import Settings
from core.videos import Probe
from model.errors import VideoError, VideoTooCostly, VideoTooLarge, VideoTooLong
from model.video_io import DecodeBudget, probe_video

MASK_SUFFIXES = (".npy", ".mat")


def probe_upload(path: Path, suffix: str, settings: Settings) -> Probe:
    """Probe a staged upload and check it against the limits; ApiError 422 if unusable."""
    is_mask = suffix in MASK_SUFFIXES
    probe = _probe_mask(path, suffix, settings) if is_mask else _probe_video(path, settings)
    if probe.frames > settings.max_video_frames:
        raise _too_long(probe.frames, settings.max_video_frames)
    if max(probe.width, probe.height) > settings.max_video_side:
        raise _too_large(probe.width, probe.height, settings.max_video_side)
    return probe


def _too_long(frames: int | None, limit: int) -> ApiError:
    counted = f"{frames}" if frames is not None else f"more than {limit}"
    return ApiError(
        422,
        "video_too_long",
        f"the upload has {counted} frames; this server accepts at most {limit}",
        details={"frames": frames, "limit": limit},
    )


def _too_large(width: int, height: int, limit: int) -> ApiError:
    return ApiError(
        422,
        "video_too_large",
        f"the upload is {width}x{height}; this server accepts at most {limit} pixels a side",
        details={"width": width, "height": height, "limit": limit},
    )


def _too_costly(err: VideoTooCostly) -> ApiError:
    if err.bound == "pixels":
        what = f"more than {err.limit:.0f} decoded pixels (frames x width x height)"
    else:
        what = f"more than {err.limit:g} s to decode"
    return ApiError(
        422,
        "video_too_costly",
        f"the upload takes {what}, this server's bound for one upload",
        details={"bound": err.bound, "limit": err.limit, "reached": err.reached},
    )


def _probe_video(path: Path, settings: Settings) -> Probe:
    budget = DecodeBudget(settings.max_probe_pixels, settings.max_probe_seconds)
    limits = {"max_frames": settings.max_video_frames, "max_side": settings.max_video_side}
    try:
        info = probe_video(path, **limits, budget=budget)
    except VideoTooCostly as err:
        raise _too_costly(err) from None
    except VideoTooLong as err:
        raise _too_long(err.frames, err.limit) from None
    except VideoTooLarge as err:
        raise _too_large(err.width, err.height, err.limit) from None
    except VideoError as err:
        # The model's message names the staged temp path; the client knows its own file name.
        reason = str(err).replace(f"{path}: ", "").replace(str(path), "the upload")
        raise ApiError(422, "invalid_video", f"not a usable video: {reason}") from None
    return Probe("video", info.frames, info.fps, info.width, info.height)


def _invalid_mask(reason: str) -> ApiError:
    return ApiError(422, "invalid_mask", f"not a usable mask file: {reason}")


def _probe_mask(path: Path, suffix: str, settings: Settings) -> Probe:
    """Read only the array's header: shape is all the API needs; the worker reads the rest."""
    shape = _npy_shape(path) if suffix == ".npy" else _mat_shape(path, settings.max_upload_bytes)
    if suffix == ".mat":
        if len(shape) not in (3, 4):
            raise _invalid_mask(f"array shape {shape} is not H x W x T (x C)")
        height, width, frames = shape[:3]
    else:
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] not in (1, 3)):
            raise _invalid_mask(f"array shape {shape} is not T x H x W (x C, C 1 or 3)")
        frames, height, width = shape[:3]
    if min(frames, height, width) < 1:
        raise _invalid_mask(f"array shape {shape} is empty")
    return Probe("mask", frames, None, width, height)


def _npy_shape(path: Path) -> tuple[int, ...]:
    try:
        with path.open("rb") as f:
            major, _ = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if major == 1 else _header_2_0
            shape, _, dtype = read(f)
            data_bytes = path.stat().st_size - f.tell()
    except (ValueError, OSError) as err:
        raise _invalid_mask(f"not a .npy array ({err})") from None
    if dtype.hasobject:
        raise _invalid_mask("object arrays are not accepted (they would need unpickling)")
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise _invalid_mask(f"the array holds {dtype}, not numbers")
    # A header may promise more than the file holds; the worker would allocate what it promises.
    declared = math.prod(shape) * dtype.itemsize
    if declared != data_bytes:
        raise _invalid_mask(
            f"the header declares {declared} bytes of data, the file has {data_bytes}"
        )
    return tuple(int(n) for n in shape)


def _header_2_0(f: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    # Versions 2 and 3 share the header layout apart from its encoding.
    return np.lib.format.read_array_header_2_0(f)


# Bytes per element of the MATLAB classes scipy reads as plain numeric arrays; cells,
# structs and objects are not among them and are refused.
MAT_ITEMSIZE = {"double": 8, "single": 4, "logical": 1} | {
    f"{sign}int{bits}": bits // 8 for sign in ("", "u") for bits in (8, 16, 32, 64)
}


def _mat_shape(path: Path, max_bytes: int) -> tuple[int, ...]:
    import scipy.io  # slow to import; only .mat uploads need it

    try:
        variables = scipy.io.whosmat(str(path))
    except (ValueError, TypeError, OSError, NotImplementedError) as err:
        raise _invalid_mask(f"not a readable MATLAB v5 .mat file ({err})") from None
    found = {name: (tuple(shape), kind) for name, shape, kind in variables}
    if "masks" in found:
        shape, kind = found["masks"]
    elif len(found) == 1:
        shape, kind = next(iter(found.values()))
    else:
        raise _invalid_mask(f"no `masks` array (found {sorted(found) or 'none'})")
    if kind not in MAT_ITEMSIZE:
        raise _invalid_mask(f"the mask is a MATLAB {kind}, not a numeric array")
    # .mat variables may be zlib-compressed: a small upload can unpack to gigabytes in the
    # worker. What it unpacks to is held to the upload limit.
    unpacked = math.prod(shape) * MAT_ITEMSIZE[kind]
    if unpacked > max_bytes:
        raise _invalid_mask(
            f"the array unpacks to {unpacked} bytes, more than this server's upload limit "
            f"of {max_bytes}"
        )
    return shape
