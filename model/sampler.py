"""Synthesis: roll the learned transition for any number of frames and decode chunk by chunk."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from model.checkpoint import Checkpoint
from model.config import SynthesisConfig
from model.errors import DyngenError
from model.learner import use_bf16
from model.residual import ResidualSampler


def _start_latents(
    ckpt: Checkpoint, config: SynthesisConfig, rng: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """s_0 and content for each video: learned (of training video `content`) or fresh draws."""
    n = config.num_videos
    videos = ckpt.initial_state.shape[0]
    index = config.content if config.content is not None else 0
    if index >= videos:
        raise DyngenError(f"content {index}: the model was trained on {videos} video(s)")
    if config.fresh_state:
        state = torch.randn((n, ckpt.config.state_dim), generator=rng, device=device)
    else:
        state = ckpt.initial_state[index].to(device).expand(n, -1).clone()
    if config.content is None:
        content = torch.randn((n, ckpt.config.content_dim), generator=rng, device=device)
    else:
        content = ckpt.content[index].to(device).expand(n, -1).clone()
    return state, content


@torch.inference_mode()
def sample_chunks(
    ckpt: Checkpoint, config: SynthesisConfig, *, seed: int = 0, device: torch.device | str = "cpu"
) -> Iterator[torch.Tensor]:
    """Yield frames (V, L, 3, H, W) in [-1, 1] chunk by chunk; memory doesn't grow with length.

    A checkpoint with a residual process adds a sample of it to every frame; one with a
    calibration (model/calibration.py) scales the noise and anchors the state."""
    device = torch.device(device)
    model = ckpt.model.to(device)
    rng = torch.Generator(device=device).manual_seed(seed)
    state, content = _start_latents(ckpt, config, rng, device)
    chunk = ckpt.config.chunk
    bf16 = use_bf16(ckpt.config.precision, device)
    calibration = ckpt.calibration
    # a calibrated model's gain scales every drawn noise, the residual's innovations too
    scale = config.noise_scale * (calibration.gain if calibration is not None else 1.0)
    residual = None
    if ckpt.residual is not None:
        residual = ResidualSampler(ckpt.residual, config.num_videos, seed, scale, device)
    for begin in range(0, config.frames, chunk):
        length = min(chunk, config.frames - begin)
        noise = torch.randn(
            (config.num_videos, length, ckpt.config.noise_dim), generator=rng, device=device
        )
        if calibration is None:
            states = model.roll(state, noise * scale)  # (V, L, d)
        else:
            states = calibration.roll(model, state, noise * scale)
        state = states[:, -1]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            frames = model.decode(states, content).float()
        if residual is not None:
            frames = (frames + residual.frames(length, tuple(frames.shape[2:]))).clamp(-1, 1)
        yield frames
