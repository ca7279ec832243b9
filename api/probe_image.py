"""Still-image uploads (PNG, JPEG, WebP): probed with Pillow within the video pixel bounds."""

from __future__ import annotations

from pathlib import Path

from core.error_codes import refusal
from core.settings import Settings
from core.videos import Probe
from model.stills import ImageTooLarge, NotAnImage, probe_still


def probe_image(path: Path, settings: Settings) -> Probe:
    """An image's size, fully decoded once; 422 `invalid_image` or `image_too_large`."""
    limit = settings.max_video_side
    try:
        info = probe_still(path, max_side=limit)
    except ImageTooLarge as err:
        raise refusal(
            err,
            f"the image is {err.width}x{err.height}; this server accepts at most {limit} "
            "pixels a side",
            details={"width": err.width, "height": err.height, "limit": limit},
        ) from None
    except NotAnImage as err:
        # The model's message names the staged temp path; the client knows its own file name.
        reason = str(err).replace(f"{path}: ", "").replace(str(path), "the upload")
        raise refusal(err, f"not a usable image: {reason}") from None
    return Probe("image", 1, None, info.width, info.height)
