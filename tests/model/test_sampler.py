"""The sampler decodes fewer videos than auto scores at once beside companion rollouts."""

from __future__ import annotations

import torch

from model.checkpoint import Checkpoint
from model.config import SynthesisConfig
from model.networks import DynamicGenerator
from model.sampler import DECODE_BATCH, sample_chunks
from tests.model.conftest import tiny_config


def tiny_checkpoint() -> Checkpoint:
    """An untrained tiny model (torch's default weights, which respond to the noise more than
    the authors' small ones): its batch norm makes a frame depend on its decoded batch."""
    torch.manual_seed(0)
    config = tiny_config(content_dim=2)
    model = DynamicGenerator(config)
    return Checkpoint(config, model, torch.randn(1, 8), torch.randn(1, 2))


def decoded_batches(ckpt: Checkpoint, num_videos: int, seed: int = 0) -> tuple[list[int], list]:
    """The generator's batch sizes while synthesizing, and the chunks synthesized."""
    sizes: list[int] = []
    hook = ckpt.model.generator.register_forward_hook(
        lambda _module, inputs, _output: sizes.append(inputs[0].shape[0])
    )
    config = SynthesisConfig(num_videos=num_videos, frames=12)
    try:
        chunks = list(sample_chunks(ckpt, config, seed=seed))
    finally:
        hook.remove()
    return sizes, chunks


def test_a_single_video_is_decoded_beside_companions_whose_frames_are_dropped() -> None:
    sizes, chunks = decoded_batches(tiny_checkpoint(), num_videos=1)
    lengths = [chunk.shape[1] for chunk in chunks]
    assert lengths == [8, 4]  # the tiny config's chunk of 8, then the rest
    assert sizes == [DECODE_BATCH * length for length in lengths]
    assert all(chunk.shape[0] == 1 for chunk in chunks)


def test_a_full_batch_has_no_companions() -> None:
    sizes, chunks = decoded_batches(tiny_checkpoint(), num_videos=DECODE_BATCH)
    assert sizes == [DECODE_BATCH * chunk.shape[1] for chunk in chunks]


def test_the_companions_differ_from_the_video_and_repeat_with_the_seed() -> None:
    ckpt = tiny_checkpoint()
    first = torch.cat(decoded_batches(ckpt, num_videos=1, seed=3)[1], dim=1)
    again = torch.cat(decoded_batches(ckpt, num_videos=1, seed=3)[1], dim=1)
    other = torch.cat(decoded_batches(ckpt, num_videos=1, seed=4)[1], dim=1)
    assert torch.equal(first, again)
    assert (first - other).abs().mean() > 1e-3


def test_a_video_decoded_alone_would_come_out_otherwise() -> None:
    # why the companions exist: the same states decode to other frames without them
    ckpt = tiny_checkpoint()
    states = ckpt.model.roll(ckpt.initial_state, torch.randn(1, 8, 8))
    alone = ckpt.model.decode(states, ckpt.content)
    beside = ckpt.model.decode(
        torch.cat([states, ckpt.model.roll(torch.randn(3, 8), torch.randn(3, 8, 8))]),
        torch.cat([ckpt.content, torch.randn(3, 2)]),
    )[:1]
    assert (alone - beside).abs().mean() > 1e-3
