"""`make gpu-check` without a CUDA device: it checks nothing, says so, and exits 0 (1 with
--strict), so the target can sit in any pipeline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _gpu_check(*args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"CUDA_VISIBLE_DEVICES": ""}  # no device, even on a CUDA machine
    argv = [sys.executable, "-m", "benchmarks.gpu_check", *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_without_cuda_it_skips_cleanly(tmp_path: Path) -> None:
    done = _gpu_check("--out", str(tmp_path / "gpu.md"))
    assert done.returncode == 0, done.stderr
    assert "no CUDA device" in done.stdout and "nothing was checked" in done.stdout
    assert not (tmp_path / "gpu.md").exists()


def test_strict_fails_without_cuda() -> None:
    done = _gpu_check("--strict")
    assert done.returncode == 1 and "no CUDA device" in done.stdout
