"""Animation of three stills by one model: a frame of its clip past the training frames, the
same frame shifted and recoloured, and a frame of another clip of the same kind of texture.
Prints each one's first-frame PSNR against the still (and a fresh synthesis's, for scale)
and the motion ratio of its videos against the training clip, and writes a picture (each
row: the still, then frames of its first video). Run as
`python -m benchmarks.animation MODEL CLIP --frame 200 --other OTHER --other-frame 50
--picture docs/animation.png`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from model.animate import Animator, first_frame_psnr
from model.animate_config import AnimateConfig
from model.checkpoint import load_checkpoint
from model.config import SynthesisConfig
from model.quality import motion_ratio
from model.sampler import sample_chunks
from model.stills import read_video_frame
from model.video_frames import read_clips, to_uint8
from model.video_writers import write_grid


def shifted_and_recoloured(image: np.ndarray) -> np.ndarray:
    """Two pixels to the right (the edge repeated), red down a tenth and blue up a sixth."""
    moved = np.concatenate([image[:, :1].repeat(2, axis=1), image[:, :-2]], axis=1)
    scaled = moved.astype(np.float64) * np.array([0.9, 1.0, 1.15])
    return np.clip(scaled, 0, 255).round().astype(np.uint8)


def animate(ckpt: object, image: np.ndarray, config: AnimateConfig) -> np.ndarray:
    """Videos (V, F, S, S, 3) uint8 that start at the image."""
    animator = Animator(ckpt, config)  # type: ignore[arg-type]
    chunks = animator.chunks(animator.fit(image))
    return np.concatenate([to_uint8(c.numpy()) for c in chunks], axis=1)


def main() -> None:
    """Print the report as JSON and write the picture."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", type=Path)
    parser.add_argument("clip", type=Path)
    parser.add_argument("--frame", type=int, required=True, help="a frame of CLIP not trained on")
    parser.add_argument("--other", type=Path, required=True, help="a clip of the same texture")
    parser.add_argument("--other-frame", type=int, default=0)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--picture", type=Path, required=True)
    args = parser.parse_args()
    torch.manual_seed(0)
    ckpt = load_checkpoint(args.model)
    size, resize = ckpt.config.image_size, ckpt.config.resize
    still = read_video_frame(args.clip, args.frame, size, resize)
    stills = {
        "unseen frame": still,
        "shifted, recoloured": shifted_and_recoloured(still),
        "other clip": read_video_frame(args.other, args.other_frame, size, resize),
    }
    clip = read_clips([args.clip], ckpt.config)[0]
    fresh = np.concatenate(
        [to_uint8(c.numpy()) for c in sample_chunks(ckpt, SynthesisConfig(num_videos=4))], axis=1
    )
    config = AnimateConfig(frames=args.frames, num_videos=2)
    report, rows = {}, []
    for name, image in stills.items():
        videos = animate(ckpt, image, config)
        report[name] = {
            "first_frame_psnr": first_frame_psnr(image, videos[0, 0]),
            "fresh_sample_first_frame_psnr": max(first_frame_psnr(image, v[0]) for v in fresh),
            "motion_ratio": motion_ratio(videos, clip),
        }
        picks = np.linspace(0, args.frames - 1, 9).round().astype(int)
        rows.append(np.concatenate([image[None], videos[0, picks]]))
    write_grid(args.picture, np.stack(rows), columns=10)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
