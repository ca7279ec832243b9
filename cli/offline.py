"""Offline commands: train, recover, synthesize, demo. Same config and artifacts as the service."""

from __future__ import annotations

import copy
import functools
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from cli.options import OptionalInt, config_options, given_fields
from model.config import RESUME_EVERY, RESUME_FILE, SynthesisConfig

F = TypeVar("F", bound=Callable[..., Any])

# the flags' names before they were the config's field names: still taken, not shown
TRAIN_ALIASES = {
    "--lr": "learning_rate",
    "--delta": "langevin_delta",
    "--components": "lds_components",  # `dyngen lds --components`
}
SYNTHESIS_ALIASES = {"--format": "formats"}


def fail_cleanly(func: F) -> F:
    """Turn bad-input errors into one line on stderr and exit status 1, never a traceback."""
    from model.errors import DyngenError

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValidationError as err:
            raise click.ClickException(describe_validation(err)) from None
        except DyngenError as err:
            raise click.ClickException(str(err)) from None
        except (OSError, ValueError) as err:
            raise click.ClickException(str(err)) from None

    return wrapper  # type: ignore[return-value]


def describe_validation(err: ValidationError) -> str:
    """'frames: Input should be greater than or equal to 2; ...' from a pydantic error."""
    parts = []
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"]) or "config"
        parts.append(f"{where.replace('_', '-')}: {item['msg']}")
    return "invalid config: " + "; ".join(parts)


def train_options(func: F) -> F:
    """One option per TrainConfig field (cli/options.py), plus --config FILE."""
    from model.config import TrainConfig

    func = config_options(TrainConfig, TRAIN_ALIASES)(func)
    func = click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="JSON file of config fields (the API's `config` object); flags override it",
    )(func)
    return func


