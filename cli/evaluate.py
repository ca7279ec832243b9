"""`dyngen evaluate` (the quality report of a model) and `dyngen lds` (the LDS baseline)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from cli.offline import fail_cleanly
from model.evaluation import evaluate_model, read_clip
from model.outputs import json_safe
from model.quality import quality_warnings

ROWS = [
    ("appearance", "appearance distance (patch SW)"),
    ("dynamics", "dynamics distance (diff-patch SW)"),
    ("motion_ratio", "motion ratio (1 = clip's motion)"),
    ("novelty", "novelty (0 = copy of the clip)"),
    ("drift", "drift (last / first quarter, 1 = none)"),
    ("frames", "frames per video"),
]


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
    recon = report.get("reconstruction_motion_ratio")
    if "reconstruction_motion_ratio" in report:
        lines.append(
            "reconstruction motion ratio (the training clip as the model explains it): "
            + ("- (this checkpoint has no stored chains)" if recon is None else f"{recon:.4g}")
        )
    for note in quality_warnings(report, recon, bool(report.get("residual"))):
        lines.append(f"warning: {note}")
    if "dynamics_by_seed" in report:
        spread = " ".join(f"{value:.4g}" for value in report["dynamics_by_seed"])
        lines.append(f"means of {report['seeds']} seeds; dynamics by seed: {spread}")
    return "\n".join(lines)


def _cell(part: dict[str, Any] | None, key: str) -> str:
    """One number of the table; '-' where the reference or value is absent."""
    value = None if part is None else part.get(key)
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.4g}"


@click.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("video", type=click.Path(path_type=Path))
@click.option("--frames-multiple", default=4, show_default=True, type=int, help="synthesis length")
@click.option("--num-videos", default=2, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--seeds",
    default=1,
    show_default=True,
    type=int,
    help="average the reports of this many seeds (--seed, --seed + 1, ...); a report of few"
    " syntheses scatters between seeds, so compare models over several",
)
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
    seeds: int,
    device: str,
    as_json: bool,
) -> None:
    """Score syntheses of CHECKPOINT (a model or an LDS file) against its training VIDEO.

    The syntheses are --frames-multiple times the training length; the clip's frames after
    the training range (when VIDEO has them) and its first frame frozen are scored beside
    them as references.
    """
    report = evaluate_model(checkpoint, video, frames_multiple, num_videos, seed, device, seeds)
    click.echo(json.dumps(json_safe(report), indent=2) if as_json else format_table(report))


@click.command()
@click.argument("video", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--image-size",
    default="32",
    show_default=True,
    type=click.Choice(["16", "32", "64", "128", "256"]),
)
@click.option(
    "--frames", default=None, type=int, help="training frames  [default: 60, or a shorter clip's]"
)
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
    from model.pipeline import fit_to_videos

    given = {name: value for name, value in fields.items() if value is not None}
    config = LDSConfig.model_validate(given | {"image_size": int(image_size)})
    config = fit_to_videos(config, [video])  # the rule `train` follows for a short clip
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
        "report": json_safe(quality_report(videos, clip, held_out, seed=seed)),
    }
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def register(group: click.Group) -> None:
    """Add `evaluate` and `lds` to the `dyngen` group."""
    group.add_command(evaluate)
    group.add_command(lds)
