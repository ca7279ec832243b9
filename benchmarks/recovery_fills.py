"""The blend of the two interpolations alone (no model, no training) on a clip and a mask:
what the recovery blend gains before the model's fill is added. Run as
`python -m benchmarks.recovery_fills VIDEO MASK.mat --image-size 64`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from model.blend import blended_recovery, candidate_fills, fill_errors, holdout
from model.config import TrainConfig
from model.masks import FileMask, build_visible
from model.metrics import recovery_error, temporal_mean_fill
from model.video_decode import stream_info
from model.video_frames import read_clips, to_tensor_scale


def main() -> None:
    """Print each fill's recovery error and the blend's, as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("video", type=Path)
    parser.add_argument("mask", type=Path)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=70)
    parser.add_argument("--holdout", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = TrainConfig(image_size=args.image_size, frames=args.frames)
    clip = read_clips([args.video], config)[0]
    header = stream_info(args.video)
    visible = build_visible(
        FileMask(path=str(args.mask)),
        frames=config.frames,
        image_size=config.image_size,
        source_size=(header.width, header.height),
    )
    truth = to_tensor_scale(clip)[None]  # (1, T, 3, S, S)
    observed = np.where(visible[None, :, None], truth, 0.0)
    fills = candidate_fills(observed, visible[None], None)
    fills["temporal_mean"] = temporal_mean_fill(observed[0], visible[:, None])[None]
    held = holdout(visible, args.holdout, args.seed)[None]
    recovered, blend = blended_recovery(truth, None, visible[None], held)
    report = fill_errors(truth, fills, visible[None])
    report["blend"] = recovery_error(truth, recovered, visible[None, :, None])
    print(json.dumps({"recovery_error": report, "blend": blend.summary()}))


if __name__ == "__main__":
    main()
