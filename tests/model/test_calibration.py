"""The calibration of the syntheses: state anchor and motion gain, fitted after training, saved
in the checkpoint and applied by the sampler."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model.calibration import (
    PULLS,
    Calibration,
    add_calibration,
    anchored_roll,
    fit_calibration,
    frechet_distance,
)
from model.checkpoint import load_checkpoint, save_model
from model.config import SynthesisConfig, TrainConfig
from model.quality import mean_motion
from model.sampler import sample_chunks
from model.training import train_model
from model.video_frames import read_clips, to_uint8
from tests.model.conftest import tiny_config


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, video) of a tiny model trained with both calibrations."""
    from model.procedural import waves
    from model.video_writers import write_video

    root = tmp_path_factory.mktemp("calibration")
    video = root / "waves.mp4"
    write_video(video, iter(waves(24, 16)), 25)
    config = tiny_config(epochs=6, anchor="chains", motion_calibration="clip")
    result = train_model(config, [video], root / "out", seed=0, device="cpu")
    return result.checkpoint, video


def synthesis(ckpt: object, seed: int, frames: int = 20) -> torch.Tensor:
    """Two videos of `frames` frames, (2, F, 3, H, W)."""
    config = SynthesisConfig(num_videos=2, frames=frames)
    return torch.cat(list(sample_chunks(ckpt, config, seed=seed)), dim=1)  # type: ignore[arg-type]


def test_a_calibrated_run_saves_the_calibration_and_its_metrics(
    calibrated_run: tuple[Path, Path],
) -> None:
    checkpoint, _ = calibrated_run
    ckpt = load_checkpoint(checkpoint)
    assert ckpt.calibration is not None
    assert ckpt.calibration.mean.shape == (ckpt.config.state_dim,)
    assert ckpt.calibration.pull in PULLS
    assert 0.25 <= ckpt.calibration.gain <= 4.0
    facts = json.loads((checkpoint.parent / "metrics.json").read_text())["calibration"]
    assert facts["pull"] == ckpt.calibration.pull
    assert set(facts["frechet_by_pull"]) == {str(p) for p in PULLS}


def test_the_reloaded_calibration_synthesizes_the_same_videos_and_seeds_differ(
    calibrated_run: tuple[Path, Path], tmp_path: Path
) -> None:
    ckpt = load_checkpoint(calibrated_run[0])
    save_model(tmp_path / "again.safetensors", ckpt)
    again = load_checkpoint(tmp_path / "again.safetensors")
    assert again.calibration is not None and ckpt.calibration is not None
    assert torch.equal(again.calibration.mean, ckpt.calibration.mean)
    assert (again.calibration.pull, again.calibration.gain) == (
        ckpt.calibration.pull,
        ckpt.calibration.gain,
    )
    first = synthesis(ckpt, seed=3)
    assert first.shape == (2, 20, 3, 16, 16)
    assert torch.equal(first, synthesis(again, seed=3))
    assert not torch.equal(first, synthesis(ckpt, seed=4))


def test_the_gain_makes_training_length_syntheses_move_like_the_clip(
    calibrated_run: tuple[Path, Path],
) -> None:
    checkpoint, video = calibrated_run
    ckpt = load_checkpoint(checkpoint)
    clips = read_clips([video], ckpt.config)
    config = SynthesisConfig(num_videos=8, frames=clips.shape[1])
    frames = torch.cat(list(sample_chunks(ckpt, config, seed=11)), dim=1)
    ratio = mean_motion(to_uint8(frames.numpy())) / mean_motion(clips)
    assert ckpt.calibration is not None
    if 0.25 < ckpt.calibration.gain < 4.0:  # bracketed: the bisection met the clip's motion
        assert 0.6 < ratio < 1.6


def test_a_zero_pull_and_unit_gain_change_nothing(calibrated_run: tuple[Path, Path]) -> None:
    ckpt = load_checkpoint(calibrated_run[0])
    assert ckpt.calibration is not None
    neutral = Calibration(ckpt.calibration.mean, pull=0.0, gain=1.0)
    plain = load_checkpoint(calibrated_run[0])
    plain.calibration = None
    ckpt.calibration = neutral
    assert torch.equal(synthesis(ckpt, seed=1), synthesis(plain, seed=1))


def test_the_pull_brings_a_wandering_state_back_toward_the_mean() -> None:
    config = TrainConfig(**(tiny_config().model_dump() | {"transition": "linear"}))
    from model.networks import DynamicGenerator

    model = DynamicGenerator(config)
    with torch.no_grad():  # a transition that only adds its noise: a random walk
        model.transition.affine.weight.zero_()
        model.transition.affine.weight[:, : config.noise_dim] = torch.eye(config.noise_dim)
    noise = torch.randn((64, 200, config.noise_dim), generator=torch.Generator().manual_seed(0))
    start, mean = torch.zeros((64, config.state_dim)), torch.zeros(config.state_dim)
    with torch.no_grad():
        free = anchored_roll(model, start, noise, mean, 0.0)[:, -1]
        pulled = anchored_roll(model, start, noise, mean, 0.1)[:, -1]
    assert pulled.std() < 0.5 * free.std()


def test_the_frechet_distance_is_zero_for_one_set_and_grows_with_a_shift() -> None:
    points = np.random.default_rng(0).normal(size=(500, 4))
    assert abs(frechet_distance(points, points)) < 1e-6
    assert frechet_distance(points, points + 2.0) == pytest.approx(16.0, rel=1e-6)


def test_add_calibration_writes_the_same_weights_with_it(
    calibrated_run: tuple[Path, Path], tmp_path: Path
) -> None:
    checkpoint, video = calibrated_run
    out = tmp_path / "anchored.safetensors"
    facts = add_calibration(checkpoint, [video], out, anchor=True, motion=False)
    model = load_checkpoint(out)
    assert model.calibration is not None and model.calibration.gain == 1.0
    assert model.config.anchor == "chains" and model.config.motion_calibration == "none"
    assert facts["pull"] == model.calibration.pull
    original = load_checkpoint(checkpoint).model.state_dict()
    for key, value in model.model.state_dict().items():
        assert torch.equal(value, original[key]), key


def test_fit_calibration_asks_for_nothing_it_was_not_asked_for(
    calibrated_run: tuple[Path, Path],
) -> None:
    checkpoint, video = calibrated_run
    ckpt = load_checkpoint(checkpoint)
    assert ckpt.chains is not None
    clips = read_clips([video], ckpt.config)
    calibration, facts = fit_calibration(ckpt, ckpt.chains, clips, anchor=False, motion=False)
    assert (calibration.pull, calibration.gain) == (0.0, 1.0)
    assert facts["frechet_by_pull"] == {}


def test_the_faithful_preset_calibrates_nothing() -> None:
    config = TrainConfig(preset="faithful")
    assert (config.anchor, config.motion_calibration) == ("none", "none")
