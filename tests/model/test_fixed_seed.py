"""Training with a fixed seed is bit-identical across refactors: the files' sha256 is recorded.

The hashes must not move while the code only changes shape (QUALITY.md and BENCHMARKS.md
stay true). They hold on the project machines' CPU build of torch, one thread, fp32, the
kernels pinned to AVX2 (ONE_ISA), for each CPU vendor they were recorded on; a deliberate
change of what a training computes updates them in the same commit, saying why.
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
from model.training import train_model
from tests.model.conftest import tiny_config, write_waves_clip

# sha256 of each written model file's tensors and metadata (see tensors_digest), by the CPU's
# vendor: pinned to AVX2, the Intel Xeons of these sessions agree with each other and the AMD
# EPYC (Zen 4) of 2026-12-03 with itself, but not the two with each other (MKL's AVX2 paths
# round differently on AMD). The Intel hashes moved on 2026-12-03 by `weight_average` (the
# files hold the averaged weights; 0ad95ec7..., 51972c3b..., c4450ab0... with it set to 0).
# The runs keep a constant learning rate (`lr_anneal: 0`, the default being 0.3) so that both
# vendors' records stay valid: at 0 the annealing code leaves the arithmetic as it was (the
# AMD abptt hash is the one the commit before it wrote there); tests/model/test_anneal.py
# holds the annealed rates to their values.
# an LDS file is listed, not hashed: its sums below hold on every machine
LDS_FILES = ["model.safetensors lds"]
EXPECTED_BY_VENDOR: dict[str, dict[str, list[str]]] = {
    "GenuineIntel": {
        "abptt": [
            "model.safetensors 85222d537013f1fb3f33e75c2797fa377d0a143a1b63058349bd89c5c76851f5"
        ],
        "masked": [
            "model.safetensors d8a334fc5cdca4741862e562960c2fa01f6a176ab2ef02e135e560df4182d4c2"
        ],
        "auto": [
            "model-abptt.safetensors "
            "bacdb59b52072a1342720c14ee228b20099bb2ac0fae775bcd7f91ef00d3102c",
            *LDS_FILES,
        ],
    },
    "AuthenticAMD": {
        "abptt": [
            "model.safetensors 56061dc13f7746056185d036a432bf52f225a4e822c5cd6baf1e2416ecb3bf25"
        ],
        "masked": [
            "model.safetensors 295a250cf330590f1cebde3a8687c04e6b619342d838650520032fe85b5a88d1"
        ],
        "auto": [
            "model-abptt.safetensors "
            "c377023e8d802a339bfe6971862725d87dfb87118462c6a897eacac9e61cb9cf",
            *LDS_FILES,
        ],
    },
}


def cpu_vendor() -> str:
    """The CPU's vendor as Linux names it (GenuineIntel, AuthenticAMD), or '' where unknown."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    for line in cpuinfo.splitlines():
        if line.startswith("vendor_id"):
            return line.split(":", 1)[1].strip()
    return ""


def expected_files(run: str) -> list[str]:
    """What the run must write on this machine; skips where no hashes are recorded for it."""
    if run == "lds":
        return LDS_FILES
    vendor = cpu_vendor()
    if vendor not in EXPECTED_BY_VENDOR:
        pytest.skip(
            f"no fixed-seed hashes recorded for CPU vendor {vendor or 'unknown'}: record them"
            f" with `python -m tests.model.test_fixed_seed {run} OUT` under ONE_THREAD and ONE_ISA"
        )
    return EXPECTED_BY_VENDOR[vendor][run]


# The LDS is fitted in float64 by numpy's SVD, whose OpenBLAS picks its kernels by CPU model
# (DYNAMIC_ARCH): its last bits differ between machines (an AMD EPYC here moved them), so an
# LDS file is held to these sums to 1e-9 instead of a hash. |x| and x^2 sums don't depend on
# the singular vectors' signs, which a BLAS may also choose differently.
LDS_SUMS = {
    "basis": [85.61292002288215, 4.000000000000002],
    "mean": [91182.6875, 10881544.64453125],
    "noise": [314.44192582272814, 14136.45051271552],
    "states": [20335.762715465862, 12048341.173837109],
    "transition": [5.490251915781762, 3.765125522856397],
}
LDS_METADATA = {"seed": "7", "format": "dyngen-lds", "format_version": "1"}


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


