"""What an upload is: a decodable video within the limits, or a mask array (.npy / .mat)."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np

from api.errors import ApiError
from core.settings import Settings
from core.videos import Probe
from model.errors import VideoError
from model.video_io import probe_video

MASK_SUFFIXES = (".npy", ".mat")


def probe_upload(path: Path, suffix: str, settings: Settings) -> Probe:
    """Probe a staged upload and check it against the limits; ApiError 422 if unusable."""
    probe = _probe_mask(path, suffix) if suffix in MASK_SUFFIXES else _probe_video(path)
    if probe.frames > settings.max_video_frames:
        raise ApiError(
            422,
            "video_too_long",
            f"the upload has {probe.frames} frames; this server accepts at most "
            f"{settings.max_video_frames}",
            details={"frames": probe.frames, "limit": settings.max_video_frames},
        )
    if max(probe.width, probe.height) > settings.max_video_side:
        raise ApiError(
            422,
            "video_too_large",
            f"the upload is {probe.width}x{probe.height}; this server accepts at most "
            f"{settings.max_video_side} pixels a side",
            details={"width": probe.width, "height": probe.height},
        )
    return probe


def _probe_video(path: Path) -> Probe:
    try:
        info = probe_video(path)
    except VideoError as err:
        # The model's message names the staged temp path; the client knows its own file name.
        reason = str(err).replace(f"{path}: ", "").replace(str(path), "the upload")
        raise ApiError(422, "invalid_video", f"not a usable video: {reason}") from None
    return Probe("video", info.frames, info.fps, info.width, info.height)


def _invalid_mask(reason: str) -> ApiError:
    return ApiError(422, "invalid_mask", f"not a usable mask file: {reason}")


def _probe_mask(path: Path, suffix: str) -> Probe:
    """Read only the array's header: shape is all the API needs; the worker reads the rest."""
    shape = _npy_shape(path) if suffix == ".npy" else _mat_shape(path)
    if suffix == ".mat":
        if len(shape) not in (3, 4):
            raise _invalid_mask(f"array shape {shape} is not H x W x T (x C)")
        height, width, frames = shape[:3]
    else:
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) not in (3, 4):
            raise _invalid_mask(f"array shape {shape} is not T x H x W (x C)")
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
    except (ValueError, OSError) as err:
        raise _invalid_mask(f"not a .npy array ({err})") from None
    if dtype.hasobject:
        raise _invalid_mask("object arrays are not accepted (they would need unpickling)")
    return tuple(int(n) for n in shape)


def _header_2_0(f: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    # Versions 2 and 3 share the header layout apart from its encoding.
    return np.lib.format.read_array_header_2_0(f)


def _mat_shape(path: Path) -> tuple[int, ...]:
    import scipy.io  # slow to import; only .mat uploads need it

    try:
        variables = scipy.io.whosmat(str(path))
    except (ValueError, TypeError, OSError, NotImplementedError) as err:
        raise _invalid_mask(f"not a readable MATLAB v5 .mat file ({err})") from None
    shapes = {name: shape for name, shape, _ in variables}
    if "masks" in shapes:
        return tuple(shapes["masks"])
    if len(shapes) == 1:
        return tuple(next(iter(shapes.values())))
    raise _invalid_mask(f"no `masks` array (found {sorted(shapes) or 'none'})")
