"""FLOPs counted from the layers (multiply-adds x 2), for benchmarks and reports."""

from __future__ import annotations

from torch import nn

from model.config import TrainConfig
from model.networks import DynamicGenerator


def generator_forward_flops(model: DynamicGenerator) -> int:
    """FLOPs of decoding one frame: each transposed conv scatters every input pixel to k*k*C_out."""
    flops, side = 0, 1
    for layer in model.generator.net:
        if isinstance(layer, nn.ConvTranspose2d):
            kernel = layer.kernel_size[0] * layer.kernel_size[1]
            flops += 2 * layer.in_channels * layer.out_channels * kernel * side * side
            side *= layer.stride[0]
    return flops


def transition_forward_flops(model: DynamicGenerator) -> int:
    """FLOPs of one transition step (the linear layers)."""
    return sum(
        2 * m.in_features * m.out_features
        for m in model.transition.modules()
        if isinstance(m, nn.Linear)
    )


def epoch_flops(config: TrainConfig, videos: int = 1) -> int:
    """FLOPs of one ABPTT epoch: per chunk, K Langevin steps (forward + input gradient) and J
    learning steps (forward + input gradient + weight gradient), i.e. (2K + 3J) forwards."""
    model = DynamicGenerator(config)
    per_frame = generator_forward_flops(model) + transition_forward_flops(model)
    return videos * config.frames * (2 * config.langevin_steps + 3 * config.learn_steps) * per_frame
