"""The `animate` job: checked and created here, registered in POST /v1/jobs."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api.deps import Services
from api.schemas import AnimateJobCreate
from core import admission, jobs, models, videos
from core.errors import Invalid
from core.job_states import JobType
from core.tables import Job, TrainedModel, Video
from model.animate_config import SOURCE_FRAME


def create_animate_job(
    body: AnimateJobCreate, owner_id: str | None, services: Services, session: Session
) -> Job:
    """A queued animation job, once its model and its still check out."""
    model = models.usable_model(session=session, owner_id=owner_id, model_id=body.model_id)
    _check_animatable(model)
    source = videos.get_video(session=session, owner_id=owner_id, video_id=body.source_id)
    _check_source(body, source)
    admission.plan_animate_job(
        model_config=model.config, config=body.config, settings=services.settings
    )
    config: dict[str, Any] = body.config.model_dump(mode="json")
    if body.frame is not None:
        config[SOURCE_FRAME] = body.frame
    return jobs.create_job(
        session=session,
        owner_id=owner_id,
        type=JobType.ANIMATE,
        config=config,
        seed=body.config.seed,
        video_ids=[source.id],
        model_id=body.model_id,
    )


def _check_animatable(model: TrainedModel) -> None:
    """An LDS (asked for, or kept by `method: auto`) has no generator to fit an image with."""
    choice = model.metrics.get("choice") if isinstance(model.metrics, dict) else None
    kept = choice.get("kept") if isinstance(choice, dict) else None
    if model.config.get("method") == "lds" or kept == "lds":
        raise Invalid(
            f"model_id: model {model.id} is an LDS, which can't animate an image; "
            "use a dynamic generator (method abptt)",
            code="model_not_animatable",
            details=[{"field": "model_id", "id": model.id}],
        )


def _check_source(body: AnimateJobCreate, source: Video) -> None:
    """image_id names an image; video_id a video that has the frame."""
    field, wanted = ("image_id", "image") if body.image_id is not None else ("video_id", "video")
    if source.kind != wanted:
        raise Invalid(
            f"{field}: {source.id} is a {source.kind} upload, not a {wanted}",
            code=f"not_a_{wanted}",
            details=[{"field": field, "id": source.id}],
        )
    if body.frame is not None and body.frame >= source.frames:
        raise Invalid(
            f"frame: video {source.id} has {source.frames} frames; frame {body.frame} is past it",
            code="frame_out_of_range",
            details=[{"field": "frame", "id": source.id, "frames": source.frames}],
        )
