"""Whole runs as the CLI and the worker use them: videos in, artifacts in a directory out."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from model.checkpoint import load_checkpoint, load_resume, save_checkpoint, save_resume
from model.config import SynthesisConfig, TrainConfig
from model.errors import Cancelled, DyngenError
from model.files import atomic_path
from model.learner import ABPTTLearner, EpochStats
from model.masks import FileMask, MissingFramesMask, RegionsMask, build_visible
from model.metrics import psnr, recovery_error, temporal_mean_fill, visible_mse
from model.plots import write_loss_curve
from model.sampler import sample_chunks
from model.video_io import (
    open_writer,
    read_video,
    stream_info,
    to_tensor_scale,
    to_uint8,
    write_grid,
    write_video,
)

log = logging.getLogger("dyngen")
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
    elapsed: float
    eta_seconds: float


@dataclass(frozen=True)
class OutputFile:
    """One file a run wrote."""

    kind: str
    path: Path
    media_type: str


@dataclass
class TrainResult:
    """What a training run wrote and measured."""

    checkpoint: Path
    files: list[OutputFile]
    metrics: dict[str, object]
    warnings: list[str] = field(default_factory=list)


@dataclass
class SynthesisResult:
    """What a synthesis run wrote and measured."""

    files: list[OutputFile]
    metrics: dict[str, object]


@dataclass
class TrainingData:
    """The decoded clips of a run and their mask."""

    clips: np.ndarray  # (N, T, S, S, 3) uint8
    visible: np.ndarray | None  # (N, T, S, S) bool, True = observed
    fps: float


MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".gif": "image/gif",
    ".png": "image/png",
    ".json": "application/json",
    ".safetensors": "application/octet-stream",
}


def resolve_device(name: str) -> torch.device:
    """auto -> cuda when present, else cpu; asking for cuda without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DyngenError("--device cuda asked for, but no CUDA device is available")
    if name != "cpu" and not name.startswith("cuda"):
        raise DyngenError(f"device {name!r}: expected auto, cpu or cuda")
    return torch.device(name)


def load_training_data(config: TrainConfig, videos: list[Path], mask: Mask | None) -> TrainingData:
    """Decode every training video the same way and build the visibility mask."""
    if not videos:
        raise DyngenError("no training video given")
    clips = np.stack(
        [
            read_video(
                Path(p),
                image_size=config.image_size,
                frames=config.frames,
                start=config.start,
                every=config.every,
                resize=config.resize,
            )
            for p in videos
        ]
    )
    header = stream_info(Path(videos[0]))
    visible = None
    if mask is not None:
        one = build_visible(
            mask,
            frames=config.frames,
            image_size=config.image_size,
            source_size=(header.width, header.height),
            resize=config.resize,
        )
        visible = np.broadcast_to(one, clips.shape[:4]).copy()
    return TrainingData(clips, visible, header.fps / config.every)


def config_warnings(config: TrainConfig) -> list[str]:
    """Settings that run but are known to learn poorly."""
    notes = []
    if config.num_chunks == 1:
        notes.append(
            f"the clip gives one chunk ({config.frames} frames, "
            f"chunk length {config.chunk_length}): "
            "the model tends to replay it and melt past its length; train on several chunks "
            "(frames a few times the chunk length)"
        )
    return notes


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
    resume_every: int = 50,
) -> TrainResult:
    """Train on the videos (optionally masked) and write the checkpoint and its reports."""
    target = resolve_device(device)
    data = load_training_data(config, videos, mask)
    warnings = config_warnings(config)
    for note in warnings:
        log.warning(note)
    learner = _make_learner(config, data, seed, target, resume_path)
    began = time.perf_counter()
    first_epoch = learner.epoch

    def after_epoch(stats: EpochStats) -> None:
        if resume_path is not None and stats.epoch % resume_every == 0:
            save_resume(resume_path, config, *learner.state_tensors())
        if on_epoch is not None:
            on_epoch(_report(stats, config.epochs, began, first_epoch))

    if not learner.fit(on_epoch=after_epoch, should_stop=should_stop):
        if resume_path is not None:
            save_resume(resume_path, config, *learner.state_tensors())
        raise Cancelled(f"stopped after epoch {learner.epoch} of {config.epochs}")
    result = _write_training_outputs(learner, data, Path(out_dir), seed, target)
    result.metrics["seconds"] = round(time.perf_counter() - began, 3)
    result.warnings = warnings
    return result


def _make_learner(
    config: TrainConfig, data: TrainingData, seed: int, device: torch.device, resume: Path | None
) -> ABPTTLearner:
    """A fresh learner, or one restored from resume state."""
    clips = torch.from_numpy(np.stack([to_tensor_scale(c) for c in data.clips]))
    visible = None if data.visible is None else torch.from_numpy(data.visible[:, :, None])
    learner = ABPTTLearner(config, clips, visible, seed=seed, device=device)
    if resume is not None and resume.exists():
        learner.load_state_tensors(*load_resume(resume, config))
        log.info("resumed from %s at epoch %d", resume, learner.epoch)
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
    )


