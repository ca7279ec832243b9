"""A training's data: its clips decoded the same way, their mask, and the config fitted to them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Self, TypeVar

import numpy as np

from model.config import TrainConfig
from model.masks import ClipWindow, FileMask, MissingFramesMask, RegionsMask, build_visible
from model.video_decode import VideoInfo, probe_video, stream_info
from model.video_frames import read_clips

Mask = MissingFramesMask | RegionsMask | FileMask


@dataclass
class TrainingData:
    """The decoded clips of a run and their mask."""

    clips: np.ndarray  # (N, T, S, S, 3) uint8
    visible: np.ndarray | None  # (N, T, S, S) bool, True = observed
    fps: float
    validation: np.ndarray | None = None  # (N, T, S, S) bool, visible but held out of training

    @property
    def training_visible(self) -> np.ndarray | None:
        """The pixels the model learns from: visible and not held out."""
        if self.visible is None or self.validation is None:
            return self.visible
        kept: np.ndarray = self.visible & ~self.validation
        return kept


def load_training_data(config: TrainConfig, videos: list[Path], mask: Mask | None) -> TrainingData:
    """Decode every training video the same way and build the visibility mask."""
    clips = read_clips(videos, config)
    header = stream_info(Path(videos[0]))
    visible = None
    if mask is not None:
        one = visible_pixels(mask, config, header)
        visible = np.broadcast_to(one, clips.shape[:4]).copy()
    return TrainingData(clips, visible, header.fps / config.every)


def visible_pixels(mask: Mask, config: TrainConfig, header: VideoInfo) -> np.ndarray:
    """The mask's visible pixels on the frames the config trains on, of a clip with `header`."""
    return build_visible(
        mask,
        frames=config.frames,
        image_size=config.image_size,
        source_size=(header.width, header.height),
        resize=config.resize,
        start=config.start,
        every=config.every,
        clip_frames=header.frames or None,  # 0: the container doesn't say
    )


class ClipConfig(Protocol):
    """A config that reads clips (TrainConfig, LDSConfig): what fitting it to videos needs."""

    @property
    def start(self) -> int: ...
    @property
    def every(self) -> int: ...
    @property
    def frames(self) -> int: ...
    @property
    def model_fields_set(self) -> set[str]: ...

    def fit_to_length(self, available: int) -> Self: ...


Fitted = TypeVar("Fitted", bound=ClipConfig)


def fit_to_videos(config: Fitted, videos: list[Path]) -> Fitted:
    """The config for these videos: an unset `frames` shrinks to the shortest one's length."""
    if "frames" in config.model_fields_set:
        return config
    needed = ClipWindow(config.frames, config.start, config.every).needed
    return config.fit_to_length(min(frame_count(Path(v), needed) for v in videos))


def frame_count(video: Path, needed: int) -> int:
    """The video's frames: the header's count when it declares `needed`, else decoded."""
    declared = stream_info(video).frames
    return declared if declared >= needed else probe_video(video).frames
