"""Training with a fixed seed is bit-identical across refactors: the files' sha256 is recorded.

The hashes were computed before the architecture work of issue 15 and must not move while
the code only changes shape (QUALITY.md and BENCHMARKS.md stay true). They hold on the
project machines' CPU build of torch, one thread, fp32; a deliberate change of what a
training computes updates them in the same commit, saying why.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
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
    "abptt": ["model.safetensors 4a4c3ae637a215f7ecc97c29c4a3d3565dfbcb1b2f5080f70122bfe9c4fc6060"],
    "masked": [
        "model.safetensors 95398cb22eabc76e82f5e5cfb823a047b76b99551a43150670e92fe6a8b9bc48"
    ],
    "lds": ["model.safetensors d3a7ec1f3d7dd1b70037d542762b19c746699573f5bdab8070a71c017552635f"],
    "auto": [
        "model-abptt.safetensors b6ebe9df73486ae8aaa7a922b99a4ec572ab36328d796388d225dbc63f15f3c1",
        "model.safetensors d3a7ec1f3d7dd1b70037d542762b19c746699573f5bdab8070a71c017552635f",
    ],
}


def tensors_digest(path: Path) -> str:
    """sha256 over every tensor (name, dtype, shape, bytes) and the metadata but the config."""
    digest = hashlib.sha256()
    with safe_open(str(path), framework="pt") as handle:
        # a new config field (with its value that changes nothing) must not move the hash
        metadata = {k: v for k, v in (handle.metadata() or {}).items() if k != "config"}
        digest.update(json.dumps(metadata, sort_keys=True).encode())
        for name in sorted(handle.keys()):
            tensor = handle.get_tensor(name).contiguous()
            digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


RUNS: dict[str, dict[str, Any]] = {
    "abptt": {"config": {"method": "abptt"}},
    "masked": {"config": {"method": "abptt", "frames": 24, "chunk_length": 24}, "mask": True},
    "lds": {"config": {"method": "lds", "lds_components": 4}},
    "auto": {"config": {"method": "auto", "lds_components": 4, "warm_start": "pca"}},
}


# One thread in every numeric library (torch, and numpy's BLAS behind the LDS's SVD and the
# blend's least squares): a reduction split over threads may round differently. The run goes
# in a fresh process, because BLAS fixes its threads when it loads and other tests share ours.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def train_and_digest(run: str, video: Path, out: Path) -> list[str]:
    """Train the named run with seed 7 and digest every model file it writes."""
    torch.set_num_threads(1)
    spec = RUNS[run]
    config = tiny_config(epochs=6, precision="fp32", **spec["config"])
    mask = MissingFramesMask(frames=[3, 4, 5, 11]) if spec.get("mask") else None
    result = train_model(config, [video], out, mask=mask, seed=7, device="cpu")
    models = sorted(result.checkpoint.parent.glob("model*.safetensors"))  # auto keeps both
    return [f"{m.name} {tensors_digest(m)}" for m in models]


@pytest.mark.parametrize("run", sorted(RUNS))
def test_training_with_a_fixed_seed_is_bit_identical(
    run: str, waves_video: Path, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "tests.model.test_fixed_seed", run, str(waves_video)]
    command.append(str(tmp_path / "out"))
    done = subprocess.run(
        command, env=os.environ | ONE_THREAD, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == EXPECTED[run]


if __name__ == "__main__":
    print(json.dumps(train_and_digest(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))))
