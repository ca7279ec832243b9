"""`make bench`: ABPTT epoch time beside a plain port and the matmul limit; synthesis speed."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from benchmarks.baseline import PlainLearner
from model.checkpoint import Checkpoint
from model.config import SynthesisConfig, TrainConfig, with_recovery_defaults
from model.flops import epoch_flops, generator_forward_flops
from model.learner import ABPTTLearner
from model.networks import DynamicGenerator
from model.procedural import waves
from model.sampler import sample_chunks
from model.video_frames import to_tensor_scale

Learner = Callable[..., ABPTTLearner]


def matmul_limit(
    device: torch.device, dtype: torch.dtype, size: int = 4096, repeats: int = 4
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


def epoch_seconds(
    make: Learner,
    config: TrainConfig,
    device: torch.device,
    epochs: int,
    visible: torch.Tensor | None = None,
) -> float:
    """Median seconds of `epochs` timed epochs after two warm-up epochs (oneDNN builds kernels)."""
    clip = torch.from_numpy(to_tensor_scale(waves(config.frames, config.image_size)))[None]
    learner = make(config, clip, visible, seed=0, device=device)
    for _ in range(2):
        learner.train_epoch()
    times = []
    for _ in range(epochs):
        _sync(device)
        began = time.perf_counter()
        learner.train_epoch()
        _sync(device)
        times.append(time.perf_counter() - began)
    return float(np.median(times))


def synthesis_fps(size: int, precision: str, device: torch.device, videos: int = 8) -> float:
    """Frames per second generating `videos` batched 120-frame videos (untrained weights)."""
    config = TrainConfig(image_size=size, precision=precision)  # type: ignore[arg-type]
    model = DynamicGenerator(config).to(device)
    model.initialise(torch.Generator(device=device).manual_seed(0))
    ckpt = Checkpoint(config, model, torch.zeros(1, config.state_dim), torch.zeros(1, 0))
    synth = SynthesisConfig(num_videos=videos, frames=120)
    list(sample_chunks(ckpt, synth, device=device))  # warm-up
    began = time.perf_counter()
    for _ in sample_chunks(ckpt, synth, device=device):
        pass
    _sync(device)
    return videos * synth.frames / (time.perf_counter() - began)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def training_table(device: torch.device, epochs: int, limits: dict[str, float]) -> None:
    """Rows: plain port, dyngen fp32, dyngen bf16, for 64x64 and 32x32."""
    print("| setting | variant | s / epoch | vs plain | GFLOP/s | of fp32 limit | of bf16 limit |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for size in (64, 32):
        base = TrainConfig(image_size=size)  # type: ignore[arg-type]
        flops = epoch_flops(base)
        variants: list[tuple[str, Learner, str]] = [
            ("plain fp32 (full autograd)", PlainLearner, "fp32"),
            ("dyngen fp32", ABPTTLearner, "fp32"),
            ("dyngen bf16 autocast", ABPTTLearner, "bf16"),
        ]
        plain = None
        for label, make, precision in variants:
            config = base.model_copy(update={"precision": precision})
            seconds = epoch_seconds(make, config, device, epochs)
            plain = plain or seconds
            rate = flops / seconds
            print(
                f"| {size}x{size}, 60 frames, L=30, 15 steps | {label} | {seconds:.2f} | "
                f"{seconds / plain:.2f} | {rate / 1e9:.1f} | {rate / limits['fp32']:.0%} | "
                f"{rate / limits['bf16']:.0%} |",
                flush=True,
            )


def recovery_table(device: torch.device, epochs: int) -> None:
    """Epoch time of a masked 64x64, 70-frame run: the old recovery config against today's."""
    print(
        "| masked run, 64x64, 70 frames, half the frames hidden | s / epoch | epochs in 250 old |"
    )
    print("| --- | --- | --- |")
    visible = torch.ones(1, 70, 1, 64, 64)
    visible[:, 1::2] = 0
    rows = {
        "before: sigma 0.5, 15 steps, L=30": {"sigma": 0.5},
        "5 steps, L=70, fill_warmup 1": with_recovery_defaults({"learn_steps": 1}),
        "recovery defaults: the same, 3 parameter steps": with_recovery_defaults({}),
    }
    old = None
    for label, fields in rows.items():
        config = TrainConfig.model_validate({"image_size": 64, "frames": 70} | fields)
        seconds = epoch_seconds(ABPTTLearner, config, device, epochs, visible)
        old = old or seconds
        print(f"| {label} | {seconds:.2f} | {250 * old / seconds:.0f} |", flush=True)


def warm_start_table(device: torch.device, epochs: int) -> None:
    """Seconds of the PCA warm start beside one default epoch, 60 frames."""
    print("| `--warm-start pca`, 60 frames | warm start s | s / epoch | warm start in epochs |")
    print("| --- | --- | --- | --- |")
    for size in (32, 64):
        config = TrainConfig(image_size=size)
        clip = torch.from_numpy(to_tensor_scale(waves(config.frames, size)))[None]
        learner = ABPTTLearner(config, clip, seed=0, device=device)
        _sync(device)
        began = time.perf_counter()
        learner.warm_start()
        _sync(device)
        warm = time.perf_counter() - began
        epoch = epoch_seconds(ABPTTLearner, config, device, epochs)
        print(f"| {size}x{size} | {warm:.1f} | {epoch:.2f} | {warm / epoch:.1f} |", flush=True)


def main() -> None:
    """Print the tables (markdown, for BENCHMARKS.md)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per row")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = parser.parse_args()
    device = _pick_device(args.device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    limits = {
        "fp32": matmul_limit(device, torch.float32),
        "bf16": matmul_limit(device, torch.bfloat16),
    }
    fp32, bf16 = limits["fp32"] / 1e9, limits["bf16"] / 1e9
    print(f"matmul limit: fp32 {fp32:.1f} GFLOP/s, bf16 {bf16:.1f} GFLOP/s")
    per_frame = generator_forward_flops(DynamicGenerator(TrainConfig()))
    print(f"64x64 generator forward: {per_frame / 1e6:.0f} MFLOP a frame\n")
    training_table(device, args.epochs, limits)
    print()
    recovery_table(device, args.epochs)
    print()
    warm_start_table(device, args.epochs)
    print("\n| synthesis | fp32 frames/s | bf16 frames/s |")
    print("| --- | --- | --- |")
    for size in (64, 128):
        fp32, bf16 = (synthesis_fps(size, p, device) for p in ("fp32", "bf16"))
        print(f"| {size}x{size}, 8 videos x 120 frames | {fp32:.0f} | {bf16:.0f} |", flush=True)
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
