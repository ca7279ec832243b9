"""Admission: whether a job may be queued (the API) or started (the worker), decided once.

The API and the worker call the same plan function with the rows each read; the worker with
its own settings, so a job queued under other limits, or by an older API, can't take down a
smaller worker. A refusal is `Invalid` (422) with a stable code.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core import checkpoints, models, videos
from core.budget import check_budget, synthesis_estimate, train_estimate
from core.errors import Invalid
from core.settings import Settings
from core.tables import Video
from model.animate_config import AnimateConfig
from model.config import SynthesisConfig, TrainConfig
from model.errors import MaskError
from model.inpaint_config import inpaint_config
from model.masks import (
    ClipWindow,
    MissingFramesMask,
    RegionsMask,
    check_mask_fits,
    check_mask_frames,
    trained_missing_frames,
)


def plan_train_request(
    *,
    session: Session,
    owner_id: str | None,
    config: TrainConfig,
    video_ids: list[str],
    mask: dict[str, Any] | None,
    settings: Settings,
    purpose: str = "train",
) -> TrainConfig:
    """A train request's plan: its uploads read as the caller's (404 otherwise), then
    `plan_train_job`."""
    sources = [
        videos.get_video(session=session, owner_id=owner_id, video_id=video_id)
        for video_id in video_ids
    ]
    mask_file = None
    if mask is not None and mask["kind"] == "upload":
        mask_file = videos.get_video(session=session, owner_id=owner_id, video_id=mask["video_id"])
    return plan_train_job(
        config=config,
        sources=sources,
        mask=mask,
        mask_file=mask_file,
        settings=settings,
        purpose=purpose,
    )


def plan_synthesis_request(
    *,
    session: Session,
    owner_id: str | None,
    model_id: str | None,
    checkpoint_id: str | None,
    config: SynthesisConfig,
    settings: Settings,
) -> str | None:
    """A synthesis request's plan: the caller's model (or intermediate checkpoint) that can
    sample, then `plan_synthesis_job`; returns the id of the model it samples."""
    if checkpoint_id is not None:
        _, training = checkpoints.usable_checkpoint(
            session=session, owner_id=owner_id, artifact_id=checkpoint_id
        )
        model_config, model_id = training.config, training.model_id
    else:
        assert model_id is not None, "the schema asks for one of the two"
        model = models.usable_model(session=session, owner_id=owner_id, model_id=model_id)
        model_config = model.config
    plan_synthesis_job(model_config=model_config, config=config, settings=settings)
    return model_id


def plan_train_job(
    *,
    config: TrainConfig,
    sources: list[Video],
    mask: dict[str, Any] | None,
    mask_file: Video | None,
    settings: Settings,
    purpose: str = "train",
) -> TrainConfig:
    """The config the training runs (an unset `frames` fitted to the shortest video, the
    purpose's defaults in), once its inputs and its estimated cost pass the deployment's limits."""
    for video in sources:
        _check_kind(video, "video_ids", "video", "not_a_video")
    shortest = min(video.frames for video in sources)
    if purpose == "inpaint":  # what `dyngen inpaint` applies; the limits below see it
        config = inpaint_config(config, shortest)
    if config.epochs > settings.max_epochs:
        raise _too_big("config.epochs", f"this server runs at most {settings.max_epochs} epochs")
    config = config.fit_to_length(shortest)
    for video in sources:
        _check_length(config, video)
    _check_mask_frames(mask, shortest, config.window)
    if mask_file is not None:
        if mask_file.kind == "image":
            raise Invalid(
                f"mask.video_id: {mask_file.id} is a still image, not a mask",
                code="mask_mismatch",
                details=[{"field": "mask.video_id", "id": mask_file.id}],
            )
        _check_mask_fits(config, mask_file, sources[0])
    check_budget(train_estimate(config, sources, mask, mask_file), settings)
    return config


def plan_synthesis_job(
    *, model_config: dict[str, Any], config: SynthesisConfig, settings: Settings
) -> None:
    """Refuse a synthesis past the server's frame limit or its budget."""
    _check_frames(config.num_videos * config.frames, settings)
    check_budget(synthesis_estimate(model_config, config), settings)


def plan_animate_job(
    *, model_config: dict[str, Any], config: AnimateConfig, settings: Settings
) -> None:
    """Refuse an animation past the frame limit, or costlier than the budget: it is priced as
    a synthesis as costly as the fit plus the rollout."""
    _check_frames(config.num_videos * config.frames, settings)
    costly = config.budget_synthesis(int(model_config.get("chunk_length", 30)))
    check_budget(synthesis_estimate(model_config, costly), settings)


def _check_frames(frames: int, settings: Settings) -> None:
    limit = settings.max_synthesis_frames
    if frames > limit:
        raise _too_big(
            "config.frames", f"num_videos x frames may be at most {limit} on this server"
        )


def _too_big(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", code="limit_exceeded", details=[{"field": field}])


def _check_kind(video: Video, field: str, wanted: str, code: str) -> None:
    if video.kind != wanted:
        raise Invalid(
            f"{field}: {video.id} is a {video.kind} file, not a {wanted}",
            code=code,
            details=[{"field": field, "id": video.id}],
        )


def _check_length(config: TrainConfig, video: Video) -> None:
    """Refuse now what the worker would fail on: a clip shorter than the frames asked for."""
    needed = config.window.needed
    if video.frames < needed:
        raise Invalid(
            f"config.frames: video {video.id} has {video.frames} frames, but start "
            f"{config.start}, every {config.every} and frames {config.frames} need {needed}",
            code="video_too_short",
            details=[{"field": "config.frames", "id": video.id, "frames": video.frames}],
        )


# the masks whose frame lists are the clip's: their model and the field an error names
_FRAME_LISTS: dict[str, tuple[type[RegionsMask] | type[MissingFramesMask], str]] = {
    "regions": (RegionsMask, "mask.boxes"),
    "missing_frames": (MissingFramesMask, "mask.frames"),
}


def _check_mask_frames(mask: dict[str, Any] | None, clip_frames: int, window: ClipWindow) -> None:
    """Missing frames and box frames are the clip's: one past the shortest clip is refused
    now, not by the worker, and so is a list of missing frames none of which is trained."""
    if mask is None or mask["kind"] not in _FRAME_LISTS:
        return
    kind, field = _FRAME_LISTS[mask["kind"]]
    try:
        spec = kind.model_validate(mask)
        check_mask_frames(spec, clip_frames)
        if isinstance(spec, MissingFramesMask):
            trained_missing_frames(spec, window)
    except MaskError as err:
        raise Invalid(str(err), code="mask_mismatch", details=[{"field": field}]) from None


def _check_mask_fits(config: TrainConfig, mask: Video, source: Video) -> None:
    """Refuse a mask upload whose shape the worker could not fit to the training clip."""
    try:
        check_mask_fits(
            f"mask.video_id {mask.id}",
            (mask.frames, mask.height, mask.width),
            frames=config.window,
            # the worker crops a non-square mask like the first training video
            source_size=(source.width, source.height),
        )
    except MaskError as err:
        raise Invalid(
            str(err), code="mask_mismatch", details=[{"field": "mask.video_id", "id": mask.id}]
        ) from None
