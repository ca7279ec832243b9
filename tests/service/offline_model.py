"""A checkpoint trained offline with `dyngen train`, as a user would bring it to the service."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.service.conftest import TINY_TRAIN, write_clip


def train_offline(folder: Path) -> Path:
    """Train a tiny model on a procedural clip with the CLI; its model.safetensors."""
    clip = write_clip(folder / "clip.mp4", frames=12)
    config = folder / "config.json"
    config.write_text(json.dumps(TINY_TRAIN | {"epochs": 2}))
    out = folder / "run"
    argv = ["train", str(clip), "--out", str(out), "--config", str(config), "--device", "cpu"]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    return out / "model.safetensors"


@pytest.fixture(scope="session")
def offline_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model.safetensors of a tiny model trained with `dyngen train` (once per session)."""
    return train_offline(tmp_path_factory.mktemp("offline"))
