"""What a run wrote: file descriptions, result records, JSON written atomically, and the one
writer of a training's outputs (every method's)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model.files import atomic_path

if TYPE_CHECKING:
    from model.methods import TrainedModel
    from model.training import TrainingRun


@dataclass(frozen=True)
class OutputFile:
    """One file a run wrote."""

    kind: str
    path: Path
    media_type: str


@dataclass
class SynthesisResult:
    """What a synthesis run wrote and measured."""

    files: list[OutputFile]
    metrics: dict[str, object]


@dataclass
class TrainResult:
    """What a training run wrote and measured."""

    checkpoint: Path
    files: list[OutputFile]
    metrics: dict[str, object]
    warnings: list[str] = field(default_factory=list)


MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".gif": "image/gif",
    ".png": "image/png",
    ".json": "application/json",
    ".safetensors": "application/octet-stream",
}


def describe(kind: str, path: Path) -> OutputFile:
    """Describe a written file."""
    return OutputFile(kind, path, MEDIA_TYPES.get(path.suffix, "application/octet-stream"))


def json_safe(value: Any) -> Any:
    """Infinities and NaN as null, numpy scalars as numbers, recursively, so the JSON is
    strict (the one place that decides it: files, job rows and events all go through here)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_json(path: Path, content: dict[str, Any]) -> Path:
    """Strict JSON written atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(json_safe(content), indent=2) + "\n")
    return path


def rewrite_metrics(result: TrainResult, update: dict[str, object]) -> None:
    """Add to the run's metrics and write metrics.json again."""
    result.metrics |= update
    write_json(result.checkpoint.parent / "metrics.json", result.metrics)


def write_training_outputs(
    run: TrainingRun,
    model: TrainedModel,
    reconstruction: np.ndarray,
    metrics: dict[str, object],
    recovered: np.ndarray | None = None,
    losses: tuple[list[float], list[float]] | None = None,
) -> TrainResult:
    """Every method's outputs in run.out: model.safetensors, the reconstruction (uint8
    (N, T, S, S, 3)) as videos and beside the clip in a grid, the recovered videos of a masked
    run, the loss curve of a learner, metrics.json."""
    # imported here: the API reads MEDIA_TYPES from this module and needs no writers
    from model.plots import write_loss_curve
    from model.video_writers import write_grid

    out, data = run.out, run.data
    checkpoint = out / "model.safetensors"
    model.save(checkpoint)
    files = [describe("checkpoint", checkpoint)]
    files += write_videos(out, "reconstruction", reconstruction, data.fps)
    grid_rows = [data.clips, reconstruction]
    if recovered is not None and data.visible is not None:
        files += write_videos(out, "recovered", recovered, data.fps, kind="recovered_video")
        grid_rows.insert(1, (data.clips * data.visible[..., None]).astype(np.uint8))
    grid = out / "reconstruction.png"
    write_grid(grid, np.concatenate(grid_rows))
    files.append(describe("reconstruction_grid", grid))
    if losses is not None:
        curve = out / "loss.png"
        write_loss_curve(curve, *losses)
        files.append(describe("loss_curve", curve))
    files.append(describe("metrics", write_json(out / "metrics.json", metrics)))
    return TrainResult(checkpoint, files, metrics)


def write_videos(
    out: Path, stem: str, videos: np.ndarray, fps: float, kind: str | None = None, fmt: str = "mp4"
) -> list[OutputFile]:
    """One file per video: stem.mp4, or stem-1.mp4, stem-2.mp4, ... for several."""
    from model.video_writers import write_video

    files = []
    for index, video in enumerate(videos):
        name = f"{stem}.{fmt}" if len(videos) == 1 else f"{stem}-{index + 1}.{fmt}"
        write_video(out / name, iter(video), fps)
        files.append(describe(kind or f"{stem}_video", out / name))
    return files
