"""The dynamic generator learned by ABPTT, as a registered method (model/methods.py): the
learner's epochs with resume state and intermediate checkpoints, the finished checkpoint and
the training's outputs."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from model.auto import choose_kept_model
from model.calibration import calibrate_trained
from model.checkpoint import (
    CHECKPOINT_FORMAT,
    Checkpoint,
    load_checkpoint,
    load_resume,
    save_resume,
)
from model.config import TrainConfig
from model.errors import Cancelled
from model.learner import ABPTTLearner, EpochStats
from model.metrics import psnr, visible_mse
from model.outputs import TrainResult, rewrite_metrics, write_training_outputs
from model.quality import reconstruction_motion_ratio
from model.recovery import recovered_videos
from model.report import kept_model_warnings, training_report
from model.residual import decode_chains, fit_residual
from model.stationary import with_stationary_transition
from model.training import EpochReport, TrainingRun
from model.training_data import TrainingData
from model.video_frames import to_tensor_scale, to_uint8

log = logging.getLogger("dyngen")
FILE_FORMAT = CHECKPOINT_FORMAT


def load_file(path: Path, device: torch.device) -> Checkpoint:
    """A dynamic generator's checkpoint."""
    return load_checkpoint(path, device)


def train(run: TrainingRun) -> TrainResult:
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
    result = write_training_outputs(run, ckpt, *_outputs(learner, data, extra))
    result.warnings = run.warnings
    if config.method == "auto":
        choose_kept_model(result, ckpt, data, run.videos[0], run.seed, target)
    result.warnings += kept_model_warnings(result, has_residual=ckpt.residual is not None)
    rewrite_metrics(result, {"warnings": result.warnings})
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


def finished_checkpoint(
    learner: ABPTTLearner, data: TrainingData, seed: int, device: torch.device
) -> tuple[Checkpoint, dict[str, object]]:
    """The trained model with its chains (and residual process, if the config asks), and the
    metrics of the clip's reconstruction from those chains."""
    config, latents = learner.config, learner.latents
    model = learner.trained_model()
    decoded = decode_chains(
        model,
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
        model,
        latents.initial_state,
        latents.content,
        info,
        residual,
        latents.noise,
    )
    calibrated = calibrate_trained(ckpt, data.clips, data.visible is not None, seed)
    if calibrated is not None:
        metrics["calibration"] = calibrated
    if config.stationary != "none" and data.visible is None:
        # after the calibration: the fine-tune rolls the state as the sampler will
        began = time.perf_counter()
        ckpt = with_stationary_transition(ckpt, seed)
        metrics["stationary"] = {"seconds": round(time.perf_counter() - began, 3)}
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
    if data.visible is not None and data.validation is not None and config.release_epoch:
        learner.schedule_release(torch.from_numpy(data.visible[:, :, None]), config.release_epoch)
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


def _outputs(
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
        held_out_fill = learner.held_out_fill()
        recovered, recovery = recovered_videos(
            truth,
            averaged,
            last,
            data.visible,
            data.validation,
            None if held_out_fill is None else held_out_fill.cpu().numpy(),
        )
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
