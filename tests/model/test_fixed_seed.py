"""Training with a fixed seed is bit-identical across refactors: the files' sha256 is recorded.

The hashes were computed before the architecture work of issue 15 and must not move while
the code only changes shape (QUALITY.md and BENCHMARKS.md stay true). They hold on the
project machines' CPU build of torch, one thread, fp32; a deliberate change of what a
training computes updates them in the same commit, saying why.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open

from model.masks import MissingFramesMask
from model.pipeline import train_model
from tests.model.conftest import tiny_config

# sha256 of each written model file's tensors and metadata (see tensors_digest)
EXPECTED = {
    "abptt": ["model.safetensors d435e5f58c04e42255bd3d34027b568448319dc0a6744bd0796407ef8d568b1c"],
    "masked": [
        "model.safetensors 6d0e1ae102b642ced33afd73f29f35155659f3f104e45a63c6134343bbc0c451"
    ],
    "lds": ["model.safetensors 00b28faf732d69f8f40ac991c6c11d841775063b36e0a69999764ab746069de9"],
    "auto": [
        "model-abptt.safetensors 8972b4965fd64c96516b3ce3d937790b00c99d8a7047fbfa6ad983f413046d52",
        "model.safetensors 00b28faf732d69f8f40ac991c6c11d841775063b36e0a69999764ab746069de9",
    ],
}


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread: reductions split over threads may round differently."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tensors_digest(path: Path) -> str:
    """sha256 over every tensor (name, dtype, shape, bytes) and the metadata."""
    digest = hashlib.sha256()
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        digest.update(json.dumps(metadata, sort_keys=True).encode())
        for name in sorted(handle.keys()):
            tensor = handle.get_tensor(name).contiguous()
            digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


RUNS: dict[str, dict[str, Any]] = {
    "abptt": {"config": {}},
    "masked": {"config": {"frames": 24, "chunk_length": 24}, "mask": True},
    "lds": {"config": {"method": "lds", "lds_components": 4}},
    "auto": {"config": {"method": "auto", "lds_components": 4, "warm_start": "pca"}},
}


@pytest.mark.parametrize("run", sorted(RUNS))
def test_training_with_a_fixed_seed_is_bit_identical(
    run: str, waves_video: Path, tmp_path: Path, one_thread: None
) -> None:
    spec = RUNS[run]
    config = tiny_config(epochs=6, precision="fp32", **spec["config"])
    mask = MissingFramesMask(frames=[3, 4, 5, 11]) if spec.get("mask") else None
    result = train_model(config, [waves_video], tmp_path / "out", mask=mask, seed=7, device="cpu")
    models = sorted(result.checkpoint.parent.glob("model*.safetensors"))  # auto keeps both
    assert [f"{m.name} {tensors_digest(m)}" for m in models] == EXPECTED[run]
