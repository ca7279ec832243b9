"""Intermediate checkpoints: written every `checkpoint_every` epochs, loadable, and free of
side effects on the run they come from."""

from __future__ import annotations

from pathlib import Path

from model.checkpoint import load_checkpoint
from model.config import SynthesisConfig
from model.synthesis import synthesize_videos
from model.training import train_model
from tests.model.conftest import tiny_config


def test_checkpoints_come_every_n_epochs_and_leave_the_run_unchanged(
    waves_video: Path, tmp_path: Path
) -> None:
    seen: list[tuple[int, int]] = []
    kept = tmp_path / "kept"
    kept.mkdir()

    def take(path: Path, epoch: int) -> None:
        ckpt = load_checkpoint(path)
        seen.append((epoch, int(ckpt.info["epochs_trained"])))
        path.replace(kept / path.name)  # the caller takes the file away

    config = tiny_config(epochs=7, checkpoint_every=3)
    with_ = train_model(config, [waves_video], tmp_path / "a", seed=2, on_checkpoint=take)
    without = train_model(config, [waves_video], tmp_path / "b", seed=2)
    assert seen == [(3, 3), (6, 6)]  # epoch 7 is the model itself
    assert with_.metrics["final_loss"] == without.metrics["final_loss"]
    assert with_.metrics["visible_mse"] == without.metrics["visible_mse"]
    videos = synthesize_videos(
        kept / "model-epoch-6.safetensors",
        SynthesisConfig(num_videos=1, frames=5, formats=("mp4",)),
        tmp_path / "synth",
    )
    assert any(f.path.suffix == ".mp4" for f in videos.files)


def test_no_checkpoints_when_off(waves_video: Path, tmp_path: Path) -> None:
    seen: list[int] = []
    config = tiny_config(epochs=4, checkpoint_every=0)
    train_model(config, [waves_video], tmp_path, on_checkpoint=lambda _p, e: seen.append(e))
    assert seen == [] and not (tmp_path / "checkpoints").exists()