def build_train_config(options: dict[str, Any], masked: bool = False) -> Any:
    """TrainConfig from --config, then the flags given, then a masked run's defaults."""
    from model.config import TrainConfig, run_fields

    fields: dict[str, Any] = {}
    config_file = options.pop("config_file", None)
    if config_file is not None:
        try:
            fields = json.loads(Path(config_file).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise click.ClickException(
                f"{config_file}: not a readable JSON config ({err})"
            ) from None
    fields |= given_fields(TrainConfig, options)
    return TrainConfig.model_validate(run_fields(fields, masked=masked))


def mask_options(func: F) -> F:
    """--mask FILE, --missing-frames LIST, --box x,y,w,h."""
    func = click.option(
        "--box",
        "boxes",
        multiple=True,
        metavar="X,Y,W,H[@FRAMES]",
        help="occluded rectangle in fractions of the frame (repeatable); on every trained frame,"
        " or with @FRAMES on those frames of the clip (numbered over the whole clip, e.g."
        " @10-40,52, taken with --start and --every like a mask file)",
    )(func)
    func = click.option(
        "--missing-frames",
        metavar="LIST",
        help="occluded frames of the clip, e.g. 0-9,20,30-34 (numbered from 0 over the"
        " whole clip, taken with --start and --every, like --box frames)",
    )(func)
    func = click.option(
        "--mask",
        "mask_file",
        type=click.Path(path_type=Path),
        help=".mat (paper's layout), .npy (T x H x W) or a mask video; 1 / white = missing",
    )(func)
    return func


def build_mask(mask_file: Path | None, missing_frames: str | None, boxes: tuple[str, ...]) -> Any:
    """At most one mask from the mask options, or None."""
    from model.masks import Box, FileMask, MissingFramesMask, RegionsMask, parse_frame_list

    given = sum(x is not None and x != () for x in (mask_file, missing_frames, boxes))
    if given > 1:
        raise click.ClickException("give one of --mask, --missing-frames or --box")
    if mask_file is not None:
        return FileMask(path=str(mask_file))
    if missing_frames is not None:
        return MissingFramesMask(frames=parse_frame_list(missing_frames))
    if boxes:
        return RegionsMask(boxes=[Box(**_box(b)) for b in boxes])
    return None


def _box(text: str) -> dict[str, Any]:
    """'0.1,0.2,0.3,0.3' -> x, y, width, height; '...@10-40,52' adds the clip's frames."""
    from model.masks import parse_frame_list

    corner, _, frames = text.partition("@")
    try:
        x, y, w, h = (float(v) for v in corner.split(","))
    except ValueError:
        raise click.ClickException(
            f"--box {text!r}: expected four numbers X,Y,W,H, then @FRAMES for some frames only"
        ) from None
    box: dict[str, Any] = {"x": x, "y": y, "width": w, "height": h}
    if frames:
        box["frames"] = parse_frame_list(frames)
    return box


class EpochBar:
    """A tqdm progress bar fed by the pipeline's epoch reports, drawn once training starts."""

    def __init__(self) -> None:
        self.bar: Any = None

    def start(self, total: int, before_first: str = "") -> None:
        """Draw the bar (after the input was read: errors come before any bar)."""
        from tqdm import tqdm

        # `before_first` names what runs before epoch 1 (the warm start), so the bar isn't
        # a silent 0/N meanwhile
        self.bar = tqdm(
            total=total,
            unit="epoch",
            dynamic_ncols=True,
            file=sys.stderr,
            desc=before_first or None,
        )

    def __call__(self, report: Any) -> None:
        if self.bar.desc:
            self.bar.set_description_str("", refresh=False)
        self._time_from(report)
        self.bar.n = report.epoch
        self.bar.set_postfix(loss=f"{report.loss:.4g}", psnr=f"{report.psnr:.2f}dB", refresh=False)
        self.bar.refresh()

    def _time_from(self, report: Any) -> None:
        """Rate and ETA from the epochs this process ran, timed as the pipeline timed them."""
        # tqdm's rate is (n - initial) / elapsed: resumed epochs go in `initial`, not in the
        # rate, and the warm start (or the resume load) is not an epoch's time
        self.bar.initial = report.first_epoch
        self.bar.start_t = self.bar._time() - report.elapsed

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class StopOnInterrupt:
    """Ctrl-C asks the run to stop after the current epoch (a second one aborts)."""

    def __init__(self) -> None:
        self.requested = False

    def __enter__(self) -> StopOnInterrupt:
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        click.echo("\nstopping after this epoch (Ctrl-C again to abort)", err=True)

    def __call__(self) -> bool:
        return self.requested


def run_training(
    config: Any,
    videos: list[Path],
    out: Path,
    mask: Any,
    seed: int,
    device: str,
    resume: bool,
    resume_every: int,
) -> Any:
    """Train with a progress bar; Ctrl-C saves resume state and exits 130."""
    check_videos(videos)  # a missing or non-video file fails now, before torch loads
    from model.abptt import warms_up
    from model.errors import Cancelled
    from model.training import train_model

    resume_path = out / RESUME_FILE
    if not resume and resume_path.exists():
        resume_path.unlink()  # a new run must not continue an old one
    bar = EpochBar()

    def start(fitted: Any, warnings: list[str]) -> None:
        for note in warnings:
            click.echo(f"warning: {note}", err=True)
        bar.start(fitted.epochs, "PCA warm start" if warms_up(fitted, resume_path) else "")

    try:
        with StopOnInterrupt() as stop:
            result = train_model(
                config,
                videos,
                out,
                mask=mask,
                seed=seed,
                device=device,
                on_epoch=bar,
                should_stop=stop,
                resume_path=resume_path,
                resume_every=resume_every,
                on_start=start,
            )
    except Cancelled as err:
        bar.close()
        click.echo(
            f"{err}; resume state in {resume_path}; rerun with --resume to continue", err=True
        )
        sys.exit(130)
    finally:
        bar.close()
    return result


def check_videos(videos: list[Path]) -> None:
    """Refuse a missing, empty or non-video file from its header alone, in a split second."""
    from model.video_decode import stream_info

    for video in videos:
        stream_info(Path(video))


# the shipped fill (the blend) beside the model alone and the baselines it is measured against
RECOVERY_SUMMARY = (
    "recovery_error",
    "recovery_error_model",
    "recovery_error_interpolation",
    "recovery_error_temporal_mean",
    "psnr",
)


def print_summary(result: Any, keys: tuple[str, ...]) -> None:
    """The headline metrics and where the files went."""
    shown = ", ".join(
        f"{k} {result.metrics[k]:.4g}" for k in keys if isinstance(result.metrics.get(k), float)
    )
    click.echo(shown)
    for item in result.files:
        click.echo(f"  {item.kind:22s} {item.path}")


def print_motion(metrics: dict[str, Any]) -> None:
    """One line from the quality report: whether the syntheses move like the clip."""
    quality = metrics.get("quality")
    if not isinstance(quality, dict) or not isinstance(quality.get("motion_ratio"), float):
        return
    click.echo(
        f"syntheses of {quality['frames']} frames: motion ratio {quality['motion_ratio']:.2f} "
        "(1 = as much motion as the clip, 0 = still); full report: quality in metrics.json"
    )


common_run_options = [
    click.option(
        "--out",
        required=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="directory for the checkpoint and reports",
    ),
    click.option("--seed", default=0, show_default=True, type=int, help="random seed"),
    click.option(
        "--device",
        default="auto",
        show_default=True,
        type=click.Choice(["auto", "cpu", "cuda"]),
        help="where to train",
    ),
    click.option("--resume", is_flag=True, help=f"continue from OUT/{RESUME_FILE}"),
    click.option(
        "--resume-every",
        default=RESUME_EVERY,
        show_default=True,
        type=click.IntRange(1),
        help="save resume state every n epochs",
    ),
]


def run_options(func: F) -> F:
    """--out, --seed, --device, --resume, --resume-every."""
    for option in reversed(common_run_options):
        func = option(func)
    return func


@click.command()
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=Path))
@run_options
@mask_options
@train_options
@fail_cleanly
def train(
    videos: tuple[Path, ...],
    out: Path,
    seed: int,
    device: str,
    resume: bool,
    resume_every: int,
    mask_file: Path | None,
    missing_frames: str | None,
    boxes: tuple[str, ...],
    **options: Any,
) -> None:
    """Train a dynamic generator on VIDEO(s) and write the checkpoint and reports to --out.

    Several videos of one action share the model; give them --content-dim (e.g. 100)
    and a small --state-dim (e.g. 3), as in the paper's action patterns.
    """
    mask = build_mask(mask_file, missing_frames, boxes)
    config = build_train_config(options, masked=mask is not None)
    result = run_training(config, list(videos), out, mask, seed, device, resume, resume_every)
    print_summary(result, ("psnr", "reconstruction_motion_ratio", "visible_mse", "recovery_error"))
    print_motion(result.metrics)
    choice = result.metrics.get("choice")
    if isinstance(choice, dict):
        click.echo(f"method auto: {choice['why']}")


