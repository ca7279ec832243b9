"""The stationary transition (issue 13): a post-training fine-tune of the transition alone, in
seconds, so that long syntheses keep visiting the states the training clip's chains visit.

Training fits the transition on chunks of the inferred chains: it learns what the state does
within the training length, never what it does after. Rolled for 4x that length with fresh
noise, the state can settle in one region of what the clip visits (flashing_light's plain
model: after the first 60 frames the state's first principal coordinate keeps 0.5 of the
chains' 2.0 standard deviation, stuck on the dark side). The fine-tune minimises

- the squared sliced 2-Wasserstein distance between the states of fresh rollouts (started on
  the chains' states, twice the training length, the first half-chunk dropped) and the
  chains' own states, plus
- the squared error of the chains rolled through the new transition against the states they
  rolled to before: the training clip still decodes as it did,

both over the chains' per-dimension variance. The generator, the chains, the residual
process and the calibration stay as they are.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch
from torch import nn

from model.calibration import Calibration, pulled_roll
from model.networks import DynamicGenerator

STATIONARY_STEPS = 400  # Adam steps: 18 to 36 s on one CPU thread at the default sizes
STATIONARY_LR = 1e-3
STATIONARY_ROLLOUTS = 32  # fresh rollouts per step
STATIONARY_PROJECTIONS = 64  # random directions of the sliced distance, redrawn each step
STATIONARY_STREAM = 6011  # the fine-tune draws its noise from a stream of its own


def sliced_w2(a: torch.Tensor, b: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Squared sliced 2-Wasserstein distance between point sets a (M, d) and b (K, d) along
    unit directions (d, P): a's sorted projections against b's quantiles at the same levels."""
    projected_a = (a @ directions).sort(dim=0).values
    projected_b = (b @ directions).sort(dim=0).values
    levels = torch.linspace(0, 1, a.shape[0], device=a.device)
    nearest = (levels * (b.shape[0] - 1)).round().long()
    return ((projected_a - projected_b[nearest]) ** 2).mean()


def stationary_transition(
    model: DynamicGenerator,
    initial_state: torch.Tensor,
    chains: torch.Tensor,
    seed: int = 0,
    steps: int = STATIONARY_STEPS,
    calibration: Calibration | None = None,
) -> nn.Module:
    """A copy of the model's transition fine-tuned so that long rollouts with fresh noise
    visit the states the chains (N, T, k) visit, the chains' own states held in place. The
    rollouts are the sampler's: with the calibration's noise gain and state anchor, if any."""
    device = initial_state.device
    chains = chains.to(device)
    with torch.no_grad():
        path = model.roll(initial_state, chains)  # (N, T, d): what the chains decode from
    visited = path.reshape(-1, path.shape[-1])
    variance = visited.var(0).mean().clamp_min(1e-8)
    transition = copy.deepcopy(model.transition).requires_grad_(True)
    optimizer = torch.optim.Adam(transition.parameters(), lr=STATIONARY_LR)
    rng = torch.Generator(device=device).manual_seed(seed + STATIONARY_STREAM)
    length, burn_in = 2 * chains.shape[1], chains.shape[1] // 2
    gain = calibration.gain if calibration is not None else 1.0
    # the sampler's anchor, if any (a pull of 0 rolls the transition alone)
    mean = calibration.mean.to(device) if calibration is not None else None
    pull = calibration.pull if calibration is not None else 0.0
    with torch.enable_grad():
        for _ in range(steps):
            held = ((pulled_roll(transition, initial_state, chains, None, 0.0) - path) ** 2).mean()
            starts = visited[
                torch.randint(0, len(visited), (STATIONARY_ROLLOUTS,), generator=rng, device=device)
            ]
            noise = gain * torch.randn(
                (STATIONARY_ROLLOUTS, length, chains.shape[-1]), generator=rng, device=device
            )
            rolled = pulled_roll(transition, starts, noise, mean, pull)[:, burn_in:]
            rolled = rolled.reshape(-1, visited.shape[1])
            directions = torch.randn(
                (visited.shape[1], STATIONARY_PROJECTIONS), generator=rng, device=device
            )
            directions = directions / directions.norm(dim=0)
            loss = (held + sliced_w2(rolled, visited, directions)) / variance
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return transition.requires_grad_(False)


def with_stationary_transition(ckpt: Any, seed: int = 0, steps: int = STATIONARY_STEPS) -> Any:
    """The checkpoint with its transition fine-tuned (stationary_transition): a new model, its
    config saying `stationary: chains`; the checkpoint given is unchanged."""
    model = copy.deepcopy(ckpt.model)
    model.transition = stationary_transition(
        ckpt.model, ckpt.initial_state, ckpt.chains, seed, steps, ckpt.calibration
    )
    config = ckpt.config.model_copy(update={"stationary": "chains"})
    model.config = config
    return dataclasses.replace(ckpt, model=model, config=config)
