"""Checks of a train job's mask against its clips that its schema alone can't make."""

from __future__ import annotations

from api.schemas import TrainJobCreate
from core.errors import Invalid
from core.tables import Video
from model.errors import MaskError
from model.masks import check_box_frames


def check_box_frames_fit(body: TrainJobCreate, sources: list[Video]) -> None:
    """Box frames are the clip's: one past the shortest clip is refused now, not by the worker."""
    if body.mask is None or body.mask.kind != "regions":
        return
    try:
        check_box_frames(body.mask, min(video.frames for video in sources))
    except MaskError as err:
        raise Invalid(str(err), code="mask_mismatch", details=[{"field": "mask.boxes"}]) from None