@click.command()
@click.argument("video", type=click.Path(path_type=Path))
@run_options
@mask_options
@train_options
@fail_cleanly
def recover(
    video: Path,
    out: Path,
    seed: int,
    device: str,
    resume: bool,
    resume_every: int,
    mask_file: Path | None,
    missing_frames: str | None,
    boxes: tuple[str, ...],
    **options: Any,
) -> None:
    """Train on the visible pixels of VIDEO and write the recovered video (occluded pixels filled).

    Unless set, sigma 0.5 (the authors' recovery value), 5 Langevin steps, 3 parameter
    steps, chunks of 70 frames and --fill-warmup 1 (QUALITY.md); --preset faithful keeps
    only the sigma.
    """
    mask = build_mask(mask_file, missing_frames, boxes)
    if mask is None:
        raise click.ClickException("recover needs a mask: --mask FILE, --missing-frames or --box")
    config = build_train_config(options, masked=True)
    result = run_training(config, [video], out, mask, seed, device, resume, resume_every)
    print_summary(result, RECOVERY_SUMMARY)


@click.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"])
)
@config_options(SynthesisConfig, SYNTHESIS_ALIASES, {"content": OptionalInt("fresh")})
@fail_cleanly
def synthesize(checkpoint: Path, out: Path, seed: int, device: str, **options: Any) -> None:
    """Generate new videos of any length from a trained CHECKPOINT."""
    from tqdm import tqdm

    from model.synthesis import synthesize_videos

    config = SynthesisConfig.model_validate(given_fields(SynthesisConfig, options))
    # frames of all the videos, as the summary's frames_per_second counts them
    total = config.num_videos * config.frames
    with tqdm(total=total, unit="frame", file=sys.stderr, dynamic_ncols=True) as bar:

        def progress(done: int, frames_per_video: int) -> None:
            bar.n = done * config.num_videos
            bar.refresh()

        result = synthesize_videos(
            checkpoint, config, out, seed=seed, device=device, on_progress=progress
        )
        # the last line's rate is the summary's: the same frames over the same seconds
        seconds = result.metrics["seconds"]
        assert isinstance(seconds, float)
        bar.start_t = bar._time() - seconds
        bar.n = total
        bar.refresh()
    print_summary(result, ("frames_per_second", "mean_frame_difference"))


