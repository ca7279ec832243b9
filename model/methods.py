"""Training methods behind one interface: a trained model samples and saves alike, and one
`load_model` reads any model file by the format in its metadata.

A method is a module named in `model.config.METHOD_MODULES` (the registry: one line per
method) that defines
    FILE_FORMAT: str                                   the `format` its model files carry
    load_file(path, device) -> TrainedModel            read one, no pickle
    train(run: TrainingRun) -> TrainResult             fit it and write a training's outputs
and whose model class implements `TrainedModel`. `TrainConfig.method` takes the registry's
names (and `auto`), `train_model` and `load_model` find the module through it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from model.config import METHOD_MODULES, SynthesisConfig
from model.errors import CheckpointError
from model.stored import read_metadata
from model.video_frames import ClipSettings

if TYPE_CHECKING:
    from model.outputs import TrainResult
    from model.training import TrainingRun


class TrainedModel(Protocol):
    """A trained model of any method: what synthesis, scoring and `method: auto` use."""

    @property
    def config(self) -> ClipSettings:
        """How the training clip was read (its frames, size, start, step)."""
        ...

    def frame_chunks(
        self, config: SynthesisConfig, seed: int, device: torch.device
    ) -> Iterator[np.ndarray]:
        """uint8 syntheses (V, L, S, S, 3), chunk after chunk."""
        ...

    def save(self, path: Path) -> None:
        """Write the model to one file (temporary name, then rename)."""
        ...

    def training_reconstruction(self, source: Path) -> np.ndarray | None:
        """uint8 training clips (N, T, S, S, 3) as the model explains them; None when the
        model file at `source` keeps nothing to decode them from."""
        ...


class Method(Protocol):
    """What a method's module defines (see the module docstring)."""

    FILE_FORMAT: str

    def load_file(self, path: Path, device: torch.device) -> TrainedModel: ...
    def train(self, run: TrainingRun) -> TrainResult: ...


def method(name: str) -> Method:
    """The module of the method called `name` (a TrainConfig.method other than auto)."""
    module: ModuleType = importlib.import_module(METHOD_MODULES[name])
    found: Method = module
    return found


def file_format(path: Path) -> str:
    """The `format` in a safetensors file's metadata; CheckpointError when it has none."""
    return read_metadata(path).get("format", "")


def method_of(path: Path) -> str:
    """The name of the method that wrote a model file; CheckpointError for any other file."""
    found = file_format(path)
    for name in METHOD_MODULES:
        if found == method(name).FILE_FORMAT:
            return name
    raise CheckpointError(f"{path}: not a dyngen checkpoint or LDS file")


def load_model(path: Path, device: torch.device | str = "cpu") -> TrainedModel:
    """Any model file, by the format in its metadata, ready to sample."""
    return method(method_of(path)).load_file(Path(path), torch.device(device))
