"""The residual process: fitted to x - G(s), saved in the checkpoint, sampled in synthesis."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model.add_residual import add_residual
from model.checkpoint import load_checkpoint, save_model
from model.config import SynthesisConfig
from model.residual import ResidualSampler, fit_residual
from model.sampler import sample_chunks
from model.training import train_model
from tests.model.conftest import tiny_config


@pytest.fixture(scope="module")
def residual_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, video) of a tiny model trained with `residual: lds`."""
    from model.procedural import waves
    from model.video_writers import write_video

    root = tmp_path_factory.mktemp("residual")
    video = root / "waves.mp4"
    write_video(video, iter(waves(24, 16)), 25)
    config = tiny_config(epochs=6, residual="lds", residual_components=4)
    result = train_model(config, [video], root / "out", seed=0, device="cpu")
    return result.checkpoint, video


def synthesis(ckpt: object, seed: int, frames: int = 20) -> torch.Tensor:
    """Two videos of `frames` frames, (2, F, 3, H, W)."""
    config = SynthesisConfig(num_videos=2, frames=frames)
    return torch.cat(list(sample_chunks(ckpt, config, seed=seed)), dim=1)  # type: ignore[arg-type]


def test_fit_gives_a_process_of_the_frames_shape() -> None:
    rng = torch.Generator().manual_seed(0)
    clips = torch.rand((2, 12, 3, 8, 8), generator=rng) * 2 - 1
    process = fit_residual(clips, clips * 0.5, components=5)
    assert process.components == 5
    assert process.mean.shape == (3 * 8 * 8,)
    assert process.basis.shape == (3 * 8 * 8, 5)
    assert process.transition.shape == (5, 5) and process.noise.shape == (5, 5)
    assert process.states.shape == (2, 12, 5)
    frames = ResidualSampler(process, 3, seed=0, scale=1.0, device=torch.device("cpu")).frames(
        7, (3, 8, 8)
    )
    assert frames.shape == (3, 7, 3, 8, 8)


def test_a_residual_run_saves_the_process_and_its_metrics(residual_run: tuple[Path, Path]) -> None:
    checkpoint, _ = residual_run
    ckpt = load_checkpoint(checkpoint)
    assert ckpt.config.residual == "lds"
    assert ckpt.residual is not None and ckpt.residual.components == 4
    assert ckpt.residual.basis.shape == (3 * 16 * 16, 4)
    assert ckpt.chains is not None and ckpt.chains.shape == (1, 16, 8)
    metrics = json.loads((checkpoint.parent / "metrics.json").read_text())
    assert metrics["residual"]["components"] == 4
    assert metrics["reconstruction_motion_ratio"] > 0
    assert "averaged_reconstruction_motion_ratio" in metrics


def test_the_reloaded_process_synthesizes_the_same_videos(
    residual_run: tuple[Path, Path], tmp_path: Path
) -> None:
    ckpt = load_checkpoint(residual_run[0])
    save_model(tmp_path / "again.safetensors", ckpt)
    again = load_checkpoint(tmp_path / "again.safetensors")
    assert again.residual is not None and ckpt.residual is not None
    for key, value in ckpt.residual.tensors().items():
        assert torch.equal(value, again.residual.tensors()[key]), key
    assert torch.equal(synthesis(ckpt, seed=3), synthesis(again, seed=3))


def test_the_residual_differs_between_seeds_and_adds_detail(
    residual_run: tuple[Path, Path],
) -> None:
    ckpt = load_checkpoint(residual_run[0])
    first, second = synthesis(ckpt, seed=0), synthesis(ckpt, seed=1)
    assert (first - second).abs().mean() > 1e-3, "two seeds gave the same synthesis"
    assert first.min() >= -1 and first.max() <= 1
    plain = load_checkpoint(residual_run[0])
    plain.residual = None
    # the generator's noise is drawn as without a residual: the difference is the residual
    difference = (first - synthesis(plain, seed=0)).abs().mean()
    assert difference > 1e-3, "the residual added nothing"


def test_adding_the_residual_to_a_trained_model_matches_training_with_it(
    residual_run: tuple[Path, Path], tmp_path: Path
) -> None:
    checkpoint, video = residual_run
    plain = load_checkpoint(checkpoint)
    plain.residual = None
    plain.config = plain.config.model_copy(update={"residual": "none"})
    save_model(tmp_path / "plain.safetensors", plain)
    facts = add_residual(tmp_path / "plain.safetensors", [video], tmp_path / "r.safetensors", 4)
    assert facts["components"] == 4
    added, trained = load_checkpoint(tmp_path / "r.safetensors"), load_checkpoint(checkpoint)
    assert added.config.residual == "lds"
    assert added.residual is not None and trained.residual is not None
    np.testing.assert_allclose(added.residual.mean, trained.residual.mean, atol=1e-5)


def test_adding_a_residual_needs_the_chains(
    residual_run: tuple[Path, Path], tmp_path: Path
) -> None:
    from model.errors import DyngenError

    checkpoint, video = residual_run
    bare = load_checkpoint(checkpoint)
    bare.chains = None
    save_model(tmp_path / "bare.safetensors", bare)
    with pytest.raises(DyngenError, match="no inferred chains"):
        add_residual(tmp_path / "bare.safetensors", [video], tmp_path / "r.safetensors", 4)


def test_the_default_adds_the_residual_and_faithful_keeps_the_authors_algorithm() -> None:
    from model.config import TrainConfig

    assert TrainConfig().residual == "lds" and TrainConfig().method == "auto"
    faithful = TrainConfig(preset="faithful")
    assert (faithful.residual, faithful.method, faithful.holdout) == ("none", "abptt", 0.0)
    assert (faithful.mlp_activation, faithful.precision, faithful.average_last) == (
        "relu",
        "fp32",
        1,
    )


def test_add_residual_refuses_a_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cli.main import cli

    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(
        cli,
        ["add-residual", str(tmp_path / "junk.safetensors"), "clip.mp4", "--out", "x.safetensors"],
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "Traceback" not in result.output
