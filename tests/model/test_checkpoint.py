"""Checkpoints round-trip without pickle and refuse anything foreign."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from model.checkpoint import load_checkpoint, load_resume, save_checkpoint, save_resume
from model.errors import CheckpointError
from model.networks import DynamicGenerator
from tests.model.conftest import tiny_config


def test_round_trip_keeps_weights_latents_and_config(tmp_path: Path) -> None:
    config = tiny_config(content_dim=2)
    model = DynamicGenerator(config)
    model.initialise(torch.Generator().manual_seed(0))
    s0, content = torch.randn(3, 8), torch.randn(3, 2)
    save_checkpoint(tmp_path / "m.safetensors", config, model, s0, content, {"epochs_trained": "4"})
    loaded = load_checkpoint(tmp_path / "m.safetensors")
    assert loaded.config == config
    assert torch.equal(loaded.initial_state, s0) and torch.equal(loaded.content, content)
    assert loaded.info["epochs_trained"] == "4"
    for (name, a), b in zip(
        model.state_dict().items(), loaded.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_a_pickle_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a safetensors"):
        load_checkpoint(path)


def test_a_foreign_safetensors_file_is_refused(tmp_path: Path) -> None:
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not a dyngen-checkpoint"):
        load_checkpoint(tmp_path / "other.safetensors")


def test_another_format_version_is_refused(tmp_path: Path) -> None:
    meta = {
        "format": "dyngen-checkpoint",
        "format_version": "99",
        "config": tiny_config().model_dump_json(),
    }
    save_file({"w": torch.zeros(2)}, str(tmp_path / "new.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(tmp_path / "new.safetensors")


def test_weights_that_do_not_match_their_config_are_refused(tmp_path: Path) -> None:
    config = tiny_config()
    model = DynamicGenerator(config)
    bigger = json.loads(config.model_dump_json()) | {"base_channels": 16}
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, type(config)(**bigger), model, torch.zeros(1, 8), torch.zeros(1, 0))
    with pytest.raises(CheckpointError, match="don't match"):
        load_checkpoint(path)


def test_resume_state_from_another_config_is_refused(tmp_path: Path) -> None:
    save_resume(tmp_path / "r.safetensors", tiny_config(), {"x": torch.zeros(1)}, {"epoch": "1"})
    with pytest.raises(CheckpointError, match="different config"):
        load_resume(tmp_path / "r.safetensors", tiny_config(state_dim=5))
    load_resume(tmp_path / "r.safetensors", tiny_config(epochs=99))  # more epochs may continue


def test_truncated_checkpoint_is_refused(tmp_path: Path) -> None:
    config = tiny_config()
    save_checkpoint(
        tmp_path / "m.safetensors",
        config,
        DynamicGenerator(config),
        torch.zeros(1, 8),
        torch.zeros(1, 0),
    )
    data = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "cut.safetensors")
