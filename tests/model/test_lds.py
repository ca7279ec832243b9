"""The LDS baseline: fits a texture, samples moving videos, survives its file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.errors import CheckpointError, DyngenError
from model.lds import LDSConfig, fit_lds, load_lds, sample_lds, save_lds
from model.procedural import waves
from model.quality import motion_ratio
from model.video_frames import read_clips
from model.video_writers import write_video
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """48 frames of a procedural texture at 32x32, advancing 0-2 steps a frame at random.

    The plain texture is periodic, a deterministic path an LDS fits with almost no noise;
    the random steps give it the stochastic dynamics a dynamic texture has.
    """
    steps = np.random.default_rng(0).integers(0, 3, 48)
    return waves(120, 32)[np.cumsum(steps)]


@pytest.fixture(scope="module")
def config() -> LDSConfig:
    return LDSConfig(image_size=32, frames=48, components=20)


def test_samples_of_a_fitted_texture_move_and_differ_by_seed(
    clip: np.ndarray, config: LDSConfig
) -> None:
    model = fit_lds(clip, config)
    videos = sample_lds(model, 2, 192, seed=0)
    assert videos.shape == (2, 192, 32, 32, 3) and videos.dtype == np.uint8
    assert 0.3 < motion_ratio(videos, clip) < 3  # type: ignore[operator]
    assert 0.3 < motion_ratio(videos[:, -48:], clip) < 3  # type: ignore[operator]
    other = sample_lds(model, 2, 192, seed=1)
    motion = np.abs(np.diff(clip.astype(int), axis=0)).mean()
    assert np.abs(videos[:, 10:].astype(int) - other[:, 10:]).mean() > 0.5 * motion
    assert np.abs(videos[0, 10:].astype(int) - videos[1, 10:]).mean() > 0.5 * motion
    np.testing.assert_array_equal(videos, sample_lds(model, 2, 192, seed=0))


def test_a_periodic_texture_keeps_moving() -> None:
    clip = waves(48, 32)
    videos = sample_lds(fit_lds(clip, LDSConfig(image_size=32, frames=48)), 2, 192)
    assert 0.3 < motion_ratio(videos[:, -48:], clip) < 3  # type: ignore[operator]


def test_the_fit_explains_the_frames(clip: np.ndarray, config: LDSConfig) -> None:
    model = fit_lds(clip, config)
    frames = model.states[0] @ model.basis.T + model.mean  # (T, D)
    error = np.abs(frames - clip.reshape(len(clip), -1)).mean()
    assert error < 0.25 * np.abs(clip - clip.mean(axis=0)).mean()
    assert np.abs(np.linalg.eigvals(model.transition)).max() < 1


def test_components_leave_residual_noise(clip: np.ndarray) -> None:
    model = fit_lds(clip[:12], LDSConfig(image_size=32, frames=12, components=500))
    assert model.components == 5  # half of the 11 transitions
    assert np.abs(model.noise).max() > 0


def test_it_round_trips_through_its_file(
    tmp_path: Path, clip: np.ndarray, config: LDSConfig
) -> None:
    model = fit_lds(clip, config)
    path = tmp_path / "lds.safetensors"
    save_lds(path, model, {"video": "waves"})
    loaded = load_lds(path)
    assert loaded.config == config
    np.testing.assert_array_equal(
        sample_lds(loaded, 1, 60, seed=3), sample_lds(model, 1, 60, seed=3)
    )


def test_other_files_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a model at all")
    for path in (junk, tmp_path / "missing.safetensors"):
        with pytest.raises(CheckpointError):
            load_lds(path)


def test_it_fits_from_a_video_file(tmp_path: Path) -> None:
    path = tmp_path / "waves.mp4"
    write_video(path, iter(waves(24, 16)), 25)
    config = LDSConfig(image_size=16, frames=20, components=6)
    model = fit_lds(read_clips([path], config), config)
    assert model.states.shape == (1, 20, 6)
    with pytest.raises(DyngenError):
        read_clips([path], LDSConfig(image_size=16, frames=40))


def test_it_fits_the_flag_in_a_second() -> None:
    flag = shared_file("videos/flag.avi")
    config = LDSConfig(image_size=32, frames=60)
    model = fit_lds(read_clips([flag], config), config)
    assert model.components == 29
    assert sample_lds(model, 2, 240).std() > 10
