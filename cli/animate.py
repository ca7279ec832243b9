"""`dyngen animate` (a still image brought to life) and `dyngen inpaint` (an object removed)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from cli.offline import (
    RECOVERY_SUMMARY,
    build_mask,
    build_train_config,
    fail_cleanly,
    mask_options,
    print_summary,
    run_options,
    run_training,
    train_options,
)


@click.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("image", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--frames", default=120, show_default=True, type=int, help="length, the image first")
@click.option("--num-videos", default=1, show_default=True, type=int)
@click.option(
    "--frame",
    "frame_index",
    type=int,
    help="IMAGE is a video: animate this frame of it (0-based)",
)
@click.option("--fps", default=25.0, show_default=True, type=float)
@click.option("--format", "formats", default="mp4", show_default=True, help="mp4, gif or mp4,gif")
@click.option("--steps", default=300, show_default=True, type=int, help="fitting steps per restart")
@click.option("--restarts", default=4, show_default=True, type=int, help="fits from prior draws")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"])
)
@fail_cleanly
def animate(
    checkpoint: Path,
    image: Path,
    out: Path,
    frame_index: int | None,
    formats: str,
    device: str,
    **options: Any,
) -> None:
    """Make videos from a trained CHECKPOINT that start at IMAGE (PNG, JPEG, WebP) and move
    like the model's clip: the latents of the first frame are fitted to the image first."""
    from tqdm import tqdm

    from model.animate import animate_image, load_animatable
    from model.animate_config import AnimateConfig

    config = AnimateConfig.model_validate(
        options | {"formats": [f.strip() for f in formats.split(",") if f.strip()]}
    )
    model_config = load_animatable(checkpoint, "cpu").config
    still = _read_image(image, frame_index, model_config.image_size, model_config.resize)
    total = config.num_videos * config.frames
    with tqdm(total=total, unit="frame", file=sys.stderr, dynamic_ncols=True) as bar:
        bar.set_description_str("fitting the first frame")

        def progress(done: int, frames_per_video: int) -> None:
            bar.set_description_str("", refresh=False)
            bar.n = done * config.num_videos
            bar.refresh()

        result = animate_image(checkpoint, still, config, out, device=device, on_progress=progress)
    print_summary(result, ("first_frame_psnr", "fit_seconds", "mean_frame_difference"))


def _read_image(path: Path, frame_index: int | None, size: int, resize: str) -> Any:
    """The image (or a video's frame) squared and resized like the model's training frames."""
    from model.stills import read_still, read_video_frame

    if frame_index is not None:
        return read_video_frame(path, frame_index, size, resize)
    return read_still(path, size, resize)


@click.command()
@click.argument("video", type=click.Path(path_type=Path))
@click.option(
    "--boxes",
    "boxes_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON list, one [x, y, w, h] (fractions) or null per frame of the whole clip",
)
@run_options
@mask_options
@train_options
@fail_cleanly
def inpaint(
    video: Path,
    out: Path,
    seed: int,
    device: str,
    resume: bool,
    resume_every: int,
    mask_file: Path | None,
    missing_frames: str | None,
    boxes: tuple[str, ...],
    boxes_file: Path | None,
    **options: Any,
) -> None:
    """Remove a moving object from VIDEO: its pixels (--mask, white / 1 = the object; a mask
    of the whole clip, whatever part is trained on) are filled by a model of the rest.

    Writes what `recover` writes (recovered.mp4 is the cleaned clip) plus side_by_side.mp4
    (original | cleaned) and inpainting.png. Unless set: the whole clip (up to 300 frames),
    stretched to a square like the authors' masks, 100 epochs, and recover's defaults.
    """
    from model.inpaint import boxes_to_mask, side_by_side, with_inpaint_defaults

    if boxes_file is not None:
        if mask_file is not None:
            raise click.ClickException("give one of --mask or --boxes")
        config = build_train_config(dict(options), masked=True)
        mask_file = boxes_to_mask(boxes_file, config.image_size, out)
    mask = build_mask(mask_file, missing_frames, boxes)
    if mask is None:
        raise click.ClickException("inpaint needs a mask of the object: --mask, --boxes or --box")
    config = with_inpaint_defaults(build_train_config(options, masked=True), video)
    result = run_training(config, [video], out, mask, seed, device, resume, resume_every)
    recovered = next(f.path for f in result.files if f.kind == "recovered_video")
    result.files += side_by_side(video, recovered, config, out)
    print_summary(result, RECOVERY_SUMMARY)


def register(group: click.Group) -> None:
    """Add the commands to the `dyngen` group."""
    group.add_command(animate)
    group.add_command(inpaint)
