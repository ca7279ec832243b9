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
RESIDUAL_STREAM = 7919  # the residual's draws come from a stream of their own (see sample)


@dataclass
class ResidualLDS:
    """y = C x + mu over flattened (3, H, W) frames in [-1, 1]; x' = A x + B w."""

    mean: torch.Tensor  # (D,)
    basis: torch.Tensor  # (D, n)
    transition: torch.Tensor  # (n, n)
    noise: torch.Tensor  # (n, n)
    states: torch.Tensor  # (N, T, n) coefficients of the training residuals

    @property
    def components(self) -> int:
        """n, the coefficients per frame."""
        return int(self.basis.shape[1])

    def tensors(self) -> dict[str, torch.Tensor]:
        """The arrays by name, as the checkpoint stores them (prefixed `residual.`)."""
        return {key: getattr(self, key) for key in RESIDUAL_KEYS}

    def to(self, device: torch.device | str) -> ResidualLDS:
        """The same process on another device."""
        return ResidualLDS(*(getattr(self, key).to(device) for key in RESIDUAL_KEYS))


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


def fit_residual(clips: torch.Tensor, decoded: torch.Tensor, components: int) -> ResidualLDS:
    """An LDS of clips - decoded, both (N, T, 3, H, W) in [-1, 1], with at most `components`."""
    videos, length = clips.shape[:2]
    residuals = (clips - decoded).reshape(videos, length, -1).double().cpu().numpy()
    n = usable_components(components, videos * (length - 1), videos * length)
    arrays = fit_linear_dynamics(residuals, n)
    return ResidualLDS(*(torch.from_numpy(a.astype(np.float32)) for a in arrays))


class ResidualSampler:
    """Rolls one residual LDS per video and hands out its frames chunk by chunk."""

    def __init__(
        self, process: ResidualLDS, videos: int, seed: int, scale: float, device: torch.device
    ) -> None:
        self.process = process.to(device)
        # numpy draws of a stream of their own: the generator's noise is the same with or
        # without a residual, so the two syntheses of one seed differ only by the residual
        self.rng = np.random.default_rng([seed, RESIDUAL_STREAM])
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
        return pixels.reshape(videos, length, *shape)

    def _normal(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Standard normal draws from the sampler's own stream."""
        return torch.from_numpy(self.rng.standard_normal(shape).astype(np.float32)).to(self.device)
