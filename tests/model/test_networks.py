"""Network shapes: the authors' 64x64 layout and every promised size."""

from __future__ import annotations

import pytest
import torch

from model.networks import DynamicGenerator, generator_channels
from tests.model.conftest import tiny_config


def test_the_authors_64x64_layout() -> None:
    assert generator_channels(64, 64) == [512, 512, 256, 128, 64, 3]


@pytest.mark.parametrize("size", [16, 32, 64, 128, 256])
def test_every_size_decodes_to_its_frame(size: int) -> None:
    config = tiny_config(image_size=size, base_channels=2)
    model = DynamicGenerator(config)
    states = model.roll(torch.zeros(2, 8), torch.randn(2, 3, 8))
    frames = model.decode(states, None)
    assert frames.shape == (2, 3, 3, size, size)
    assert frames.abs().max() <= 1


def test_content_is_concatenated_to_the_state() -> None:
    model = DynamicGenerator(tiny_config(content_dim=5))
    assert model.generator.net[0].in_channels == 5 + 8
    frames = model.decode(torch.zeros(2, 4, 8), torch.randn(2, 5))
    assert frames.shape == (2, 4, 3, 16, 16)
