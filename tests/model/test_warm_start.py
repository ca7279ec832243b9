"""The PCA warm start: states from the clip's components, a fit that training keeps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.errors import DyngenError
from model.learner import ABPTTLearner
from model.warm_start import COMPONENTS, STATE_SCALE, pca_states
from tests.model.conftest import tiny_config
from tests.model.test_learner import clip_tensor


def test_pca_states_are_scaled_uncorrelated_components_and_zero_beyond_them() -> None:
    clips = clip_tensor(frames=24, videos=2)
    states = pca_states(clips, state_dim=COMPONENTS + 4)
    assert states.shape == (2, 24, COMPONENTS + 4)
    flat = states.reshape(48, -1).double()
    assert float(flat[:, 0].abs().max()) == pytest.approx(STATE_SCALE)
    assert torch.count_nonzero(flat[:, COMPONENTS:]) == 0
    gram = flat[:, :COMPONENTS].T @ flat[:, :COMPONENTS]
    off_diagonal = gram - torch.diag(torch.diag(gram))
    assert float(off_diagonal.abs().max()) < 1e-6 * float(gram.diag().max())
    variances = gram.diag().numpy()
    assert np.all(np.diff(variances) <= 1e-9)  # leading components first


@pytest.mark.parametrize(("videos", "content_dim"), [(1, 0), (2, 2)])
def test_a_warm_start_begins_near_the_clip_and_training_stays_ahead_of_a_cold_start(
    videos: int, content_dim: int
) -> None:
    config = tiny_config(warm_start="pca", epochs=6, content_dim=content_dim)
    clips = clip_tensor(videos=videos)
    warm = ABPTTLearner(config, clips, seed=0)
    cold = ABPTTLearner(config.model_copy(update={"warm_start": "none"}), clips, seed=0)
    warm.warm_start()
    warm.fit()
    cold.fit()
    assert warm.history[0].mse < cold.history[0].mse / 10, (warm.history[0], cold.history[0])
    assert warm.history[-1].mse < cold.history[-1].mse / 3, (warm.history[-1], cold.history[-1])


def test_the_warm_start_fills_the_chains_from_the_fitted_path() -> None:
    learner = ABPTTLearner(tiny_config(warm_start="pca"), clip_tensor(), seed=0)
    prior_noise = learner.latents.noise.clone()
    learner.warm_start()
    assert not torch.equal(learner.latents.noise, prior_noise)
    first_states = pca_states(learner.clips, learner.config.state_dim)[:, 0]
    assert torch.equal(learner.latents.initial_state, first_states)


def test_the_warm_start_refuses_a_mask() -> None:
    visible = torch.ones(1, 16, 1, 16, 16)
    visible[:, 3] = 0
    learner = ABPTTLearner(tiny_config(warm_start="pca"), clip_tensor(), visible, seed=0)
    with pytest.raises(DyngenError, match="needs complete videos"):
        learner.warm_start()
