"""Fixtures shared by every part of the suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# One torch/BLAS thread in the test processes and in the processes they start (a caller's
# OMP_NUM_THREADS wins). The models here are tiny: a second thread buys nothing, and on cores
# shared with other processes (or with a second xdist worker) OpenMP threads spin waiting on
# each other: 10 epochs of the learner's test model took 105-133 s with two threads against
# 5-17 s with one on the loaded 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_configure(config: pytest.Config) -> None:
    """Apply the thread count to torch too, in case a plugin imported it before this file."""
    threads = os.environ["OMP_NUM_THREADS"]
    if threads.isdigit() and int(threads) > 0:
        import torch

        torch.set_num_threads(int(threads))


def shared_file(relative: str) -> Path:
    """A file of ../shared/data, or skip the test with a clear reason where it is absent."""
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"{path} is not on this machine")
    return path
