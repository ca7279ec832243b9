"""Tiny models and procedural clips: the model tests run in seconds on two cores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from model.config import TrainConfig
from model.procedural import waves
from model.video_writers import write_video


def tiny_config(**overrides: Any) -> TrainConfig:
    """A few channels, 16x16 frames, two chunks: learns something in a few seconds."""
    # the dynamic generator: the default `auto` would keep the LDS over most models this tiny
    fields: dict[str, Any] = dict(
        method="abptt",
        image_size=16,
        frames=16,
        chunk_length=8,
        epochs=4,
        base_channels=8,
        state_dim=8,
        noise_dim=8,
        langevin_steps=4,
    )
    return TrainConfig(**(fields | overrides))


def write_waves_clip(path: Path) -> Path:
    """The model tests' clip at `path`: a 24-frame 16x16 procedural texture as mp4."""
    write_video(path, iter(waves(24, 16)), 25)
    return path


@pytest.fixture
def waves_video(tmp_path: Path) -> Path:
    """The model tests' clip (`write_waves_clip`) in the test's folder."""
    return write_waves_clip(tmp_path / "waves.mp4")