def lds_entry(path: Path) -> dict[str, Any]:
    """An LDS file's metadata but the config and, per tensor, the sums of |x| and x^2."""
    sums = {}
    with safe_open(str(path), framework="pt") as handle:
        metadata = {k: v for k, v in (handle.metadata() or {}).items() if k != "config"}
        for name in sorted(handle.keys()):
            tensor = handle.get_tensor(name).double()
            sums[name] = [float(tensor.abs().sum()), float((tensor * tensor).sum())]
    return {"metadata": metadata, "sums": sums}


def is_lds(path: Path) -> bool:
    """Whether a model file holds an LDS."""
    with safe_open(str(path), framework="pt") as handle:
        return (handle.metadata() or {}).get("format") == "dyngen-lds"


CONSTANT_RATE = {"lr_anneal": 0.0}  # see EXPECTED_BY_VENDOR
RUNS: dict[str, dict[str, Any]] = {
    "abptt": {"config": {"method": "abptt"} | CONSTANT_RATE},
    "masked": {
        "config": {"method": "abptt", "frames": 24, "chunk_length": 24} | CONSTANT_RATE,
        "mask": True,
    },
    "lds": {"config": {"method": "lds", "lds_components": 4}},
    "auto": {
        "config": {"method": "auto", "lds_components": 4, "warm_start": "pca"} | CONSTANT_RATE
    },
}


# One thread in every numeric library (torch, and numpy's BLAS behind the LDS's SVD and the
# blend's least squares): a reduction split over threads may round differently. The run goes
# in a fresh process, because BLAS fixes its threads when it loads and other tests share ours.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# ... and one instruction set: torch picks its kernels by the CPU (ATen's vector code, oneDNN's
# convolutions, MKL's GEMM), and six epochs of Langevin sampling amplify their last bits into
# other weights (an Intel Xeon with AVX-512 and AMX moved every hash recorded on the machine
# before; pinned to AVX2 on that Xeon, some biases' sums moved by 30 % and more). AVX2 is the
# level every x86-64 machine these tests run on has.
ONE_ISA = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}


def train_and_digest(run: str, out: Path) -> list[str]:
    """Write the clip, train the named run on it with seed 7, digest every model file."""
    torch.set_num_threads(1)
    # The clip is encoded here, in the fresh process, not by the suite's fixture: within a
    # long pytest process x264 once wrote other bytes for the same frames (c5a98343... for
    # ce89720c...; not reproduced alone), which moved every hash below.
    video = write_waves_clip(out.parent / "waves.mp4")
    spec = RUNS[run]
    config = tiny_config(epochs=6, precision="fp32", **spec["config"])
    mask = MissingFramesMask(frames=[3, 4, 5, 11]) if spec.get("mask") else None
    result = train_model(config, [video], out, mask=mask, seed=7, device="cpu")
    models = sorted(result.checkpoint.parent.glob("model*.safetensors"))  # auto keeps both
    return [f"{m.name} lds" if is_lds(m) else f"{m.name} {tensors_digest(m)}" for m in models]


def lds_entries(out: Path) -> list[dict[str, Any]]:
    """What `lds_entry` says of each LDS file a run wrote."""
    return [lds_entry(m) for m in sorted(out.glob("model*.safetensors")) if is_lds(m)]


@pytest.mark.parametrize("run", sorted(RUNS))
def test_training_with_a_fixed_seed_is_bit_identical(run: str, tmp_path: Path) -> None:
    expected = expected_files(run)
    command = [sys.executable, "-m", "tests.model.test_fixed_seed", run, str(tmp_path / "out")]
    done = subprocess.run(
        command, env=os.environ | ONE_THREAD | ONE_ISA, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == expected
    for entry in lds_entries(tmp_path / "out"):
        assert entry["metadata"] == LDS_METADATA
        for name, sums in LDS_SUMS.items():
            assert entry["sums"][name] == pytest.approx(sums, rel=1e-9), name


if __name__ == "__main__":
    print(json.dumps(train_and_digest(sys.argv[1], Path(sys.argv[2]))))
