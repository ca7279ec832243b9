"""The picture of QUALITY.md: a clip above, two long syntheses of a model below.

python -m benchmarks.figure CHECKPOINT VIDEO OUT.png [--frames-multiple 4 --seed 0]
Ten frames evenly across each row: the clip's training frames, then each synthesis from
its first frame to its last (4x the training length by default).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from model.evaluation import read_clip, synthesize
from model.methods import load_model
from model.video_writers import write_grid

COLUMNS = 10


def evenly(video: np.ndarray, count: int = COLUMNS) -> np.ndarray:
    """`count` frames evenly spaced from first to last of (T, S, S, 3)."""
    picks = np.linspace(0, len(video) - 1, min(count, len(video))).round().astype(int)
    return video[picks]


def main() -> None:
    """Write the figure for one model and its clip."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("video", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--frames-multiple", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = load_model(args.checkpoint, "cpu")
    clip, _ = read_clip(args.video, model.config, 0)
    videos = synthesize(model, 2, args.frames_multiple * model.config.frames, args.seed, "cpu")
    rows = np.stack([evenly(clip), *(evenly(v) for v in videos)])
    write_grid(args.out, rows, columns=COLUMNS)
    print(f"wrote {args.out}: the clip, then 2 syntheses of {videos.shape[1]} frames")


if __name__ == "__main__":
    main()
