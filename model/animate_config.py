"""Settings of an animation (`dyngen animate`, the `animate` job); no torch, the API reads it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, Strict, model_validator

from model.config import STRICT, SynthesisConfig

# an animate job of a video's frame keeps the frame in its stored config under this key
SOURCE_FRAME = "source_frame"


class AnimateConfig(BaseModel):
    """What to make of one image: the videos, and how hard to fit their first frame."""

    model_config = STRICT

    frames: int = Field(120, ge=1, le=100_000, description="frames per video, the image first")
    num_videos: int = Field(1, ge=1, le=256)
    fps: float = Field(25.0, gt=0, le=240)
    formats: tuple[Literal["mp4", "gif"], ...] = Field(("mp4",), min_length=1, strict=False)
    seed: Annotated[int, Strict()] = Field(0, ge=0, le=2**63 - 1)
    steps: int = Field(300, ge=1, le=5000, description="gradient steps per restart")
    restarts: int = Field(4, ge=1, le=64, description="fits from fresh prior draws; best kept")
    learning_rate: float = Field(0.05, gt=0, le=10)
    noise_scale: float = Field(1.0, ge=0, le=10)

    @model_validator(mode="after")
    def _check_formats(self) -> AnimateConfig:
        self.synthesis()  # the same rules as synthesis (each format once)
        return self

    def synthesis(self) -> SynthesisConfig:
        """The synthesis settings of the rollout."""
        fields = ("frames", "num_videos", "fps", "formats", "noise_scale")
        return SynthesisConfig.model_validate({k: getattr(self, k) for k in fields})

    def budget_synthesis(self, chunk_length: int) -> SynthesisConfig:
        """A synthesis as costly as this animation, for the job budget: the fit decodes the
        first chunk forward and backward (about 3 decodes) per step of every restart."""
        fitting = 3 * self.steps * self.restarts * min(chunk_length, self.frames)
        # model_copy does not validate: the frame count may pass synthesis's own bound
        return self.synthesis().model_copy(update={"frames": self.frames + fitting})
