"""PCA warm start: the networks and chains begin on the clip's principal-component path.

The LDS baseline (model/lds.py) reads a clip's dynamics off its PCA coefficients in a second.
A warm start hands that path to the dynamic generator before ABPTT begins: the transition
and the noise chains are fitted so the rolled states follow the (scaled) coefficients, the
generator so it decodes those states into the frames. Training then continues as usual.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from model.networks import DynamicGenerator

COMPONENTS = 16  # 30 (the LDS's count) did no better on flag over three seeds (QUALITY.md)
STATE_SCALE = 0.8  # largest first coefficient, kept inside the tanh's range
PATH_STEPS = 500
PATH_LEARNING_RATE = 1e-2
PATH_TOLERANCE = 0.01  # state error the path fit accepts, against a N(0, I) prior on the noise
GENERATOR_STEPS = 50  # passes over the chunks
JOINT_STEPS = 50


def pca_states(clips: torch.Tensor, state_dim: int) -> torch.Tensor:
    """(N, T, 3, H, W) clips -> (N, T, d) states: the leading PCA coefficients of all frames,
    scaled so the first stays within +-STATE_SCALE; the other state units start at 0."""
    videos, length = clips.shape[:2]
    flat = clips.reshape(videos * length, -1).double()
    centred = flat - flat.mean(dim=0)
    left, singular, _ = torch.linalg.svd(centred, full_matrices=False)
    count = min(COMPONENTS, state_dim, singular.numel())
    coefficients = left[:, :count] * singular[:count]
    coefficients = coefficients * (STATE_SCALE / coefficients[:, 0].abs().max().clamp_min(1e-12))
    states = torch.zeros(videos * length, state_dim, dtype=torch.float64)
    states[:, :count] = coefficients
    return states.reshape(videos, length, state_dim).to(clips.device, torch.float32)


def fit_path(
    model: DynamicGenerator, states: torch.Tensor, noise_dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit the transition and the noise so rolling from states[:, 0] follows `states`;
    returns (initial state, noise), the chains' new values."""
    start = states[:, 0].detach()
    noise = torch.zeros(*states.shape[:2], noise_dim, device=states.device, requires_grad=True)
    optimizer = torch.optim.Adam([*model.transition.parameters(), noise], lr=PATH_LEARNING_RATE)
    length = states.shape[1]
    for _ in range(PATH_STEPS):
        rolled = model.roll(start, noise)
        misfit = ((rolled - states) ** 2).sum() / (2 * PATH_TOLERANCE**2)
        loss = (misfit + 0.5 * (noise**2).sum()) / length
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return start, noise.detach()


def fit_generator(
    chunk_energy: Callable[[int, int], torch.Tensor],
    bounds: list[tuple[int, int]],
    step: Callable[[torch.Tensor], None],
) -> None:
    """Fit the generator to decode the frames from their fitted states, chunk by chunk (the
    batch statistics training sees), with `step`: the training's own parameter step."""
    for _ in range(GENERATOR_STEPS):
        for begin, end in bounds:
            step(chunk_energy(begin, end))
