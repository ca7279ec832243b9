"""What an upload is: a decodable video within the limits, a mask array (.npy / .mat), or a
still image (PNG, JPEG, WebP)."""

from __future__ import annotations

from pathlib import Path

from api.probe_image import probe_image
from core.error_codes import refusal
from core.errors import ServiceError
from core.settings import Settings, mask_limits
from core.videos import Probe
from model.errors import MaskError, VideoError, VideoTooCostly, VideoTooLarge, VideoTooLong
from model.masks import MASK_SUFFIXES, inspect_mask_file
from model.stills import STILL_SUFFIXES
from model.video_decode import DecodeBudget, probe_video


def probe_upload(path: Path, suffix: str, settings: Settings) -> Probe:
    """Probe a staged upload and check it against the limits; ApiError 422 if unusable."""
    if suffix in STILL_SUFFIXES:
        return probe_image(path, settings)
    is_mask = suffix in MASK_SUFFIXES
    probe = _probe_mask(path, suffix, settings) if is_mask else _probe_video(path, settings)
    if probe.frames > settings.max_video_frames:
        raise _too_long(probe.frames, settings.max_video_frames)
    if max(probe.width, probe.height) > settings.max_video_side:
        raise _too_large(probe.width, probe.height, settings.max_video_side)
    return probe


def _too_long(frames: int | None, limit: int) -> ServiceError:
    counted = f"{frames}" if frames is not None else f"more than {limit}"
    return refusal(
        VideoTooLong,
        f"the upload has {counted} frames; this server accepts at most {limit}",
        details={"frames": frames, "limit": limit},
    )


def _too_large(width: int, height: int, limit: int) -> ServiceError:
    return refusal(
        VideoTooLarge,
        f"the upload is {width}x{height}; this server accepts at most {limit} pixels a side",
        details={"width": width, "height": height, "limit": limit},
    )


def _too_costly(err: VideoTooCostly) -> ServiceError:
    if err.bound == "pixels":
        what = f"more than {err.limit:.0f} decoded pixels (frames x width x height)"
    else:
        what = f"more than {err.limit:g} s to decode"
    return refusal(
        err,
        f"the upload takes {what}, this server's bound for one upload",
        details={"bound": err.bound, "limit": err.limit, "reached": err.reached},
    )


def _probe_video(path: Path, settings: Settings) -> Probe:
    limits = {"max_frames": settings.max_video_frames, "max_side": settings.max_video_side}
    budget = DecodeBudget(settings.max_probe_pixels, settings.max_probe_seconds)
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
        raise refusal(VideoError, f"not a usable video: {reason}") from None
    return Probe("video", info.frames, info.fps, info.width, info.height)


def _probe_mask(path: Path, suffix: str, settings: Settings) -> Probe:
    """Check the mask's headers with the worker's own reader and limits; the API reads no data."""
    try:
        frames, height, width = inspect_mask_file(path, mask_limits(settings), suffix)
    except MaskError as err:
        # The model's message names the staged temp path; the client knows its own file name.
        reason = str(err).replace(f"{path}: ", "")
        raise refusal(err, f"not a usable mask file: {reason}") from None
    return Probe("mask", frames, None, width, height)
