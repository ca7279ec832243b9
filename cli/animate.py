"""`dyngen animate` (a still image brought to life) and `dyngen inpaint` (an object removed)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from cli.offline import fail_cleanly, print_summary


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

    from model.animate import AnimateConfig, animate_image, load_animatable

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


def register(group: click.Group) -> None:
    """Add the commands to the `dyngen` group."""
    group.add_command(animate)