@click.command("add-residual")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="where to write the model with its residual process",
)
@click.option("--components", default=20, show_default=True, type=click.IntRange(1, 1024))
@click.option(
    "--device", default="cpu", show_default=True, type=click.Choice(["auto", "cpu", "cuda"])
)
@fail_cleanly
def add_residual_command(
    checkpoint: Path, videos: tuple[Path, ...], out: Path, components: int, device: str
) -> None:
    """Fit the residual process (`--residual lds`) to a trained CHECKPOINT's VIDEO(s).

    The same weights, plus an LDS of what the generator leaves out of the clip, fitted in
    seconds; the checkpoint needs its inferred chains (saved in it, or in the run's
    resume.safetensors beside it).
    """
    from model.add_residual import add_residual

    facts = add_residual(checkpoint, list(videos), out, components, device)
    click.echo(
        f"residual process of {facts['components']} components fitted in {facts['seconds']} s "
        f"(reconstruction motion ratio {facts['reconstruction_motion_ratio']:.3g}); wrote {out}"
    )


@click.command()
@click.option(
    "--out", default="demo-out", show_default=True, type=click.Path(file_okay=False, path_type=Path)
)
@click.option("--epochs", default=60, show_default=True, type=int)
@click.option(
    "--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"])
)
@fail_cleanly
def demo(out: Path, epochs: int, device: str) -> None:
    """Train on a procedural texture for a minute, then synthesize from it (no data needed)."""
    from model.config import SynthesisConfig, TrainConfig
    from model.procedural import waves
    from model.synthesis import synthesize_videos
    from model.video_writers import write_video

    clip = out / "waves.mp4"
    write_video(clip, iter(waves(48, 32)), 25)
    config = TrainConfig(
        image_size=32,
        frames=48,
        chunk_length=16,
        epochs=epochs,
        base_channels=16,
        state_dim=20,
        noise_dim=20,
    )
    click.echo(f"training on {clip} (a procedural texture)", err=True)
    result = run_training(config, [clip], out, None, 0, device, False, RESUME_EVERY)
    print_summary(result, ("psnr",))
    synthesis = synthesize_videos(
        result.checkpoint,
        SynthesisConfig(frames=192, formats=("mp4", "gif")),
        out / "synthesis",
        device=device,
    )
    print_summary(synthesis, ("frames_per_second",))


@click.command("sample-clip")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--frames", default=300, show_default=True, type=click.IntRange(2, 10_000))
@click.option("--size", default=64, show_default=True, type=click.IntRange(16, 1024))
@click.option("--fps", default=25.0, show_default=True, type=click.FloatRange(1, 240))
@click.option("--seed", default=0, show_default=True, type=int, help="which texture")
@fail_cleanly
def sample_clip(out: Path, frames: int, size: int, fps: float, seed: int) -> None:
    """Write a procedural clip to OUT (.mp4 or .gif) to try the commands on: coloured waves
    travelling under a circling bright blob, made by code (no data needed)."""
    from model.procedural import wave_frames
    from model.video_writers import write_video

    if out.suffix.lower() not in (".mp4", ".gif"):
        raise click.ClickException(f"{out}: the sample clip is written as .mp4 or .gif")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_video(out, wave_frames(frames, size, seed=seed), fps)
    click.echo(f"wrote {out}: {frames} frames of {size}x{size} at {fps:g} fps", err=True)


def method_alias(command: click.Command, name: str, method: str) -> click.Command:
    """`command` under another name, its --method defaulting to `method` (`dyngen lds`)."""
    alias = copy.copy(command)
    alias.name = name
    alias.help = f"The same as `dyngen {command.name} --method {method}`."
    alias.short_help = f"dyngen {command.name} --method {method}"
    alias.params = []
    for param in command.params:
        if param.name == "method":
            param = copy.copy(param)
            param.default = method
        alias.params.append(param)
    return alias


def register(group: click.Group) -> None:
    """Add the offline commands to the `dyngen` group."""
    for command in (train, recover, synthesize, demo, sample_clip, add_residual_command):
        group.add_command(command)
    group.add_command(method_alias(train, "lds", "lds"))  # the LDS baseline's old command
