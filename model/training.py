"""A training run as the CLI and the worker start it: videos in, a method's outputs in a
directory out (model/outputs.py), progress through callbacks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from model.blend import holdout
from model.config import RESUME_EVERY, TrainConfig
from model.device import resolve_device
from model.errors import DyngenError
from model.methods import method
from model.outputs import TrainResult
from model.training_data import Mask, TrainingData, fit_to_videos, load_training_data

log = logging.getLogger("dyngen")


@dataclass(frozen=True)
class EpochReport:
    """Progress after one epoch, as callers show it."""

    epoch: int
    epochs: int
    loss: float
    mse: float
    psnr: float
    seconds: float
    elapsed: float  # since this process's first epoch began
    eta_seconds: float
    first_epoch: int = 0  # epochs done before this process began (resumed from)


@dataclass
class TrainingRun:
    """One training's inputs once its videos were read: what every method's `train` takes."""

    config: TrainConfig
    data: TrainingData
    videos: list[Path]
    out: Path
    seed: int
    device: torch.device
    on_epoch: Callable[[EpochReport], None] | None = None
    should_stop: Callable[[], bool] | None = None
    resume_path: Path | None = None
    resume_every: int = RESUME_EVERY
    warnings: list[str] = field(default_factory=list)
    on_checkpoint: Callable[[Path, int], None] | None = None


def train_model(
    config: TrainConfig,
    videos: list[Path],
    out_dir: Path,
    *,
    mask: Mask | None = None,
    seed: int = 0,
    device: str = "auto",
    on_epoch: Callable[[EpochReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume_path: Path | None = None,
    resume_every: int = RESUME_EVERY,
    on_start: Callable[[TrainConfig, list[str]], None] | None = None,
    on_checkpoint: Callable[[Path, int], None] | None = None,
) -> TrainResult:
    """Train on the videos (optionally masked) with the config's method and write the model
    and its reports.

    `on_start` gets the config fitted to the videos and its warnings once the videos have
    been read, so bad input has failed before anything is shown as started.
    `on_checkpoint` gets every `checkpoint_every` epochs a checkpoint file of the model so far
    (under out_dir; the callee takes the file away) and its epoch.
    """
    target = resolve_device(device)
    config = fit_to_videos(config, videos)
    if mask is not None and (conflict := config.mask_conflict()):
        raise DyngenError(conflict)
    data = load_training_data(config, videos, mask)
    if data.visible is not None and config.holdout > 0:
        data.validation = np.stack([holdout(v, config.holdout, seed) for v in data.visible])
    warnings = [] if config.method == "lds" else config_warnings(config, masked=mask is not None)
    for note in warnings:
        log.warning(note)
    if on_start is not None:
        on_start(config, warnings)
    run = TrainingRun(
        config, data, [Path(v) for v in videos], Path(out_dir), seed, target, on_epoch,
        should_stop, resume_path, resume_every, warnings, on_checkpoint,
    )  # fmt: skip
    # `auto` trains the dynamic generator, then chooses (model/abptt.py, model/auto.py)
    return method("abptt" if config.method == "auto" else config.method).train(run)


def config_warnings(config: TrainConfig, masked: bool = False) -> list[str]:
    """Settings that run but are known to learn poorly."""
    notes = []
    # A masked run is there to fill in its own clip, and one chunk over the whole clip is what
    # recovered best (QUALITY.md, the recovery defaults): the melting past the clip's end that
    # one chunk brings concerns synthesis only, so it is not a warning there.
    if config.num_chunks == 1 and not masked:
        notes.append(
            f"the clip gives one chunk ({config.frames} frames, "
            f"chunk length {config.chunk_length}): "
            "the model tends to replay it and melt past its length; train on several chunks "
            "(frames a few times the chunk length)"
        )
    return notes
