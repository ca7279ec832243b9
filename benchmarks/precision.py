"""Does bf16 autocast learn as well as fp32? Same runs, several seeds, side by side.

python -m benchmarks.precision [--epochs 100 --seeds 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from model.config import TrainConfig
from model.learner import ABPTTLearner
from model.masks import MissingFramesMask, build_visible
from model.metrics import recovery_error, visible_mse
from model.procedural import waves
from model.video_frames import read_video, to_tensor_scale

FLAG = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos" / "flag.avi"


def training_clip(size: int, frames: int) -> tuple[str, np.ndarray]:
    """The shared flag clip where present, else a procedural texture: (T, S, S, 3) uint8."""
    if FLAG.is_file():
        return "flag.avi", read_video(FLAG, image_size=size, frames=frames)
    return "procedural waves", waves(frames, size)


def run(
    config: TrainConfig, clip: np.ndarray, visible: np.ndarray | None, seed: int
) -> dict[str, float]:
    """Train once; the averaged reconstruction's visible MSE (and recovery error with a mask)."""
    truth = to_tensor_scale(clip)[None]  # (1, T, 3, S, S)
    mask = None if visible is None else torch.from_numpy(visible[None, :, None])
    learner = ABPTTLearner(config, torch.from_numpy(truth), mask, seed=seed)
    began = time.perf_counter()
    learner.fit()
    rec = learner.averaged_reconstruction().numpy()
    weight = None if visible is None else visible[None, :, None]
    out = {"mse": visible_mse(truth, rec, weight), "seconds": time.perf_counter() - began}
    if weight is not None:
        out["recovery"] = recovery_error(truth, rec, weight)
    return out


def main() -> None:
    """Print mean and spread over seeds for fp32 and bf16, complete and masked data."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()
    name, clip = training_clip(args.size, 60)
    visible = build_visible(
        MissingFramesMask(frames=list(range(1, 60, 3))), frames=60, image_size=args.size
    )
    print(
        f"{name}, {args.size}x{args.size}, 60 frames, {args.epochs} epochs, "
        f"seeds 0..{args.seeds - 1}\n"
    )
    print("| data | precision | visible MSE | recovery error (0..255) | s / run |")
    print("| --- | --- | --- | --- | --- |")
    for label, mask, sigma in (
        ("complete", None, 1.0),
        ("a third of frames missing", visible, 0.5),
    ):
        for precision in ("fp32", "bf16"):
            config = TrainConfig(
                image_size=args.size,  # type: ignore[arg-type]
                epochs=args.epochs,
                sigma=sigma,
                precision=precision,  # type: ignore[arg-type]
            )
            runs = [run(config, clip, mask, seed) for seed in range(args.seeds)]
            mse = np.array([r["mse"] for r in runs])
            rec = np.array([r.get("recovery", np.nan) for r in runs])
            seconds = np.mean([r["seconds"] for r in runs])
            rec_text = "-" if mask is None else f"{rec.mean():.2f} ± {rec.std():.2f}"
            print(
                f"| {label} | {precision} | {mse.mean():.5f} ± {mse.std():.5f} | "
                f"{rec_text} | {seconds:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
