"""The dynamic generator learned by ABPTT, as a registered method (model/methods.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from model.checkpoint import CHECKPOINT_FORMAT, Checkpoint, load_checkpoint

if TYPE_CHECKING:
    from model.pipeline import TrainingRun, TrainResult

FILE_FORMAT = CHECKPOINT_FORMAT


def load_file(path: Path, device: torch.device) -> Checkpoint:
    """A dynamic generator's checkpoint."""
    return load_checkpoint(path, device)


def train(run: TrainingRun) -> TrainResult:
    """Alternating back-propagation through time, then the training's outputs."""
    from model.pipeline import train_abptt

    return train_abptt(run)
