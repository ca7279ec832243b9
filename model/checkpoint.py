"""Checkpoints (weights, learned s_0 and content, config) and resume state, as safetensors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from pydantic import ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from model.calibration import Calibration
from model.config import SynthesisConfig, TrainConfig
from model.errors import CheckpointError
from model.files import atomic_path
from model.networks import DynamicGenerator
from model.residual import RESIDUAL_KEYS, ResidualLDS
from model.stored import checked_metadata

CHECKPOINT_FORMAT = "dyngen-checkpoint"
RESUME_FORMAT = "dyngen-resume"
FORMAT_VERSION = "1"
# fields that change no step of training: resume state saved under other values continues
NOT_TRAINING = {"epochs", "average_last", "checkpoint_every", "weight_average"}


@dataclass
class Checkpoint:
    """A trained model ready to sample from."""

    config: TrainConfig
    model: DynamicGenerator
    initial_state: torch.Tensor  # (N, d) learned s_0 of each training video
    content: torch.Tensor  # (N, c) learned content of each training video
    info: dict[str, str] = field(default_factory=dict)
    residual: ResidualLDS | None = None  # `residual: lds`: added to every synthesized frame
    chains: torch.Tensor | None = None  # (N, T, k) inferred noise (None in older checkpoints)
    calibration: Calibration | None = None  # noise gain and state anchor of the syntheses

    def frame_chunks(
        self, config: SynthesisConfig, seed: int, device: torch.device
    ) -> Iterator[np.ndarray]:
        """uint8 syntheses (V, L, S, S, 3), chunk after chunk (model/sampler.py)."""
        from model.sampler import sample_chunks
        from model.video_frames import to_uint8

        for chunk in sample_chunks(self, config, seed=seed, device=device):
            yield to_uint8(chunk.cpu().numpy())

    def save(self, path: Path) -> None:
        """Write the checkpoint to one .safetensors file."""
        save_model(path, self)

    def training_reconstruction(self, source: Path) -> np.ndarray | None:
        """The training clips decoded from the stored chains (the file's, or those of the
        resume state beside `source`): uint8 (N, T, S, S, 3); None without chains."""
        from model.evaluation import reconstruct, stored_chains
        from model.video_frames import to_uint8

        chains = stored_chains(source, self)
        return None if chains is None else to_uint8(reconstruct(self, chains).cpu().numpy())


def save_checkpoint(
    path: Path,
    config: TrainConfig,
    model: DynamicGenerator,
    initial_state: torch.Tensor,
    content: torch.Tensor,
    info: dict[str, str] | None = None,
    *,
    residual: ResidualLDS | None = None,
    chains: torch.Tensor | None = None,
    calibration: Calibration | None = None,
) -> None:
    """Write one .safetensors file; the config and format version go in its metadata."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors |= {"initial_state": initial_state, "content": content}
    if residual is not None:
        tensors |= {f"residual.{k}": v for k, v in residual.tensors().items()}
    if chains is not None:
        tensors["chains"] = chains
    if calibration is not None:
        tensors |= {f"calibration.{k}": v for k, v in calibration.tensors().items()}
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config.model_dump_json(),
        **(info or {}),
    }
    _write(path, tensors, metadata)


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> Checkpoint:
    """Read a checkpoint without unpickling; CheckpointError for anything that isn't ours."""
    tensors, metadata = _read(path, CHECKPOINT_FORMAT, device)
    config = _config_from(path, metadata)
    model = DynamicGenerator(config).to(device)
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_state)
        initial_state, content = tensors["initial_state"], tensors["content"]
    except (RuntimeError, KeyError) as err:
        raise CheckpointError(f"{path}: weights don't match their config ({err})") from None
    info = {k: v for k, v in metadata.items() if k not in ("format", "format_version", "config")}
    residual = _residual_from(path, tensors, config)
    calibration = _calibration_from(path, tensors, config)
    chains = tensors.get("chains")
    return Checkpoint(config, model, initial_state, content, info, residual, chains, calibration)


def save_model(path: Path, ckpt: Checkpoint) -> None:
    """Write a loaded (or assembled) Checkpoint back to a file."""
    save_checkpoint(
        path,
        ckpt.config,
        ckpt.model,
        ckpt.initial_state,
        ckpt.content,
        ckpt.info,
        residual=ckpt.residual,
        chains=ckpt.chains,
        calibration=ckpt.calibration,
    )


def _residual_from(
    path: Path, tensors: dict[str, torch.Tensor], config: TrainConfig
) -> ResidualLDS | None:
    """The stored residual process, checked against the frame size; None when there is none."""
    if not any(k.startswith("residual.") for k in tensors):
        return None
    try:
        residual = ResidualLDS(*(tensors[f"residual.{k}"] for k in RESIDUAL_KEYS))
    except KeyError as err:
        raise CheckpointError(f"{path}: incomplete residual process (no {err})") from None
    dim, n = 3 * config.image_size**2, residual.components
    shapes = [t.shape for t in residual.tensors().values()]
    if shapes[:4] != [(dim,), (dim, n), (n, n), (n, n)] or residual.states.shape[-1:] != (n,):
        raise CheckpointError(f"{path}: residual process has shapes {shapes}")
    return residual


def _calibration_from(
    path: Path, tensors: dict[str, torch.Tensor], config: TrainConfig
) -> Calibration | None:
    """The stored calibration, checked against the state size; None when there is none."""
    if not any(k.startswith("calibration.") for k in tensors):
        return None
    try:
        calibration = Calibration.from_tensors(tensors)
    except KeyError as err:
        raise CheckpointError(f"{path}: incomplete calibration (no {err})") from None
    if calibration.mean.shape != (config.state_dim,):
        raise CheckpointError(f"{path}: calibration mean has shape {tuple(calibration.mean.shape)}")
    return calibration


def save_resume(
    path: Path, config: TrainConfig, tensors: dict[str, torch.Tensor], meta: dict[str, str]
) -> None:
    """Write the learner's full state (see ABPTTLearner.state_tensors) beside the checkpoint."""
    metadata = {"format": RESUME_FORMAT, "format_version": FORMAT_VERSION}
    _write(path, tensors, metadata | meta | {"config": config.model_dump_json()})


def load_resume(path: Path, config: TrainConfig) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read resume state; refuse one saved under another config (it would not continue the run)."""
    tensors, metadata = _read(path, RESUME_FORMAT, "cpu")
    saved = _config_from(path, metadata)
    if saved.model_dump(exclude=NOT_TRAINING) != config.model_dump(exclude=NOT_TRAINING):
        raise CheckpointError(f"{path}: resume state was saved with a different config")
    return tensors, metadata


def _write(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """safetensors to a temporary name, then rename."""
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(cpu, str(tmp), metadata=metadata)


def _read(
    path: Path, expected_format: str, device: torch.device | str
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file of the expected format and version."""
    metadata = checked_metadata(path, expected_format, FORMAT_VERSION)
    try:
        tensors = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a safetensors checkpoint ({err})") from None
    return tensors, metadata


def _config_from(path: Path, metadata: dict[str, str]) -> TrainConfig:
    """The training config stored in the metadata."""
    try:
        return TrainConfig.model_validate(json.loads(metadata["config"]))
    except (KeyError, json.JSONDecodeError, ValidationError) as err:
        raise CheckpointError(f"{path}: missing or invalid config ({err})") from None
