"""The stationary transition: a fine-tune after training that keeps long syntheses on the
states the chains visit, the chains' own path held in place."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.calibration import chain_states, pulled_roll
from model.checkpoint import Checkpoint, load_checkpoint
from model.stationary import sliced_w2, stationary_transition, with_stationary_transition
from model.training import train_model
from tests.model.conftest import tiny_config, write_waves_clip

STEPS = 150  # enough for the tiny model; the default's 400 are for real sizes


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Checkpoint:
    """A tiny dynamic generator trained on a procedural clip, with its chains."""
    root = tmp_path_factory.mktemp("stationary")
    video = write_waves_clip(root / "waves.mp4")
    result = train_model(tiny_config(epochs=6), [video], root / "out", seed=0, device="cpu")
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.chains is not None
    return ckpt


def _long_rollouts(transition: torch.nn.Module, ckpt: Checkpoint) -> torch.Tensor:
    """States of 64 rollouts of 4x the chains' length from the first start, fixed noise."""
    assert ckpt.chains is not None
    length, k = 4 * ckpt.chains.shape[1], ckpt.chains.shape[2]
    noise = torch.randn((64, length, k), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        states = pulled_roll(transition, ckpt.initial_state[:1].expand(64, -1), noise, None, 0.0)
    return states[:, length // 4 :].reshape(-1, states.shape[-1])


def _distance_to_chains(transition: torch.nn.Module, ckpt: Checkpoint) -> float:
    """Sliced distance of long rollouts' states to the chains' states, fixed directions."""
    assert ckpt.chains is not None
    visited = chain_states(ckpt.model, ckpt.initial_state, ckpt.chains)
    directions = torch.randn((8, 256), generator=torch.Generator().manual_seed(6))
    directions = directions / directions.norm(dim=0)
    return float(sliced_w2(_long_rollouts(transition, ckpt), visited, directions))


def test_the_sliced_distance_is_zero_for_one_set_and_grows_with_a_shift() -> None:
    points = torch.randn((400, 3), generator=torch.Generator().manual_seed(0))
    directions = torch.eye(3)
    assert float(sliced_w2(points, points[torch.randperm(400)], directions)) < 1e-12
    shifted = float(sliced_w2(points + 2.0, points, directions))
    assert shifted == pytest.approx(4.0, rel=1e-5)


def test_long_rollouts_come_closer_to_the_chains_states(trained: Checkpoint) -> None:
    assert trained.chains is not None
    before = _distance_to_chains(trained.model.transition, trained)
    tuned = stationary_transition(trained.model, trained.initial_state, trained.chains, 0, STEPS)
    after = _distance_to_chains(tuned, trained)
    assert after < 0.7 * before, (before, after)


def test_the_chains_still_roll_to_their_states(trained: Checkpoint) -> None:
    assert trained.chains is not None
    tuned = with_stationary_transition(trained, steps=STEPS)
    with torch.no_grad():
        path = trained.model.roll(trained.initial_state, trained.chains)
        kept = tuned.model.roll(trained.initial_state, trained.chains)
    error = ((kept - path) ** 2).mean() / path.var(dim=(0, 1)).mean()
    assert float(error) < 0.05


def test_only_the_transition_changes_and_the_config_says_so(
    trained: Checkpoint, tmp_path: Path
) -> None:
    before = {k: v.clone() for k, v in trained.model.state_dict().items()}
    tuned = with_stationary_transition(trained, steps=5)
    tuned.save(tmp_path / "stationary.safetensors")
    loaded = load_checkpoint(tmp_path / "stationary.safetensors")
    assert loaded.config.stationary == "chains" and trained.config.stationary == "none"
    changed = {k for k, v in loaded.model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(key.startswith("transition.") for key in changed)
    for key, value in trained.model.state_dict().items():  # the model given is untouched
        assert torch.equal(value, before[key]), key
