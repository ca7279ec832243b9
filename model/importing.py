"""Checking a checkpoint someone hands over (the service's model import) before it is used.

Everything is read from the safetensors header first: the format, its version, the config,
and every tensor's shape against the shapes that config gives (the networks are built on
torch's meta device, so no memory is allocated for a config the file doesn't match). Only
then are the tensors loaded, by `load_checkpoint`, which never unpickles anything.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from model.checkpoint import (
    CHECKPOINT_FORMAT,
    FORMAT_VERSION,
    Checkpoint,
    _config_from,
    load_checkpoint,
)
from model.config import TrainConfig
from model.errors import CheckpointError
from model.lds import LDS_FORMAT
from model.networks import DynamicGenerator

MAX_VIDEOS = 64  # a training job takes at most this many videos (api/schemas.py)
Shapes = dict[str, tuple[int, ...]]


class CheckpointVersionError(CheckpointError):
    """A checkpoint of ours written in a format version this dyngen doesn't read."""

    code = "unsupported_checkpoint_version"


class CheckpointMismatch(CheckpointError):
    """A checkpoint whose tensors don't have the shapes its own config gives."""

    code = "checkpoint_mismatch"


def inspect_checkpoint(path: Path, name: str) -> TrainConfig:
    """The config of a dynamic generator checkpoint whose every tensor fits it and is finite;
    a CheckpointError (naming the file `name`) for anything else."""
    metadata, shapes = _header(path, name)
    _check_format(metadata, name)
    config = _config_from(Path(name), metadata)
    if config.method != "abptt":
        raise CheckpointError(f"{name}: its config says method {config.method}, not abptt")
    _check_shapes(shapes, _expected_shapes(config, shapes), name)
    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError as err:
        raise CheckpointMismatch(str(err).replace(str(path), name)) from None
    _check_finite(checkpoint.model.state_dict() | _plain_tensors(checkpoint), name)
    return config


def _header(path: Path, name: str) -> tuple[dict[str, str], Shapes]:
    """The file's metadata and its tensors' shapes, read without loading any tensor."""
    try:
        with safe_open(str(path), framework="np") as handle:
            metadata = handle.metadata() or {}
            shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{name}: not a safetensors file ({err})") from None
    return metadata, shapes


def _check_format(metadata: dict[str, str], name: str) -> None:
    found = metadata.get("format")
    if found == LDS_FORMAT:
        raise CheckpointError(f"{name}: an LDS model; only dynamic generator checkpoints import")
    if found != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{name}: not a dyngen checkpoint (no format {CHECKPOINT_FORMAT})")
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointVersionError(
            f"{name}: checkpoint format version {version}, this dyngen reads {FORMAT_VERSION}"
        )


def _expected_shapes(config: TrainConfig, found: Shapes) -> Shapes:
    """The shape of every tensor the config gives, for as many videos as the file learned."""
    with torch.device("meta"):
        networks = DynamicGenerator(config)
    expected = {f"model.{k}": tuple(v.shape) for k, v in networks.state_dict().items()}
    videos = (found.get("initial_state") or (0,))[0]
    if not 1 <= videos <= MAX_VIDEOS:
        raise CheckpointMismatch(f"initial_state: {videos} videos, not 1 to {MAX_VIDEOS}")
    expected["initial_state"] = (videos, config.state_dim)
    expected["content"] = (videos, config.content_dim)
    if "chains" in found:  # (videos, frames, noise): the frames are whatever training read
        chains = found["chains"]
        expected["chains"] = (videos, chains[1] if len(chains) == 3 else -1, config.noise_dim)
    expected |= {k: v for k, v in found.items() if k.startswith("residual.")}  # load checks
    return expected


def _check_shapes(found: Shapes, expected: Shapes, name: str) -> None:
    missing = sorted(set(expected) - set(found))
    unknown = sorted(set(found) - set(expected))
    if missing or unknown:
        raise CheckpointMismatch(
            f"{name}: tensors missing {missing[:5]}, unexpected {unknown[:5]} for its config"
        )
    wrong = [k for k in expected if found[k] != expected[k]]
    if wrong:
        first = wrong[0]
        raise CheckpointMismatch(
            f"{name}: {first} has shape {list(found[first])}, its config gives "
            f"{list(expected[first])} ({len(wrong)} tensor(s) differ)"
        )


def _plain_tensors(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    """Every tensor but the networks' weights."""
    found = {"initial_state": checkpoint.initial_state, "content": checkpoint.content}
    if checkpoint.chains is not None:
        found["chains"] = checkpoint.chains
    if checkpoint.residual is not None:
        found |= {f"residual.{k}": v for k, v in checkpoint.residual.tensors().items()}
    return found


def _check_finite(tensors: dict[str, torch.Tensor], name: str) -> None:
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointMismatch(f"{name}: {key} holds NaN or infinite values")
