"""The plain ABPTT the benchmark compares against: fp32, full autograd at every Langevin step."""

from __future__ import annotations

import torch

from model.learner import ABPTTLearner


class PlainLearner(ABPTTLearner):
    """A direct port: each Langevin step also back-propagates into the parameters, then drops it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.bf16 = False
        generator = self.model.generator
        generator.memory_format = torch.contiguous_format  # the default NCHW layout
        generator.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]

    def _infer_chunk(self, begin: int, end: int, carry: torch.Tensor, first: bool) -> None:
        """Langevin with loss.backward(): parameter gradients computed every step."""
        cfg = self.config
        delta = cfg.langevin_delta
        names = ["noise", "initial_state", "content"] if first else ["noise"]
        for _ in range(cfg.langevin_steps):
            latents = self._chunk_latents(begin, end)
            moving = [latents[name].requires_grad_(True) for name in names]
            energy, *_ = self._energy(begin, end, carry, latents, first)
            self.model.zero_grad(set_to_none=True)
            energy.backward()
            with torch.no_grad():
                for name, z in zip(names, moving, strict=True):
                    drift = z if z.grad is None else z + z.grad
                    step = z - 0.5 * delta**2 * drift + delta * self._randn(z.shape)
                    self._store_latent(name, begin, end, step)
        self.model.zero_grad(set_to_none=True)
