"""Request and response bodies of the v1 API, named by role."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import Strict as NoCoercion

from api.webhook_schemas import WebhookSpec
from core.job_states import JobStatus, JobType
from model.animate_config import AnimateConfig
from model.config import SynthesisConfig, TrainConfig, run_fields
from model.masks import MissingFramesMask, RegionsMask

T = TypeVar("T")
Id = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z]+_[0-9a-f]+$")]
Seed = Annotated[int, NoCoercion(), Field(ge=0, le=2**63 - 1)]


class Strict(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ErrorInfo(BaseModel):
    """What went wrong, in a stable code and a readable message."""

    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """Every error response."""

    error: ErrorInfo


class Page(BaseModel, Generic[T]):
    """One page of a list, newest first; pass `next_cursor` as `cursor` for the next."""

    items: list[T]
    next_cursor: str | None


class VideoRead(BaseModel):
    """An uploaded video (or mask file: kind "mask"; still image: kind "image"; fps null)."""

    id: str
    kind: Literal["video", "mask", "image"]
    filename: str
    frames: int
    fps: float | None
    width: int
    height: int
    bytes: int
    sha256: str
    content_url: str
    created_at: datetime


class UploadMask(Strict):
    """A mask uploaded through POST /v1/videos: a mask video (white = missing), .npy or .mat."""

    kind: Literal["upload"]
    video_id: Id


JobMask = Annotated[MissingFramesMask | RegionsMask | UploadMask, Field(discriminator="kind")]


class TrainJobCreate(Strict):
    """Train a model on one or more uploaded videos, optionally with occluded pixels."""

    type: Literal["train"]
    video_ids: list[Id] = Field(min_length=1, max_length=64)
    config: TrainConfig = Field(default_factory=lambda: TrainConfig.model_validate({}))
    mask: JobMask | None = None
    purpose: Literal["train", "inpaint"] = Field(
        "train",
        description="inpaint: remove the masked object from the clip (`dyngen inpaint`): the "
        "config fields it doesn't set get the defaults measured for that (the whole clip up to "
        "300 frames, resize stretch, 100 epochs, then the recovery defaults); needs a mask",
    )
    seed: Seed = 0
    webhook: WebhookSpec | None = None

    @model_validator(mode="after")
    def _inpaint_needs_a_mask(self) -> TrainJobCreate:
        """The object to remove is the mask's: inpainting without one has nothing to fill."""
        if self.purpose == "inpaint" and self.mask is None:
            raise ValueError("purpose inpaint needs a mask of the object to remove")
        return self

    @model_validator(mode="before")
    @classmethod
    def _recovery_defaults(cls, data: Any) -> Any:
        """A masked job gets the recovery defaults its config doesn't set (as `dyngen recover`)."""
        if isinstance(data, dict) and data.get("mask") is not None:
            config = data.get("config")
            if config is None or isinstance(config, dict):
                return data | {"config": run_fields(config or {}, masked=True)}
        return data

    @field_validator("mask")
    @classmethod
    def _masks_need_abptt(cls, mask: Any, info: ValidationInfo) -> Any:
        """LDS and the PCA warm start read whole frames: a mask is refused up front."""
        config = info.data.get("config")
        if mask is not None and config is not None and (conflict := config.mask_conflict()):
            raise ValueError(conflict)
        return mask


class SynthesizeJobCreate(Strict):
    """Generate videos from a model a training job produced."""

    type: Literal["synthesize"]
    model_id: Id | None = None
    checkpoint_id: Id | None = Field(
        None, description="instead of model_id: a training's intermediate checkpoint artifact"
    )
    config: SynthesisConfig = Field(default_factory=lambda: SynthesisConfig.model_validate({}))
    seed: Seed = 0
    webhook: WebhookSpec | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SynthesizeJobCreate:
        if (self.model_id is None) == (self.checkpoint_id is None):
            raise ValueError("name exactly one of model_id and checkpoint_id")
        return self


class AnimateJobCreate(Strict):
    """Bring a still to life with a model: an uploaded image, or one frame of a video."""

    type: Literal["animate"]
    model_id: Id
    image_id: Id | None = None
    video_id: Id | None = None
    frame: Annotated[int, NoCoercion(), Field(ge=0)] | None = Field(
        None, description="with video_id: the frame (0-based) to animate"
    )
    config: AnimateConfig = Field(default_factory=lambda: AnimateConfig.model_validate({}))

    @model_validator(mode="after")
    def _one_source(self) -> AnimateJobCreate:
        """Either image_id, or video_id with frame."""
        if (self.image_id is None) == (self.video_id is None):
            raise ValueError("give image_id, or video_id and frame")
        if (self.video_id is None) != (self.frame is None):
            raise ValueError("video_id and frame go together")
        return self

    @property
    def source_id(self) -> str:
        """The upload the still comes from."""
        source = self.image_id or self.video_id
        assert source is not None, "checked by _one_source"
        return source


JobCreate = Annotated[
    TrainJobCreate | SynthesizeJobCreate | AnimateJobCreate, Field(discriminator="type")
]
# Tags pydantic puts in error locations of the unions above; errors leave them out.
UNION_TAGS = frozenset({"train", "synthesize", "animate", "missing_frames", "regions", "upload"})


class Progress(BaseModel):
    """How far a job got; epochs for training, videos for synthesis."""

    epoch: int | None
    epochs: int | None
    fraction: float
    loss: float | None
    eta_seconds: float | None


class JobError(BaseModel):
    """Why a job failed."""

    code: str
    message: str


class ArtifactRead(BaseModel):
    """A file a job produced; download it from `url`."""

    id: str
    kind: str
    filename: str
    media_type: str
    bytes: int
    sha256: str
    url: str
    epoch: int | None = Field(None, description="intermediate checkpoints: the epoch it holds")


class JobRead(BaseModel):
    """A job as clients see it."""

    id: str
    type: JobType
    status: JobStatus
    progress: Progress
    metrics: dict[str, Any]
    error: JobError | None
    artifacts: list[ArtifactRead]
    model_id: str | None = Field(
        description="train: the model it creates (usable once it succeeded); synthesize: its model"
    )
    checkpoint_id: str | None = Field(
        None, description="synthesize: the intermediate checkpoint it samples from, if one"
    )
    checkpoint_epoch: int | None = Field(
        None,
        description="train: the epoch of its newest intermediate checkpoint (a cancelled or "
        "timed-out training's model is that checkpoint)",
    )
    video_ids: list[str]
    mask: dict[str, Any] | None
    config: dict[str, Any]
    seed: int
    webhook: dict[str, Any] | None = Field(default=None, description="{url, events}, if set")
    cancel_requested: bool
    attempts: int = Field(
        description="times a worker started it; events carry the attempt, so a resumed run's "
        "progress is told apart from the first"
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobEventRead(BaseModel):
    """One line of a job's history."""

    id: int
    kind: Literal["status", "progress"]
    data: dict[str, Any]
    created_at: datetime


class EventPage(BaseModel):
    """History after `after`; pass `last_id` as the next `after`."""

    items: list[JobEventRead]
    last_id: int


class ModelRead(BaseModel):
    """A trained model and its checkpoint."""

    id: str
    job_id: str | None = Field(
        description="the training job that made it; null when imported or the job was deleted"
    )
    source: Literal["training", "import"]
    config: dict[str, Any]
    metrics: dict[str, Any]
    checkpoint: ArtifactRead
    created_at: datetime


class Health(BaseModel):
    """Liveness or readiness, with each dependency's state."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)