def _write_training_outputs(
    learner: ABPTTLearner, data: TrainingData, out: Path, seed: int, device: torch.device
) -> TrainResult:
    """Checkpoint, reconstructions (+ recovered videos), loss curve and metrics.json."""
    config = learner.config
    files: list[OutputFile] = []
    checkpoint = out / "model.safetensors"
    info = {"epochs_trained": str(learner.epoch), "seed": str(seed), "device": str(device)}
    save_checkpoint(
        checkpoint,
        config,
        learner.model,
        learner.latents.initial_state,
        learner.latents.content,
        info,
    )
    files.append(_output("checkpoint", checkpoint))
    truth = np.stack([to_tensor_scale(c) for c in data.clips])  # (N, T, 3, S, S)
    averaged = learner.averaged_reconstruction().cpu().numpy()
    last = learner.reconstruction.cpu().numpy()
    metrics = _training_metrics(learner, truth, averaged, last, data.visible)
    files += _write_videos(out, "reconstruction", to_uint8(averaged), data.fps)
    grid_rows = [data.clips, to_uint8(averaged)]
    if data.visible is not None:
        recovered = np.where(data.visible[:, :, None], truth, averaged)
        files += _write_videos(
            out, "recovered", to_uint8(recovered), data.fps, kind="recovered_video"
        )
        grid_rows.insert(1, (data.clips * data.visible[..., None]).astype(np.uint8))
    grid = out / "reconstruction.png"
    write_grid(grid, np.concatenate(grid_rows))
    files.append(_output("reconstruction_grid", grid))
    curve = out / "loss.png"
    write_loss_curve(curve, [s.loss for s in learner.history], [s.mse for s in learner.history])
    files.append(_output("loss_curve", curve))
    files.append(_output("metrics", _write_json(out / "metrics.json", metrics)))
    return TrainResult(checkpoint, files, metrics)


def _training_metrics(
    learner: ABPTTLearner,
    truth: np.ndarray,
    averaged: np.ndarray,
    last: np.ndarray,
    visible: np.ndarray | None,
) -> dict[str, object]:
    """Fit on visible pixels; recovery error on occluded ones beside the temporal mean's."""
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
    if weight is not None and visible is not None:
        baseline = np.stack([temporal_mean_fill(v, w) for v, w in zip(truth, weight, strict=True)])
        metrics |= {
            "occluded_fraction": float(1 - visible.mean()),
            "recovery_error": recovery_error(truth, averaged, weight),
            "recovery_error_last_sample": recovery_error(truth, last, weight),
            "recovery_error_temporal_mean": recovery_error(truth, baseline, weight),
        }
    return metrics


def _write_videos(
    out: Path, stem: str, videos: np.ndarray, fps: float, kind: str | None = None, fmt: str = "mp4"
) -> list[OutputFile]:
    """One file per video: stem.mp4, or stem-1.mp4, stem-2.mp4, ... for several."""
    files = []
    for index, video in enumerate(videos):
        name = f"{stem}.{fmt}" if len(videos) == 1 else f"{stem}-{index + 1}.{fmt}"
        write_video(out / name, iter(video), fps)
        files.append(_output(kind or f"{stem}_video", out / name))
    return files


def _output(kind: str, path: Path) -> OutputFile:
    """Describe a written file."""
    return OutputFile(kind, path, MEDIA_TYPES.get(path.suffix, "application/octet-stream"))


def _write_json(path: Path, content: dict[str, object]) -> Path:
    """JSON written atomically (infinities as null)."""
    clean = {
        k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in content.items()
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(clean, indent=2) + "\n")
    return path


def synthesize_videos(
    checkpoint: Path,
    config: SynthesisConfig,
    out_dir: Path,
    *,
    seed: int = 0,
    device: str = "auto",
    on_progress: Callable[[int, int], None] | None = None,
) -> SynthesisResult:
    """Generate `num_videos` videos of `frames` frames from a checkpoint, streamed to disk."""
    target = resolve_device(device)
    ckpt = load_checkpoint(Path(checkpoint), target)
    if config.content is not None and config.content >= ckpt.initial_state.shape[0]:
        raise DyngenError(
            f"content {config.content}: the model was trained on "
            f"{ckpt.initial_state.shape[0]} video(s)"
        )
    out = Path(out_dir)
    names = [f"video-{i + 1}.{fmt}" for i in range(config.num_videos) for fmt in config.formats]
    writers = [open_writer(out / name, config.fps) for name in names]
    picks = set(
        np.linspace(0, config.frames - 1, min(10, config.frames)).round().astype(int).tolist()
    )
    began, done, motion = time.perf_counter(), 0, []
    grid_frames: list[np.ndarray] = []
    previous: np.ndarray | None = None
    try:
        for chunk in sample_chunks(ckpt, config, seed=seed, device=target):
            frames = to_uint8(chunk.cpu().numpy())  # (V, L, S, S, 3)
            for t in range(frames.shape[1]):
                for index, writer in enumerate(writers):
                    writer.write(frames[index // len(config.formats), t])
                if previous is not None:
                    motion.append(float(np.abs(frames[:, t].astype(np.int16) - previous).mean()))
                previous = frames[:, t].astype(np.int16)
                if done + t in picks:
                    grid_frames.append(frames[:, t])
            done += frames.shape[1]
            if on_progress is not None:
                on_progress(done, config.frames)
    except BaseException:
        for writer in writers:
            writer.close(commit=False)
        raise
    for writer in writers:
        writer.close()
    seconds = time.perf_counter() - began
    files = [_output("video", out / name) for name in names]
    grid = out / "synthesis.png"
    write_grid(grid, np.stack(grid_frames, axis=1))
    files.append(_output("grid", grid))
    metrics: dict[str, object] = {
        "num_videos": config.num_videos,
        "frames": config.frames,
        "seconds": round(seconds, 3),
        "frames_per_second": config.num_videos * config.frames / max(seconds, 1e-9),
        "mean_frame_difference": float(np.mean(motion)) if motion else 0.0,
    }
    files.append(_output("metrics", _write_json(out / "synthesis.json", metrics)))
    return SynthesisResult(files, metrics)
