"""Background inpainting: a moving object's pixels treated as missing and filled by the model
learned from the rest of the clip (a masked training run), shown beside the original."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.config import TrainConfig
from model.outputs import OutputFile, describe
from model.pipeline import TrainResult, fit_to_videos, frame_count
from model.video_io import read_clips, read_video, write_grid, write_video

# What an inpainting run gets unless its config names the field (QUALITY.md, inpainting):
# whole frames stretched (the authors' masks are drawn on the stretched frame), the whole
# clip, 100 epochs (on chatelet the shipped fill was the same at 100 and 300 epochs: the
# blend chose interpolation at both; 300 took 3x as long); the recovery defaults
# (model/config.py: holdout 0.1, sigma 0.5, ...) apply beneath these.
INPAINT_DEFAULTS: dict[str, object] = {"resize": "stretch", "epochs": 100}
MAX_DEFAULT_FRAMES = 300  # an unset `frames` takes the whole clip up to this many


def with_inpaint_defaults(config: TrainConfig, video: Path) -> TrainConfig:
    """The config of an inpainting run: INPAINT_DEFAULTS where unset, and an unset `frames`
    the whole clip from `start`, every `every`-th frame (at most MAX_DEFAULT_FRAMES)."""
    update = {k: v for k, v in INPAINT_DEFAULTS.items() if k not in config.model_fields_set}
    if "frames" not in config.model_fields_set:
        available = frame_count(video, MAX_DEFAULT_FRAMES * config.every + config.start)
        usable = (available - config.start - 1) // config.every + 1
        update["frames"] = max(2, min(usable, MAX_DEFAULT_FRAMES))
    fields = config.model_dump(exclude_unset=True) | update
    return TrainConfig.model_validate(fields)


def side_by_side(video: Path, recovered: Path, config: TrainConfig, out: Path) -> list[OutputFile]:
    """`side_by_side.mp4` (original | cleaned) and `inpainting.png` (frames of both, down)."""
    original = read_clips([video], config)[0]  # (T, S, S, 3)
    cleaned = read_video(recovered, image_size=config.image_size, frames=len(original))
    gap = np.full((*original.shape[:2], 2, 3), 255, np.uint8)  # a white line between them
    both = np.concatenate([original, gap, cleaned], axis=2)
    fps = _fps(recovered)
    write_video(out / "side_by_side.mp4", iter(both), fps)
    write_grid(out / "inpainting.png", np.stack([original, cleaned]))
    return [
        describe("side_by_side_video", out / "side_by_side.mp4"),
        describe("inpainting_grid", out / "inpainting.png"),
    ]


def _fps(path: Path) -> float:
    from model.video_io import stream_info

    return stream_info(path).fps or 25.0


def add_side_by_side(
    result: TrainResult, config: TrainConfig, videos: list[Path], out: Path
) -> None:
    """Add the side-by-side video and grid of a masked run's first video to its files."""
    recovered = [f.path for f in result.files if f.kind == "recovered_video"]
    if recovered:
        result.files += side_by_side(videos[0], recovered[0], fit_to_videos(config, videos), out)
