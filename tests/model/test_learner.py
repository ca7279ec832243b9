"""The ABPTT learner: it learns, infers, resumes exactly and is reproducible."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from model.learner import ABPTTLearner
from model.procedural import waves
from model.video_frames import to_tensor_scale
from tests.model.conftest import tiny_config


def clip_tensor(frames: int = 16, size: int = 16, videos: int = 1) -> torch.Tensor:
    """(N, T, 3, S, S) procedural clips in [-1, 1]."""
    return torch.from_numpy(
        np.stack([to_tensor_scale(waves(frames, size, seed=i)) for i in range(videos)])
    )


def test_loss_falls_by_a_large_factor_on_a_procedural_texture() -> None:
    learner = ABPTTLearner(tiny_config(epochs=120, langevin_steps=8), clip_tensor(), seed=0)
    learner.fit()
    first = np.mean([s.loss for s in learner.history[:5]])
    last = np.mean([s.loss for s in learner.history[-5:]])
    assert last < first / 4, (first, last)
    assert learner.history[-1].mse < learner.history[0].mse / 4


def test_inferred_latents_explain_the_clip_better_than_prior_draws() -> None:
    learner = ABPTTLearner(tiny_config(epochs=60), clip_tensor(), seed=1)
    learner.fit()
    inferred = learner.reconstruction
    with torch.no_grad():
        prior = learner.model.decode(
            learner.model.roll(torch.randn(1, 8), torch.randn(1, 16, 8)), learner.latents.content
        )
    inferred_error = float(((inferred - learner.clips) ** 2).mean())
    prior_error = float(((prior - learner.clips) ** 2).mean())
    assert inferred_error < 0.5 * prior_error, (inferred_error, prior_error)


def test_seeded_runs_are_identical_on_the_cpu() -> None:
    runs = []
    for _ in range(2):
        learner = ABPTTLearner(tiny_config(epochs=3), clip_tensor(), seed=7)
        learner.fit()
        runs.append((learner.history[-1].loss, learner.latents.noise.clone()))
    assert runs[0][0] == runs[1][0]
    assert torch.equal(runs[0][1], runs[1][1])


def test_a_stopped_and_resumed_run_ends_identical_to_an_unbroken_one() -> None:
    config = tiny_config(epochs=6, lr_anneal=0.5)  # the resumed epochs anneal the rate
    unbroken = ABPTTLearner(config, clip_tensor(), seed=3)
    unbroken.fit()

    first = ABPTTLearner(config, clip_tensor(), seed=3)
    first.fit(epochs=2)
    tensors, meta = first.state_tensors()
    resumed = ABPTTLearner(
        config, clip_tensor(), seed=99
    )  # different seed: all must come from the state
    resumed.load_state_tensors(tensors, meta)
    resumed.fit()

    assert resumed.epoch == unbroken.epoch == 6
    assert [s.loss for s in resumed.history] == [s.loss for s in unbroken.history]
    for (name, a), b in zip(
        unbroken.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert torch.equal(unbroken.latents.noise, resumed.latents.noise)
    assert torch.equal(unbroken.averaged_reconstruction(), resumed.averaged_reconstruction())
    for (name, a), b in zip(
        unbroken.trained_model().state_dict().items(),
        resumed.trained_model().state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b), f"averaged {name}"


def test_should_stop_ends_the_run_between_epochs() -> None:
    learner = ABPTTLearner(tiny_config(epochs=50), clip_tensor(), seed=0)
    calls = []
    finished = learner.fit(should_stop=lambda: len(calls) >= 3, on_epoch=calls.append)
    assert not finished
    assert learner.epoch == 3


def test_several_videos_with_content_vectors_and_linear_dynamics() -> None:
    config = tiny_config(epochs=30, content_dim=4, state_dim=3, transition="linear")
    learner = ABPTTLearner(config, clip_tensor(videos=3), seed=0)
    learner.fit()
    assert learner.latents.content.shape == (3, 4)
    assert learner.history[-1].mse < learner.history[0].mse
    # the chains of different videos are different
    assert not torch.allclose(learner.latents.content[0], learner.latents.content[1])


def test_masked_pixels_leave_the_energy() -> None:
    clips = clip_tensor()
    visible = torch.ones(1, 16, 1, 16, 16)
    visible[:, ::3] = 0
    learner = ABPTTLearner(tiny_config(epochs=1, langevin_steps=1), clips, visible, seed=0)
    tampered = clips.clone()
    tampered[:, ::3] = 1.0  # change only occluded frames
    other = ABPTTLearner(tiny_config(epochs=1, langevin_steps=1), tampered, visible, seed=0)
    learner.fit()
    other.fit()
    assert learner.history[-1].loss == other.history[-1].loss


def test_random_chunk_offsets_cover_every_frame_once_and_move() -> None:
    learner = ABPTTLearner(
        tiny_config(frames=20, chunk_length=8, chunk_offsets="random"), clip_tensor(20), seed=0
    )
    seen = set()
    for _ in range(20):
        bounds = learner._chunk_bounds()
        assert bounds[0][0] == 0 and bounds[-1][1] == 20
        assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
        assert all(0 < end - begin <= 8 for begin, end in bounds)
        seen.add(bounds[0][1])
    assert len(seen) > 3, "the first boundary should move between epochs"


def test_a_resumed_run_with_random_offsets_is_identical() -> None:
    config = tiny_config(epochs=5, chunk_offsets="random")
    unbroken = ABPTTLearner(config, clip_tensor(), seed=4)
    unbroken.fit()
    first = ABPTTLearner(config, clip_tensor(), seed=4)
    first.fit(epochs=2)
    resumed = ABPTTLearner(config, clip_tensor(), seed=0)
    resumed.load_state_tensors(*first.state_tensors())
    resumed.fit()
    assert [s.loss for s in resumed.history] == [s.loss for s in unbroken.history]


def test_learn_steps_take_that_many_optimiser_steps_per_chunk_and_fit_faster() -> None:
    config = tiny_config(epochs=20, frames=16, chunk_length=8)
    one = ABPTTLearner(config, clip_tensor(), seed=2)
    three = ABPTTLearner(config.model_copy(update={"learn_steps": 3}), clip_tensor(), seed=2)
    one.fit()
    three.fit()
    steps = [int(s["step"]) for s in three.optimizer.state_dict()["state"].values()]
    assert set(steps) == {20 * 2 * 3}  # epochs x chunks x learn_steps
    assert three.history[-1].mse < one.history[-1].mse


def test_fill_warmup_sees_only_visible_pixels_and_pulls_hidden_frames_to_interpolation() -> None:
    clips = clip_tensor()
    visible = torch.ones(1, 16, 1, 16, 16)
    visible[:, 1::3] = 0
    config = tiny_config(epochs=30, fill_warmup=1.0)
    tampered = clips.clone()
    tampered[:, 1::3] = 1.0  # only occluded frames differ: the fill must not see them
    warm = ABPTTLearner(config, clips, visible, seed=0)
    other = ABPTTLearner(config, tampered, visible, seed=0)
    cold = ABPTTLearner(config.model_copy(update={"fill_warmup": 0}), clips, visible, seed=0)
    for learner in (warm, other, cold):
        learner.fit()
    assert warm.history[-1].loss == other.history[-1].loss
    assert warm.fill is not None and cold.fill is None

    def hidden_error(learner: ABPTTLearner) -> float:
        return float(((learner.reconstruction - clips)[:, 1::3] ** 2).mean())

    assert hidden_error(warm) < hidden_error(cold)


def test_a_transition_rate_scale_splits_the_parameters_into_two_groups() -> None:
    plain = ABPTTLearner(tiny_config(epochs=1), clip_tensor(), seed=0)
    assert len(plain.optimizer.param_groups) == 1
    scaled = ABPTTLearner(tiny_config(epochs=1, transition_lr_scale=5.0), clip_tensor(), seed=0)
    transition, generator = scaled.optimizer.param_groups
    assert transition["lr"] == 5 * generator["lr"]
    assert sum(len(g["params"]) for g in (transition, generator)) == len(
        list(scaled.model.parameters())
    )
    scaled.fit()
    resumed = ABPTTLearner(tiny_config(epochs=1, transition_lr_scale=5.0), clip_tensor(), seed=1)
    resumed.load_state_tensors(*scaled.state_tensors())
    assert resumed.optimizer.param_groups[0]["lr"] == transition["lr"]
