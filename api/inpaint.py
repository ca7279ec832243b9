"""A train job's `purpose`: `inpaint` resolves the config as `dyngen inpaint` does."""

from __future__ import annotations

from api.schemas import TrainJobCreate
from core.tables import Video
from model.inpaint_config import inpaint_config


def with_purpose_defaults(body: TrainJobCreate, sources: list[Video]) -> TrainJobCreate:
    """The body with its purpose's defaults in its config (the job stores what it runs)."""
    if body.purpose != "inpaint":
        return body
    config = inpaint_config(body.config, min(video.frames for video in sources))
    return body.model_copy(update={"config": config})
