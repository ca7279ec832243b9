"""Whole runs as the CLI and the worker use them: videos in, artifacts in a directory out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

import numpy as np
import torch

from model.blend import blended_recovery, candidate_fills, fill_errors, holdout
from model.calibration import calibrate_trained
from model.checkpoint import Checkpoint, load_resume, save_resume
from model.config import RESUME_EVERY, RESUME_FILE, TrainConfig
from model.device import resolve_device
from model.errors import Cancelled, DyngenError
from model.lds import LDSConfig, LDSModel, reconstruct_lds
from model.learner import ABPTTLearner, EpochStats
from model.masks import FileMask, MissingFramesMask, RegionsMask, build_visible
from model.methods import TrainedModel, method
from model.metrics import (
    psnr,
    recovery_error,
    temporal_mean_fill,
    visible_mse,
)
from model.outputs import OutputFile, describe, write_json
from model.plots import write_loss_curve
from model.quality import quality_warnings, reconstruction_motion_ratio
from model.residual import decode_chains, fit_residual
from model.video_io import (
    VideoInfo,
    probe_video,
    read_clips,
    stream_info,
    to_tensor_scale,
    to_uint8,
    write_grid,
    write_video,
)

log = logging.getLogger("dyngen")
REPORT_MULTIPLE = 4  # the quality report synthesizes 4x the training length
REPORT_VIDEOS = 2
Mask = MissingFramesMask | RegionsMask | FileMask


@dataclass(frozen=True)
class EpochReport:
    """Progress after one epoch, as callers show it."""

    epoch: int
    epochs: int
    loss: float
    mse: float
    psnr: float
    seconds: float
    elapsed: float  # since this process's first epoch began
    eta_seconds: float
    first_epoch: int = 0  # epochs done before this process began (resumed from)


@dataclass
class TrainResult:
    """What a training run wrote and measured."""

    checkpoint: Path
    files: list[OutputFile]
    metrics: dict[str, object]
    warnings: list[str] = field(default_factory=list)


@dataclass
class TrainingData:
    """The decoded clips of a run and their mask."""

    clips: np.ndarray  # (N, T, S, S, 3) uint8
    visible: np.ndarray | None  # (N, T, S, S) bool, True = observed
    fps: float
    validation: np.ndarray | None = None  # (N, T, S, S) bool, visible but held out of training

    @property
    def training_visible(self) -> np.ndarray | None:
        """The pixels the model learns from: visible and not held out."""
        if self.visible is None or self.validation is None:
            return self.visible
        kept: np.ndarray = self.visible & ~self.validation
        return kept


def load_training_data(config: TrainConfig, videos: list[Path], mask: Mask | None) -> TrainingData:
    """Decode every training video the same way and build the visibility mask."""
    clips = read_clips(videos, config)
    header = stream_info(Path(videos[0]))
    visible = None
    if mask is not None:
        one = visible_pixels(mask, config, header)
        visible = np.broadcast_to(one, clips.shape[:4]).copy()
    return TrainingData(clips, visible, header.fps / config.every)


def visible_pixels(mask: Mask, config: TrainConfig, header: VideoInfo) -> np.ndarray:
    """The mask's visible pixels on the frames the config trains on, of a clip with `header`."""
    return build_visible(
        mask,
        frames=config.frames,
        image_size=config.image_size,
        source_size=(header.width, header.height),
        resize=config.resize,
        start=config.start,
        every=config.every,
    )


class ClipConfig(Protocol):
    """A config that reads clips (TrainConfig, LDSConfig): what fitting it to videos needs."""

    @property
    def start(self) -> int: ...
    @property
    def every(self) -> int: ...
    @property
    def frames(self) -> int: ...
    @property
    def model_fields_set(self) -> set[str]: ...

    def fit_to_length(self, available: int) -> Self: ...


Fitted = TypeVar("Fitted", bound=ClipConfig)


def fit_to_videos(config: Fitted, videos: list[Path]) -> Fitted:
    """The config for these videos: an unset `frames` shrinks to the shortest one's length."""
    if "frames" in config.model_fields_set:
        return config
    needed = config.start + config.every * (config.frames - 1) + 1
    return config.fit_to_length(min(frame_count(Path(v), needed) for v in videos))


def frame_count(video: Path, needed: int) -> int:
    """The video's frames: the header's count when it declares `needed`, else decoded."""
    declared = stream_info(video).frames
    return declared if declared >= needed else probe_video(video).frames


