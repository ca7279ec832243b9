"""Synthesis: roll the learned transition for any number of frames and decode chunk by chunk."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from model.auto_work import AUTO_VIDEOS
from model.checkpoint import Checkpoint
from model.config import SynthesisConfig
from model.errors import DyngenError
from model.learner import use_bf16
from model.residual import ResidualSampler

# The generator normalises each decoded batch by the batch's own statistics (the authors'
# batch norm, kept at synthesis), so a frame depends on the frames decoded beside it. One
# video decoded alone comes out further from its clip than in a batch of ten (flashing_light:
# dynamics 17 to 28 % further; fire and flame within 6 %; QUALITY.md, "Decoded in company").
# Fewer videos than auto scores at once are decoded beside companion rollouts, whose frames
# are dropped: a video comes out as it would in the batches auto chose the model by, whether
# one or ten are asked for.
DECODE_BATCH = AUTO_VIDEOS
COMPANION_STREAM = 7919  # the companions draw from a stream of their own


class _Companions:
    """Rollouts decoded beside fewer than DECODE_BATCH videos, then dropped."""

    def __init__(
        self, ckpt: Checkpoint, config: SynthesisConfig, seed: int, device: torch.device
    ) -> None:
        self.count = DECODE_BATCH - config.num_videos
        self.rng = torch.Generator(device=device).manual_seed(seed + COMPANION_STREAM)
        own = config.model_copy(update={"num_videos": self.count})
        self.state, self.content = _start_latents(ckpt, own, self.rng, device)

    def roll(self, ckpt: Checkpoint, length: int, scale: float) -> torch.Tensor:
        """Their next `length` states (C, L, d), rolled as the videos' are."""
        shape = (self.count, length, ckpt.config.noise_dim)
        noise = torch.randn(shape, generator=self.rng, device=self.state.device) * scale
        states = _roll(ckpt, self.state, noise)
        self.state = states[:, -1]
        return states


def _roll(ckpt: Checkpoint, state: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The transition's states from `state` (N, d) for scaled `noise` (N, L, k), with the
    calibration's anchor where the checkpoint has one: (N, L, d)."""
    if ckpt.calibration is None:
        return ckpt.model.roll(state, noise)
    return ckpt.calibration.roll(ckpt.model, state, noise)


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
    ckpt.model.to(device)  # the videos' and the companions' rolls use the checkpoint's model
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
    companions = None
    if config.num_videos < DECODE_BATCH:
        companions = _Companions(ckpt, config, seed, device)
        content = torch.cat([content, companions.content])  # decoded beside the videos'
    for begin in range(0, config.frames, chunk):
        length = min(chunk, config.frames - begin)
        noise = torch.randn(
            (config.num_videos, length, ckpt.config.noise_dim), generator=rng, device=device
        )
        states = _roll(ckpt, state, noise * scale)  # (V, L, d)
        state = states[:, -1]
        if companions is not None:  # rolled as the videos are, outside the decoder's autocast
            states = torch.cat([states, companions.roll(ckpt, length, scale)])
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            # the companions' frames, if any, are dropped
            frames = ckpt.model.decode(states, content)[: config.num_videos].float()
        if residual is not None:
            frames = (frames + residual.frames(length, tuple(frames.shape[2:]))).clamp(-1, 1)
        yield frames
