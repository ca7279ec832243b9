"""`python -m benchmarks.budget`: model/budget.py's memory estimate beside the measured peak RSS.

Each case runs the worker's own code path (`train_model` or `synthesize_videos`) in a fresh
Python process with one thread, which prints its peak resident set; the estimate is made
here from the same config. Admission control promises the estimate within 2x of the peak.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.budget import Estimate, SourceVideo, estimate_synthesis, estimate_train
from model.config import SynthesisConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024**2


@dataclass(frozen=True)
class Case:
    """A training run (and optionally a synthesis from its model) to measure."""

    name: str
    train: dict[str, Any]
    clip_side: int = 64
    clip_frames: int = 60
    masked: bool = False
    synthesis: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


CASES = [
    Case(
        "tiny train",
        {
            "image_size": 16,
            "base_channels": 4,
            "state_dim": 4,
            "noise_dim": 4,
            "epochs": 2,
            "langevin_steps": 2,
            "frames": 8,
            "chunk_length": 4,
        },
        clip_side=16,
        clip_frames=10,
    ),
    # activations dominate: one 240-frame chunk of 64x64 frames through the full generator
    Case(
        "64px, one 240-frame chunk (masked)",
        {
            "image_size": 64,
            "frames": 240,
            "chunk_length": 240,
            "epochs": 1,
            "langevin_steps": 0,
            "fill_warmup": 0.0,
        },
        clip_frames=240,
        masked=True,
    ),
    Case(
        "64px, one 120-frame chunk (masked)",
        {
            "image_size": 64,
            "frames": 120,
            "chunk_length": 120,
            "epochs": 1,
            "langevin_steps": 0,
            "fill_warmup": 0.0,
        },
        clip_frames=120,
        masked=True,
    ),
    Case(
        "64px, 3 videos x 60 frames, quality report",
        {"image_size": 64, "base_channels": 16, "epochs": 1, "langevin_steps": 1},
        clip_frames=300,
    ),
    Case(
        "synthesis 16 x 120 frames mp4 + gif",
        {
            "image_size": 32,
            "base_channels": 8,
            "state_dim": 8,
            "noise_dim": 8,
            "epochs": 1,
            "langevin_steps": 1,
            "frames": 20,
            "chunk_length": 10,
        },
        clip_side=32,
        clip_frames=20,
        synthesis={"num_videos": 16, "frames": 120, "formats": ["mp4", "gif"]},
    ),
]
VIDEOS = {"64px, 3 videos x 60 frames, quality report": 3}

CHILD = """
import json, resource, sys
from pathlib import Path
from model.config import SynthesisConfig, TrainConfig
from model.masks import MissingFramesMask
from model.training import train_model
from model.synthesis import synthesize_videos
spec = json.loads(sys.argv[1])
out = Path(spec["out"])
mask = MissingFramesMask(frames=[0]) if spec["masked"] else None
result = train_model(TrainConfig.model_validate(spec["train"]), [Path(v) for v in spec["videos"]],
                     out / "train", mask=mask, device="cpu")
if spec["synthesis"] is not None:
    synthesize_videos(result.checkpoint, SynthesisConfig.model_validate(spec["synthesis"]),
                      out / "synth", device="cpu")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def write_clip(path: Path, frames: int, side: int) -> Path:
    """A procedural clip: a drifting gradient with a moving square (H.264)."""
    import av
    import numpy as np

    y, x = np.mgrid[0:side, 0:side]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        for t in range(frames):
            frame = np.zeros((side, side, 3), np.uint8)
            frame[..., 0] = (x * 255 // side + t * 7) % 256
            frame[..., 1] = y * 255 // side
            cx = (t * 2) % (side - side // 4)
            frame[side // 4 : side // 2, cx : cx + side // 4] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def estimate(case: Case) -> Estimate:
    """The admission estimate of the case's job (the synthesis's, if it has one)."""
    config = TrainConfig.model_validate(case.train)
    if case.synthesis is not None:
        return estimate_synthesis(config, SynthesisConfig.model_validate(case.synthesis))
    videos = [SourceVideo(case.clip_frames, case.clip_side, case.clip_side)] * VIDEOS.get(
        case.name, 1
    )
    return estimate_train(config, videos, masked=case.masked)


def peak_rss(case: Case, workdir: Path) -> int:
    """Run the case in a fresh single-threaded process; its peak RSS in bytes."""
    clip = write_clip(workdir / "clip.mp4", case.clip_frames, case.clip_side)
    spec = {
        "out": str(workdir),
        "videos": [str(clip)] * VIDEOS.get(case.name, 1),
        "train": case.train,
        "masked": case.masked,
        "synthesis": case.synthesis,
    }
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(spec)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.strip().splitlines()[-1])


def measure(case: Case) -> tuple[int, int]:
    """(estimated, measured) peak memory of one case, in bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        return estimate(case).memory_bytes, peak_rss(case, Path(tmp))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="run the cases whose name contains this")
    args = parser.parse_args()
    print("| case | estimated MiB | measured peak RSS MiB | estimate / measured |")
    print("| --- | ---: | ---: | ---: |")
    for case in CASES:
        if args.only and args.only not in case.name:
            continue
        guess, peak = measure(case)
        print(f"| {case.name} | {guess / MIB:.0f} | {peak / MIB:.0f} | {guess / peak:.2f} |")


if __name__ == "__main__":
    main()