def config_warnings(config: TrainConfig, masked: bool = False) -> list[str]:
    """Settings that run but are known to learn poorly."""
    notes = []
    # A masked run is there to fill in its own clip, and one chunk over the whole clip is what
    # recovered best (QUALITY.md, the recovery defaults): the melting past the clip's end that
    # one chunk brings concerns synthesis only, so it is not a warning there.
    if config.num_chunks == 1 and not masked:
        notes.append(
            f"the clip gives one chunk ({config.frames} frames, "
            f"chunk length {config.chunk_length}): "
            "the model tends to replay it and melt past its length; train on several chunks "
            "(frames a few times the chunk length)"
        )
    return notes


@dataclass
class TrainingRun:
    """One training's inputs once its videos were read: what every method's `train` takes."""

    config: TrainConfig
    data: TrainingData
    videos: list[Path]
    out: Path
    seed: int
    device: torch.device
    on_epoch: Callable[[EpochReport], None] | None = None
    should_stop: Callable[[], bool] | None = None
    resume_path: Path | None = None
    resume_every: int = RESUME_EVERY
    warnings: list[str] = field(default_factory=list)
    on_checkpoint: Callable[[Path, int], None] | None = None


def train_model(
    config: TrainConfig,
    videos: list[Path],
    out_dir: Path,
    *,
    mask: Mask | None = None,
    seed: int = 0,
    device: str = "auto",
    on_epoch: Callable[[EpochReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume_path: Path | None = None,
    resume_every: int = RESUME_EVERY,
    on_start: Callable[[TrainConfig, list[str]], None] | None = None,
    on_checkpoint: Callable[[Path, int], None] | None = None,
) -> TrainResult:
    """Train on the videos (optionally masked) with the config's method and write the model
    and its reports.

    `on_start` gets the config fitted to the videos and its warnings once the videos have
    been read, so bad input has failed before anything is shown as started.
    `on_checkpoint` gets every `checkpoint_every` epochs a checkpoint file of the model so far
    (under out_dir; the callee takes the file away) and its epoch.
    """
    target = resolve_device(device)
    config = fit_to_videos(config, videos)
    if mask is not None and (conflict := config.mask_conflict()):
        raise DyngenError(conflict)
    data = load_training_data(config, videos, mask)
    if data.visible is not None and config.holdout > 0:
        data.validation = np.stack([holdout(v, config.holdout, seed) for v in data.visible])
    warnings = [] if config.method == "lds" else config_warnings(config, masked=mask is not None)
    for note in warnings:
        log.warning(note)
    if on_start is not None:
        on_start(config, warnings)
    run = TrainingRun(
        config, data, [Path(v) for v in videos], Path(out_dir), seed, target, on_epoch,
        should_stop, resume_path, resume_every, warnings, on_checkpoint,
    )  # fmt: skip
    # `auto` trains the dynamic generator, then chooses (train_abptt)
    return method("abptt" if config.method == "auto" else config.method).train(run)


def train_abptt(run: TrainingRun) -> TrainResult:
    """ABPTT (with `auto`, the choice against the LDS after it): outputs and warnings."""
    config, data, target = run.config, run.data, run.device
    learner = _make_learner(config, data, run.seed, target, run.resume_path)
    began = time.perf_counter()
    _fit(learner, run, began)
    extra: dict[str, object] = {"seconds": round(time.perf_counter() - began, 3)}
    ckpt, finish = finished_checkpoint(learner, data, run.seed, target)
    extra |= finish
    if data.visible is None:  # with a mask, the clip's hidden pixels are not a reference
        extra["quality"] = training_report(ckpt, run.videos[0], run.seed, target)
    result = write_training_outputs(run, ckpt, *_abptt_outputs(learner, data, extra))
    result.warnings = run.warnings
    if config.method == "auto":
        choose_kept_model(result, ckpt, data, run.videos[0], run.seed, target)
    kept = (_dict(result.metrics.get("choice")) or {}).get("kept", "abptt")
    result.warnings += quality_warnings(
        _dict(result.metrics.get("quality")),
        _float(result.metrics.get("reconstruction_motion_ratio")),
        # auto kept the plain weights over the same ones with the residual: don't suggest it
        residual=ckpt.residual is not None and kept != "lds",
    )
    _rewrite_metrics(result, {"warnings": result.warnings})
    return result


def _fit(learner: ABPTTLearner, run: TrainingRun, began: float) -> None:
    """Run the learner's epochs, saving resume state as asked; Cancelled when stopped."""
    first_epoch, resume_path = learner.epoch, run.resume_path

    def after_epoch(stats: EpochStats) -> None:
        if resume_path is not None and stats.epoch % run.resume_every == 0:
            save_resume(resume_path, run.config, *learner.state_tensors())
        if run.on_checkpoint is not None and checkpoint_due(run.config, stats.epoch):
            path = write_intermediate(learner, run.data, run.out, run.seed, run.device)
            run.on_checkpoint(path, stats.epoch)
        if run.on_epoch is not None:
            run.on_epoch(_report(stats, run.config.epochs, began, first_epoch))

    if not learner.fit(on_epoch=after_epoch, should_stop=run.should_stop):
        if resume_path is not None:
            save_resume(resume_path, run.config, *learner.state_tensors())
        raise Cancelled(f"stopped after epoch {learner.epoch} of {run.config.epochs}")


def add_residual(
    checkpoint: Path, videos: list[Path], out: Path, components: int, device: str = "cpu"
) -> dict[str, object]:
    """Fit the residual process to a trained model's clips and write the model with it to
    `out` (the same weights: syntheses with and without it share the generator's noise)."""
    from model.checkpoint import load_checkpoint
    from model.evaluation import reconstruct, stored_chains
    from model.video_io import read_clips

    ckpt = load_checkpoint(checkpoint, resolve_device(device))
    chains = stored_chains(checkpoint, ckpt)
    if chains is None:
        raise DyngenError(
            f"{checkpoint}: no inferred chains (neither in the file nor in a {RESUME_FILE} "
            "beside it, saved by the same run)"
        )
    clips = read_clips(videos, ckpt.config)
    if clips.shape[:2] != chains.shape[:2]:
        raise DyngenError(
            f"the model was trained on {chains.shape[0]} video(s) of {chains.shape[1]} frames, "
            f"got {clips.shape[0]} of {clips.shape[1]}"
        )
    decoded = reconstruct(ckpt, chains)
    began = time.perf_counter()
    truth = torch.from_numpy(np.stack([to_tensor_scale(c) for c in clips])).to(decoded.device)
    ckpt.residual = fit_residual(truth, decoded, components)
    ckpt.chains = chains
    ckpt.config = ckpt.config.model_copy(
        update={"residual": "lds", "residual_components": components}
    )
    ckpt.save(out)
    return {
        "components": ckpt.residual.components,
        "seconds": round(time.perf_counter() - began, 3),
        "reconstruction_motion_ratio": reconstruction_motion_ratio(
            to_uint8(decoded.cpu().numpy()), clips
        ),
    }


def finished_checkpoint(
    learner: ABPTTLearner, data: TrainingData, seed: int, device: torch.device
) -> tuple[Checkpoint, dict[str, object]]:
    """The trained model with its chains (and residual process, if the config asks), and the
    metrics of the clip's reconstruction from those chains."""
    config, latents = learner.config, learner.latents
    decoded = decode_chains(
        learner.model,
        latents.initial_state,
        latents.noise,
        latents.content,
        config.chunk,
        learner.bf16,
    )
    metrics: dict[str, object] = {}
    if data.visible is None:
        # the clip explained by the chains: if it barely moves, the model put the clip's
        # motion in the observation noise and syntheses come out smoother than the clip
        metrics["reconstruction_motion_ratio"] = reconstruction_motion_ratio(
            to_uint8(decoded.cpu().numpy()), data.clips
        )
    residual = None
    if config.residual != "none" and data.visible is not None:
        metrics["residual"] = {"process": "none", "why": "masked run: occluded residuals unknown"}
    elif config.residual != "none":
        began = time.perf_counter()
        residual = fit_residual(learner.clips, decoded, config.residual_components)
        metrics["residual"] = {
            "process": config.residual,
            "components": residual.components,
            "seconds": round(time.perf_counter() - began, 3),
        }
    info = {"epochs_trained": str(learner.epoch), "seed": str(seed), "device": str(device)}
    ckpt = Checkpoint(
        config,
        learner.model,
        latents.initial_state,
        latents.content,
        info,
        residual,
        latents.noise,
    )
    calibrated = calibrate_trained(ckpt, data.clips, data.visible is not None, seed)
    if calibrated is not None:
        metrics["calibration"] = calibrated
    return ckpt, metrics


def checkpoint_due(config: TrainConfig, epoch: int) -> bool:
    """Whether an intermediate checkpoint is written after `epoch` (the last one is the model)."""
    every = config.checkpoint_every
    return every > 0 and epoch % every == 0 and epoch < config.epochs


def write_intermediate(
    learner: ABPTTLearner, data: TrainingData, out: Path, seed: int, device: torch.device
) -> Path:
    """The model as it stands, written as the final one would be (chains, residual process):
    a decode of the chains, cheaper than an epoch's Langevin steps, and no RNG drawn, so the
    run trains the same with or without checkpoints."""
    ckpt, _metrics = finished_checkpoint(learner, data, seed, device)
    path = out / "checkpoints" / f"model-epoch-{learner.epoch}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt.save(path)
    return path


def training_report(
    model: Checkpoint | LDSModel, video: Path, seed: int, device: torch.device | str
) -> dict[str, object]:
    """The quality report of 2 syntheses 4x the training length against the first clip, for
    the dynamic generator and the LDS alike."""
    from model.evaluation import read_clip, synthesize
    from model.quality import quality_report

    length = REPORT_MULTIPLE * model.config.frames
    clip, held_out = read_clip(video, model.config, length)
    videos = synthesize(model, REPORT_VIDEOS, length, seed, str(device))
    return quality_report(videos, clip, held_out, seed=seed)


def choose_kept_model(
    result: TrainResult,
    ckpt: Checkpoint,
    data: TrainingData,
    video: Path,
    seed: int,
    device: torch.device,
) -> None:
    """`method: auto`: fit the LDS, keep the best of it, the trained model and the same weights
    without their residual process as the run's model.safetensors (the others beside it), and
    report the choice in the metrics."""
    from model.choice import aside_name, candidates, choose_model, fallback_choice
    from model.lds import fit_lds

    out = result.checkpoint.parent
    skipped = fallback_choice(data.visible is not None, ckpt.config.content_dim)
    if skipped is not None:
        _rewrite_metrics(result, {"choice": skipped})
        return
    lds = fit_lds(data.clips, _lds_config(ckpt.config))
    lds.info = {"seed": str(seed)}
    models = candidates(ckpt, lds, data.clips)
    choice = choose_model(models, video, ckpt.config, seed, str(device))
    kept = choice["kept"]
    update: dict[str, object] = {}
    if kept != "abptt":
        # the configured model moves aside; the kept one takes its name
        name = aside_name(kept, ckpt.residual is not None)
        result.checkpoint.replace(out / f"{name}.safetensors")
        result.files.append(describe("alternative_model", out / f"{name}.safetensors"))
        update[f"quality_{name.removeprefix('model-')}"] = result.metrics.get("quality")
        update["quality"] = training_report(models[kept], video, seed, device)
    if kept not in ("abptt", "lds"):
        models[kept].save(result.checkpoint)
    if kept == "lds":
        lds.save(result.checkpoint)
        update["reconstruction_motion_ratio"] = reconstruction_motion_ratio(
            reconstruct_lds(lds), data.clips
        )
        update["reconstruction_motion_ratio_abptt"] = result.metrics.get(
            "reconstruction_motion_ratio"
        )
    else:
        lds.save(out / "model-lds.safetensors")
        result.files.append(describe("alternative_model", out / "model-lds.safetensors"))
    _rewrite_metrics(result, update | {"choice": choice})


def _rewrite_metrics(result: TrainResult, update: dict[str, object]) -> None:
    """Add to the run's metrics and write metrics.json again."""
    result.metrics |= update
    path = result.checkpoint.parent / "metrics.json"
    write_json(path, result.metrics)


def _lds_config(config: TrainConfig) -> LDSConfig:
    """The LDS settings of a training config: the same frames, its component count."""
    fields = {k: getattr(config, k) for k in ("image_size", "frames", "start", "every", "resize")}
    return LDSConfig(**fields, components=config.lds_components)


def _dict(value: object) -> dict[str, Any] | None:
    """value when it is a dict (a report), else None."""
    return value if isinstance(value, dict) else None


def _float(value: object) -> float | None:
    """value when it is a number, else None."""
    return float(value) if isinstance(value, int | float) else None


def train_lds(run: TrainingRun) -> TrainResult:
    """The LDS baseline: fit in seconds, the same outputs as a training run."""
    from model.lds import fit_lds

    config, data = run.config, run.data
    began = time.perf_counter()
    lds = fit_lds(data.clips, _lds_config(config))
    lds.info = {"seed": str(run.seed)}
    seconds = time.perf_counter() - began
    recon = reconstruct_lds(lds)  # (N, T, S, S, 3) uint8
    truth = np.stack([to_tensor_scale(c) for c in data.clips])
    mse = visible_mse(truth, np.stack([to_tensor_scale(r) for r in recon]))
    report = training_report(lds, run.videos[0], run.seed, "cpu")  # an LDS samples on the CPU
    recon_motion = reconstruction_motion_ratio(recon, data.clips)
    notes = quality_warnings(report, recon_motion)
    metrics: dict[str, object] = {
        "method": "lds",
        "components": lds.components,
        "visible_mse": mse,
        "psnr": psnr(mse),
        "reconstruction_motion_ratio": recon_motion,
        "seconds": round(seconds, 4),
        "quality": report,
        "warnings": notes,
    }
    if run.on_epoch is not None:
        epochs = config.epochs
        run.on_epoch(EpochReport(epochs, epochs, mse, mse, psnr(mse), seconds, seconds, 0.0, 0))
    result = write_training_outputs(run, lds, recon, metrics)
    result.warnings = notes
    return result


def write_training_outputs(
    run: TrainingRun,
    model: TrainedModel,
    reconstruction: np.ndarray,
    metrics: dict[str, object],
    recovered: np.ndarray | None = None,
    losses: tuple[list[float], list[float]] | None = None,
) -> TrainResult:
    """Every method's outputs in run.out: model.safetensors, the reconstruction (uint8
    (N, T, S, S, 3)) as videos and beside the clip in a grid, the recovered videos of a masked
    run, the loss curve of a learner, metrics.json."""
    out, data = run.out, run.data
    checkpoint = out / "model.safetensors"
    model.save(checkpoint)
    files = [describe("checkpoint", checkpoint)]
    files += _write_videos(out, "reconstruction", reconstruction, data.fps)
    grid_rows = [data.clips, reconstruction]
    if recovered is not None and data.visible is not None:
        files += _write_videos(out, "recovered", recovered, data.fps, kind="recovered_video")
        grid_rows.insert(1, (data.clips * data.visible[..., None]).astype(np.uint8))
    grid = out / "reconstruction.png"
    write_grid(grid, np.concatenate(grid_rows))
    files.append(describe("reconstruction_grid", grid))
    if losses is not None:
        curve = out / "loss.png"
        write_loss_curve(curve, *losses)
        files.append(describe("loss_curve", curve))
    files.append(describe("metrics", write_json(out / "metrics.json", metrics)))
    return TrainResult(checkpoint, files, metrics)


def warms_up(config: TrainConfig, resume: Path | None) -> bool:
    """Whether `train_model` runs the PCA warm start first: asked for, and not resuming."""
    resuming = resume is not None and resume.exists()
    return config.method != "lds" and config.warm_start == "pca" and not resuming


def _make_learner(
    config: TrainConfig, data: TrainingData, seed: int, device: torch.device, resume: Path | None
) -> ABPTTLearner:
    """A fresh learner, or one restored from resume state."""
    clips = torch.from_numpy(np.stack([to_tensor_scale(c) for c in data.clips]))
    seen = data.training_visible
    visible = None if seen is None else torch.from_numpy(seen[:, :, None])
    learner = ABPTTLearner(config, clips, visible, seed=seed, device=device)
    if resume is not None and resume.exists():
        learner.load_state_tensors(*load_resume(resume, config))
        log.info("resumed from %s at epoch %d", resume, learner.epoch)
    elif warms_up(config, resume):
        began = time.perf_counter()
        learner.warm_start()
        log.info("PCA warm start took %.1f s", time.perf_counter() - began)
    return learner


def _report(stats: EpochStats, epochs: int, began: float, first_epoch: int) -> EpochReport:
    """Progress with an ETA from the epochs run in this process."""
    elapsed = time.perf_counter() - began
    per_epoch = elapsed / max(stats.epoch - first_epoch, 1)
    return EpochReport(
        stats.epoch,
        epochs,
        stats.loss,
        stats.mse,
        psnr(stats.mse),
        stats.seconds,
        elapsed,
        per_epoch * (epochs - stats.epoch),
        first_epoch,
    )


def _abptt_outputs(
    learner: ABPTTLearner, data: TrainingData, extra: dict[str, object]
) -> tuple[np.ndarray, dict[str, object], np.ndarray | None, tuple[list[float], list[float]]]:
    """What write_training_outputs writes of a learner: the reconstruction, the metrics, the
    recovered videos of a masked run, the loss curve."""
    truth = np.stack([to_tensor_scale(c) for c in data.clips])  # (N, T, 3, S, S)
    averaged = learner.averaged_reconstruction().cpu().numpy()
    last = learner.reconstruction.cpu().numpy()
    metrics = _training_metrics(learner, truth, averaged, last, data.training_visible) | extra
    recovered = None
    if data.visible is not None:
        recovered, recovery = _recovery(truth, averaged, last, data.visible, data.validation)
        metrics |= recovery
        recovered = to_uint8(recovered)
    losses = ([s.loss for s in learner.history], [s.mse for s in learner.history])
    return to_uint8(averaged), metrics, recovered, losses


def _training_metrics(
    learner: ABPTTLearner,
    truth: np.ndarray,
    averaged: np.ndarray,
    last: np.ndarray,
    visible: np.ndarray | None,
) -> dict[str, object]:
    """Fit on the pixels trained on: MSE, PSNR, epochs, loss."""
    weight = None if visible is None else visible[:, :, None]
    mse = visible_mse(truth, averaged, weight)
    history = learner.history
    metrics: dict[str, object] = {
        "epochs": learner.epoch,
        "final_loss": history[-1].loss if history else None,
        "first_loss": history[0].loss if history else None,
        "visible_mse": mse,
        "psnr": psnr(mse),
        "last_sample_psnr": psnr(visible_mse(truth, last, weight)),
        "averaged_epochs": learner.recon_count,
        "seconds_per_epoch": float(np.mean([s.seconds for s in history])) if history else None,
    }
    if visible is None:  # the posterior-mean reconstruction (reconstruction.mp4) moves this much
        metrics["averaged_reconstruction_motion_ratio"] = reconstruction_motion_ratio(
            to_uint8(averaged), to_uint8(truth)
        )
    return metrics


def _recovery(
    truth: np.ndarray,
    averaged: np.ndarray,
    last: np.ndarray,
    visible: np.ndarray,
    validation: np.ndarray | None,
) -> tuple[np.ndarray, dict[str, object]]:
    """The recovered videos (N, T, 3, S, S) and their metrics: the blend fitted on the held-out
    pixels where there are any, else the model's posterior mean, beside the baselines."""
    weight = visible[:, :, None]
    observed = np.where(weight, truth, 0.0)  # the fills below never see occluded truth
    fills = candidate_fills(observed, visible, averaged) | {
        "last_sample": last,
        "temporal_mean": np.stack(
            [temporal_mean_fill(v, w) for v, w in zip(observed, weight, strict=True)]
        ),
    }
    errors = fill_errors(truth, fills, visible)
    metrics: dict[str, object] = {
        "occluded_fraction": float(1 - visible.mean()),
        "recovery_error": errors["model"],
        "recovery_method": "model",
    } | {f"recovery_error_{name}": error for name, error in errors.items()}
    if validation is None or not validation.any():
        return np.where(weight, truth, averaged), metrics
    recovered, blend = blended_recovery(truth, averaged, visible, validation)
    metrics |= {
        "recovery_error": recovery_error(truth, recovered, weight),
        "recovery_method": "blend",
        "held_out_fraction": float(validation.sum() / max(visible.sum(), 1)),
        "blend": blend.summary(),
    }
    return recovered, metrics


def _write_videos(
    out: Path, stem: str, videos: np.ndarray, fps: float, kind: str | None = None, fmt: str = "mp4"
) -> list[OutputFile]:
    """One file per video: stem.mp4, or stem-1.mp4, stem-2.mp4, ... for several."""
    files = []
    for index, video in enumerate(videos):
        name = f"{stem}.{fmt}" if len(videos) == 1 else f"{stem}-{index + 1}.{fmt}"
        write_video(out / name, iter(video), fps)
        files.append(describe(kind or f"{stem}_video", out / name))
    return files
