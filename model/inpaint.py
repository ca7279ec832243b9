"""Background inpainting: a moving object's pixels treated as missing and filled by the model
learned from the rest of the clip (a masked training run), shown beside the original."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.config import TrainConfig
from model.inpaint_config import MAX_DEFAULT_FRAMES, inpaint_config
from model.outputs import OutputFile, TrainResult, describe
from model.training_data import fit_to_videos, frame_count
from model.video_frames import read_clips, read_video
from model.video_writers import write_grid, write_video


def with_inpaint_defaults(config: TrainConfig, video: Path) -> TrainConfig:
    """inpaint_config for the clip in `video` (its frames counted as far as the defaults use)."""
    available = frame_count(video, MAX_DEFAULT_FRAMES * config.every + config.start)
    return inpaint_config(config, available)


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
    from model.video_decode import stream_info

    return stream_info(path).fps or 25.0


def add_side_by_side(
    result: TrainResult, config: TrainConfig, videos: list[Path], out: Path
) -> None:
    """Add the side-by-side video and grid of a masked run's first video to its files."""
    recovered = [f.path for f in result.files if f.kind == "recovered_video"]
    if recovered:
        result.files += side_by_side(videos[0], recovered[0], fit_to_videos(config, videos), out)


def boxes_to_mask(boxes_file: Path, size: int, out: Path) -> Path:
    """A JSON list with one box per frame of the clip ([x, y, width, height] in fractions of
    the frame, or null where the object is absent) written as a (T, S, S) .npy mask of the
    whole clip, which the run aligns like any other."""
    import json

    from model.errors import MaskError

    try:
        boxes = json.loads(Path(boxes_file).read_text())
    except (OSError, ValueError) as err:
        raise MaskError(f"{boxes_file}: not a readable JSON list of boxes ({err})") from None
    if not isinstance(boxes, list) or not boxes:
        raise MaskError(f"{boxes_file}: expected a list with one box (or null) per frame")
    occluded = np.zeros((len(boxes), size, size), np.uint8)
    for t, box in enumerate(boxes):
        if box is None:
            continue
        if not (isinstance(box, list) and len(box) == 4 and all(_fraction(v) for v in box)):
            raise MaskError(f"{boxes_file}: frame {t}: expected [x, y, width, height] in 0..1")
        x, y, w, h = box
        x0, y0 = round(x * size), round(y * size)
        occluded[
            t, y0 : max(y0 + 1, round((y + h) * size)), x0 : max(x0 + 1, round((x + w) * size))
        ] = 1
    out.mkdir(parents=True, exist_ok=True)
    path = out / "boxes-mask.npy"
    np.save(path, occluded)
    return path


def _fraction(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1
