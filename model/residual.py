"""The residual process (`residual: lds`): an LDS of what the generator leaves out, x - G(s).

The generator decodes a conditional mean, so the clip's fast stochastic detail ends up in the
residuals. After training, the clip is decoded from the inferred chains (in the training's
chunks: batch norm uses each chunk's statistics), an LDS is fitted to the residuals in a PCA
basis (model/lds.py), and synthesis adds a sample of it to every decoded frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from model.lds import fit_linear_dynamics, usable_components
from model.networks import DynamicGenerator

RESIDUAL_KEYS = ("mean", "basis", "transition", "noise", "states")
FLOOR_KEY = "floor"  # optional: checkpoints of `residual: lds` have none
RESIDUAL_STREAM = 7919  # the residual's draws come from a stream of their own (see sample)


@dataclass
class ResidualLDS:
    """y = C x + mu over flattened (3, H, W) frames in [-1, 1]; x' = A x + B w."""

    mean: torch.Tensor  # (D,)
    basis: torch.Tensor  # (D, n)
    transition: torch.Tensor  # (n, n)
    noise: torch.Tensor  # (n, n)
    states: torch.Tensor  # (N, T, n) coefficients of the training residuals
    # `lds_noise`: per-pixel standard deviation of what the n components leave out, added as
    # white noise to every frame (the finest detail, which no low-rank process carries)
    floor: torch.Tensor | None = None  # (D,)

    @property
    def components(self) -> int:
        """n, the coefficients per frame."""
        return int(self.basis.shape[1])

    def tensors(self) -> dict[str, torch.Tensor]:
        """The arrays by name, as the checkpoint stores them (prefixed `residual.`)."""
        tensors = {key: getattr(self, key) for key in RESIDUAL_KEYS}
        return tensors | ({} if self.floor is None else {FLOOR_KEY: self.floor})

    def to(self, device: torch.device | str) -> ResidualLDS:
        """The same process on another device."""
        floor = None if self.floor is None else self.floor.to(device)
        moved = {key: getattr(self, key).to(device) for key in RESIDUAL_KEYS}
        return ResidualLDS(**moved, floor=floor)


def decode_chains(
    model: DynamicGenerator,
    initial_state: torch.Tensor,
    noise: torch.Tensor,
    content: torch.Tensor,
    chunk: int,
    bf16: bool = False,
) -> torch.Tensor:
    """The training clip as the model explains it: (N, T, 3, H, W) from the chains, decoded in
    chunks of `chunk` frames with the state carried, as training decodes them."""
    parts, state = [], initial_state
    with torch.no_grad():
        for begin in range(0, noise.shape[1], chunk):
            states = model.roll(state, noise[:, begin : begin + chunk])
            state = states[:, -1]
            with torch.autocast(states.device.type, dtype=torch.bfloat16, enabled=bf16):
                parts.append(model.decode(states, content).float())
    return torch.cat(parts, dim=1)


def fit_residual(
    clips: torch.Tensor, decoded: torch.Tensor, components: int, floor: bool = False
) -> ResidualLDS:
    """An LDS of clips - decoded, both (N, T, 3, H, W) in [-1, 1], with at most `components`
    (`floor`: and the per-pixel spread of what those components leave out)."""
    videos, length = clips.shape[:2]
    residuals = (clips - decoded).reshape(videos, length, -1).double().cpu().numpy()
    n = usable_components(components, videos * (length - 1), videos * length)
    arrays = fit_linear_dynamics(residuals, n)
    process = ResidualLDS(*(torch.from_numpy(a.astype(np.float32)) for a in arrays))
    if floor:
        mean, basis, states = arrays[0], arrays[1], arrays[4]
        left = residuals - mean - states @ basis.T  # (N, T, D)
        process.floor = torch.from_numpy(left.std(axis=(0, 1)).astype(np.float32))
    return process


class ResidualSampler:
    """Rolls one residual LDS per video and hands out its frames chunk by chunk."""

    def __init__(
        self, process: ResidualLDS, videos: int, seed: int, scale: float, device: torch.device
    ) -> None:
        self.process = process.to(device)
        # numpy draws of a stream of their own: the generator's noise is the same with or
        # without a residual, so the two syntheses of one seed differ only by the residual
        self.rng = np.random.default_rng([seed, RESIDUAL_STREAM])
        # and the floor's from one more: `lds_noise` rolls the same LDS as `lds`
        self.floor_rng = np.random.default_rng([seed, RESIDUAL_STREAM, 1])
        self.scale = scale
        self.device = device
        # start each video from a random training coefficient, not from the mean
        starts = self.process.states.reshape(-1, process.components)
        picks = torch.from_numpy(self.rng.integers(0, len(starts), videos)).to(device)
        self.state = starts[picks]  # (V, n)

    def frames(self, length: int, shape: tuple[int, ...]) -> torch.Tensor:
        """The next `length` residual frames of every video: (V, length, *shape)."""
        p, videos = self.process, self.state.shape[0]
        states = torch.empty((videos, length, p.components), device=self.device)
        for t in range(length):
            states[:, t] = self.state
            drive = self._normal((videos, p.components)) * self.scale
            self.state = self.state @ p.transition.T + drive @ p.noise.T
        pixels = states @ p.basis.T + p.mean  # (V, length, D)
        if p.floor is not None:
            white = self._normal(tuple(pixels.shape), self.floor_rng)
            pixels = pixels + white * p.floor * self.scale
        return pixels.reshape(videos, length, *shape)

    def _normal(
        self, shape: tuple[int, ...], rng: np.random.Generator | None = None
    ) -> torch.Tensor:
        """Standard normal draws from the sampler's own stream (or `rng`)."""
        draws = (rng or self.rng).standard_normal(shape).astype(np.float32)
        return torch.from_numpy(draws).to(self.device)
