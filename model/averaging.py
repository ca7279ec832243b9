"""An exponential moving average of a model's weights over the epochs (`weight_average`): the
checkpoint holds the average, the training steps the live weights."""

from __future__ import annotations

import copy
from typing import TypeVar

import torch

# Early on the average covers about the last tenth of the epochs so far (the decay's warm-up
# below), since the first epochs' weights are far from the trained ones; once
# (1 + epoch) / (WARMUP + epoch) reaches the decay (epoch 890 for the default 0.99) it covers
# the configured horizon, 1 / (1 - decay) epochs.
WARMUP = 10

Module = TypeVar("Module", bound=torch.nn.Module)


class WeightAverage:
    """The average of one model's weights, folded in after each epoch."""

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.weights: dict[str, torch.Tensor] = {}

    @property
    def enabled(self) -> bool:
        """Whether the configured decay asks for an average at all."""
        return self.decay > 0

    def update(self, model: torch.nn.Module, epoch: int) -> None:
        """Fold the weights after `epoch` (counted from 1) into the average."""
        if not self.enabled:
            return
        rate = 1.0 - min(self.decay, (1 + epoch) / (WARMUP + epoch))
        with torch.no_grad():
            for name, value in model.state_dict().items():
                kept = self.weights.get(name)
                if kept is None or not value.dtype.is_floating_point:
                    self.weights[name] = value.detach().clone()
                else:
                    kept.lerp_(value.detach(), rate)

    def averaged(self, model: Module) -> Module:
        """A copy of `model` holding the averaged weights; `model` itself before any update."""
        if not self.weights:
            return model
        twin = copy.deepcopy(model)
        twin.load_state_dict(self.weights)
        return twin

    def state(self) -> dict[str, torch.Tensor]:
        """The average as resume tensors, named `average.<weight>`."""
        return {f"average.{name}": value for name, value in self.weights.items()}

    def load(self, tensors: dict[str, torch.Tensor], device: torch.device) -> None:
        """Restore what `state` saved (resume files written before averaging have none)."""
        prefix = "average."
        self.weights = {
            key[len(prefix) :]: value.to(device)
            for key, value in tensors.items()
            if key.startswith(prefix)
        }
