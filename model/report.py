"""A training's quality report: syntheses 4x its length scored against the clip, and the
warnings drawn from it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from model.quality import quality_warnings

if TYPE_CHECKING:
    from model.methods import TrainedModel
    from model.outputs import TrainResult

REPORT_MULTIPLE = 4  # the quality report synthesizes 4x the training length
REPORT_VIDEOS = 2


def training_report(
    model: TrainedModel, video: Path, seed: int, device: torch.device | str
) -> dict[str, object]:
    """The quality report of 2 syntheses 4x the training length against the first clip, for
    the dynamic generator and the LDS alike."""
    from model.evaluation import read_clip, synthesize
    from model.quality import quality_report

    length = REPORT_MULTIPLE * model.config.frames
    clip, held_out = read_clip(video, model.config, length)
    videos = synthesize(model, REPORT_VIDEOS, length, seed, str(device))
    return quality_report(videos, clip, held_out, seed=seed)


def kept_model_warnings(result: TrainResult, has_residual: bool) -> list[str]:
    """The quality report's warnings on the model a training kept (after `auto`'s choice)."""
    kept = (_dict(result.metrics.get("choice")) or {}).get("kept", "abptt")
    return quality_warnings(
        _dict(result.metrics.get("quality")),
        _float(result.metrics.get("reconstruction_motion_ratio")),
        # auto kept the plain weights over the same ones with the residual: don't suggest it
        residual=has_residual and kept != "lds",
    )


def _dict(value: object) -> dict[str, Any] | None:
    """value when it is a dict (a report), else None."""
    return value if isinstance(value, dict) else None


def _float(value: object) -> float | None:
    """value when it is a number, else None."""
    return float(value) if isinstance(value, int | float) else None
