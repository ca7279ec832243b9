"""`make bench`: seconds per ABPTT epoch and achieved FLOP/s, beside the machine's matmul limit."""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from model.config import TrainConfig
from model.flops import epoch_flops
from model.learner import ABPTTLearner
from model.procedural import waves
from model.video_io import to_tensor_scale

SETTINGS = {
    "authors 64x64, 60 frames, L=30, 15 steps": TrainConfig(),
    "32x32, 60 frames, L=30, 15 steps": TrainConfig(image_size=32),
}


def matmul_limit(
    device: torch.device, dtype: torch.dtype, size: int = 2048, repeats: int = 10
) -> float:
    """Dense square matmul FLOP/s: the practical ceiling of this device."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    _sync(device)
    began = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - began)


def epoch_seconds(config: TrainConfig, device: torch.device, epochs: int) -> float:
    """Median seconds of `epochs` timed epochs after one warm-up epoch."""
    clip = torch.from_numpy(to_tensor_scale(waves(config.frames, config.image_size)))[None]
    learner = ABPTTLearner(config, clip, seed=0, device=device)
    learner.train_epoch()
    times = []
    for _ in range(epochs):
        _sync(device)
        began = time.perf_counter()
        learner.train_epoch()
        _sync(device)
        times.append(time.perf_counter() - began)
    return float(np.median(times))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    """Print the table (markdown, for BENCHMARKS.md)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per setting")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    limits = {
        name: matmul_limit(device, dtype)
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    }
    print(
        f"matmul limit: fp32 {limits['fp32'] / 1e9:.1f} GFLOP/s, "
        f"bf16 {limits['bf16'] / 1e9:.1f} GFLOP/s\n"
    )
    print("| setting | s / epoch | GFLOP / epoch | GFLOP/s | of fp32 limit |")
    print("| --- | --- | --- | --- | --- |")
    for name, config in SETTINGS.items():
        seconds = epoch_seconds(config, device, args.epochs)
        flops = epoch_flops(config)
        achieved = flops / seconds
        print(
            f"| {name} | {seconds:.2f} | {flops / 1e9:.1f} | {achieved / 1e9:.1f} | "
            f"{achieved / limits['fp32']:.0%} |"
        )
    if device.type == "cpu":
        print(f"\npeak RSS {_peak_rss_mib():.0f} MiB")
    else:
        print(f"\npeak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")


def _peak_rss_mib() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


if __name__ == "__main__":
    main()
