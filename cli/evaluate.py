"""`dyngen evaluate` (the quality report of a model) and `dyngen lds` (the LDS baseline)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Protocol

import click
import numpy as np

from cli.offline import fail_cleanly

ROWS = [
    ("appearance", "appearance distance (patch SW)"),
    ("dynamics", "dynamics distance (diff-patch SW)"),
    ("motion_ratio", "motion ratio (1 = clip's motion)"),
    ("novelty", "novelty (0 = copy of the clip)"),
    ("drift", "drift (last / first quarter, 1 = none)"),
    ("frames", "frames per video"),
]


class ClipSettings(Protocol):
    """How a model read its training clip: TrainConfig and LDSConfig both have these."""

    @property
    def image_size(self) -> int: ...
    @property
    def frames(self) -> int: ...
    @property
    def start(self) -> int: ...
    @property
    def every(self) -> int: ...
    @property
    def resize(self) -> str: ...


def model_format(path: Path) -> str:
    """The `format` in a safetensors file's metadata; CheckpointError when it has none."""
    from safetensors import SafetensorError, safe_open

    from model.checkpoint import CHECKPOINT_FORMAT
    from model.errors import CheckpointError
    from model.lds import LDS_FORMAT

    if not Path(path).is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="np") as handle:
            found = (handle.metadata() or {}).get("format", "")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a dyngen checkpoint or LDS file ({err})") from None
    if found not in (CHECKPOINT_FORMAT, LDS_FORMAT):
        raise CheckpointError(f"{path}: not a dyngen checkpoint or LDS file")
    return found


