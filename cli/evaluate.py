"""`dyngen evaluate`: the quality report of a model of any method."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cli.offline import fail_cleanly
from model.evaluation import evaluate_model
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


def register(group: click.Group) -> None:
    """Add `evaluate` to the `dyngen` group."""
    group.add_command(evaluate)