def read_clip(
    video: Path, settings: ClipSettings, held_out_max: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """The training clip as training read it, and up to `held_out_max` frames after it."""
    from model.errors import VideoError
    from model.video_io import probe_video, read_video, stream_info

    last = settings.start + settings.every * (settings.frames - 1)  # last training frame

    def read(extra: int) -> np.ndarray:
        return read_video(
            Path(video),
            image_size=settings.image_size,
            frames=settings.frames + extra,
            start=settings.start,
            every=settings.every,
            resize=settings.resize,
        )

    def extra_for(count: int) -> int:
        return max(0, min(held_out_max, (count - 1 - last) // settings.every))

    declared = stream_info(Path(video)).frames
    try:
        frames = read(extra_for(declared))
    except VideoError:
        # the header miscounted (or had no count); decode once to learn the true length
        frames = read(extra_for(probe_video(Path(video)).frames))
    clip, rest = frames[: settings.frames], frames[settings.frames :]
    return clip, (rest if len(rest) else None)


def load_model(path: Path, device: str) -> Any:
    """A Checkpoint or an LDSModel, by the file's format; both carry the clip settings."""
    from model.checkpoint import load_checkpoint
    from model.lds import LDS_FORMAT, load_lds
    from model.pipeline import resolve_device

    if model_format(path) == LDS_FORMAT:
        return load_lds(path)
    return load_checkpoint(path, resolve_device(device))


def synthesize(model: Any, num_videos: int, frames: int, seed: int, device: str) -> np.ndarray:
    """uint8 (V, F, S, S, 3) syntheses from a loaded Checkpoint or LDSModel."""
    from model.config import SynthesisConfig
    from model.lds import LDSModel, sample_lds
    from model.pipeline import resolve_device
    from model.sampler import sample_chunks
    from model.video_io import to_uint8

    if isinstance(model, LDSModel):
        return sample_lds(model, num_videos, frames, seed=seed)
    config = SynthesisConfig(num_videos=num_videos, frames=frames)
    target = resolve_device(device)
    chunks = sample_chunks(model, config, seed=seed, device=target)  # (V, L, 3, S, S) each
    return np.concatenate([to_uint8(c.cpu().numpy()) for c in chunks], axis=1)


def evaluate_model(
    path: Path, video: Path, multiple: int, num_videos: int, seed: int, device: str = "cpu"
) -> dict[str, Any]:
    """Synthesize `multiple` times the training length and score it against VIDEO's clip."""
    from model.quality import quality_report

    if multiple < 1 or num_videos < 1:
        raise ValueError("--frames-multiple and --num-videos must be at least 1")
    model = load_model(path, device)
    settings: ClipSettings = model.config
    clip, held_out = read_clip(video, settings, multiple * settings.frames)
    videos = synthesize(model, num_videos, multiple * settings.frames, seed, device)
    return quality_report(videos, clip, held_out, seed=seed)


def format_table(report: dict[str, Any]) -> str:
    """The report as rows of numbers: synthesized, held-back frames, frozen frame."""
    columns = [("synthesized", report), ("held-out clip", report.get("reference_held_out"))]
    columns.append(("frozen frame", report.get("reference_frozen")))
    lines = [f"{'':40s}" + "".join(f"{name:>15s}" for name, _ in columns)]
    for key, label in ROWS:
        cells = "".join(f"{_cell(part, key):>15s}" for _, part in columns)
        lines.append(f"{label:40s}{cells}")
    lines.append(
        f"noise floor: appearance {report['appearance_floor']:.4g}, "
        f"dynamics {report['dynamics_floor']:.4g} (two draws of the clip's own patches)"
    )
    return "\n".join(lines)


def _cell(part: dict[str, Any] | None, key: str) -> str:
    """One number of the table; '-' where the reference or value is absent."""
    value = None if part is None else part.get(key)
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def _clean(value: Any) -> Any:
    """Infinities and NaN as null, recursively, so the JSON is strict."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


@click.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("video", type=click.Path(path_type=Path))
@click.option("--frames-multiple", default=4, show_default=True, type=int, help="synthesis length")
@click.option("--num-videos", default=2, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--device", default="cpu", show_default=True, type=click.Choice(["auto", "cpu", "cuda"])
)
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@fail_cleanly
def evaluate(
    checkpoint: Path,
    video: Path,
    frames_multiple: int,
    num_videos: int,
    seed: int,
    device: str,
    as_json: bool,
) -> None:
    """Score syntheses of CHECKPOINT (a model or an LDS file) against its training VIDEO.

    The syntheses are --frames-multiple times the training length; the clip's frames after
    the training range (when VIDEO has them) and its first frame frozen are scored beside
    them as references.
    """
    report = evaluate_model(checkpoint, video, frames_multiple, num_videos, seed, device)
    click.echo(json.dumps(_clean(report), indent=2) if as_json else format_table(report))


@click.command()
@click.argument("video", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--image-size",
    default="32",
    show_default=True,
    type=click.Choice(["16", "32", "64", "128", "256"]),
)
@click.option("--frames", default=60, show_default=True, type=int, help="training frames")
@click.option("--start", default=0, show_default=True, type=int, help="first frame taken")
@click.option("--every", default=1, show_default=True, type=int, help="keep every n-th frame")
@click.option("--resize", default="crop", show_default=True, type=click.Choice(["crop", "stretch"]))
@click.option("--components", default=30, show_default=True, type=int, help="PCA components")
@click.option("--frames-out", default=None, type=int, help="frames per sample [4 x --frames]")
@click.option("--num-videos", default=2, show_default=True, type=int)
@click.option("--fps", default=25.0, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int)
@fail_cleanly
def lds(
    video: Path,
    out: Path,
    image_size: str,
    frames_out: int | None,
    num_videos: int,
    fps: float,
    seed: int,
    **fields: Any,
) -> None:
    """Fit the linear dynamical system baseline (Doretto et al. 2003) to VIDEO in seconds.

    Writes OUT/lds.safetensors, OUT/video-N.mp4 and the quality report in OUT/metrics.json.
    """
    from model.lds import LDSConfig

    config = LDSConfig.model_validate(fields | {"image_size": int(image_size)})
    metrics = run_lds(video, out, config, frames_out or 4 * config.frames, num_videos, fps, seed)
    click.echo(format_table(metrics["report"]))
    click.echo(f"fitted in {metrics['fit_seconds']:.2f} s; files in {out}")


def run_lds(
    video: Path, out: Path, config: Any, frames_out: int, num_videos: int, fps: float, seed: int
) -> dict[str, Any]:
    """Fit, save, sample and score the LDS; returns what metrics.json holds."""
    from model.files import atomic_path
    from model.lds import fit_lds, sample_lds, save_lds
    from model.quality import quality_report
    from model.video_io import write_video

    clip, held_out = read_clip(video, config, frames_out)
    began = time.perf_counter()
    model = fit_lds(clip, config)
    seconds = time.perf_counter() - began
    out.mkdir(parents=True, exist_ok=True)
    save_lds(out / "lds.safetensors", model, {"seed": str(seed), "video": Path(video).name})
    videos = sample_lds(model, num_videos, frames_out, seed=seed)
    for index, frames in enumerate(videos):
        write_video(out / f"video-{index + 1}.mp4", iter(frames), fps)
    metrics = {
        "method": "lds",
        "components": model.components,
        "fit_seconds": round(seconds, 4),
        "config": config.model_dump(),
        "report": _clean(quality_report(videos, clip, held_out, seed=seed)),
    }
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def register(group: click.Group) -> None:
    """Add `evaluate` and `lds` to the `dyngen` group."""
    group.add_command(evaluate)
    group.add_command(lds)
