"""Scoring a trained model: synthesize 4x the training length, score it against the clip."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model.config import RESUME_FILE
from model.video_frames import ClipSettings

if TYPE_CHECKING:
    from model.methods import TrainedModel


def read_clip(
    video: Path, settings: ClipSettings, held_out_max: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """The training clip as training read it, and up to `held_out_max` frames after it."""
    from model.errors import VideoError
    from model.video_decode import probe_video, stream_info
    from model.video_frames import read_clips

    last = settings.start + settings.every * (settings.frames - 1)  # last training frame

    def read(extra: int) -> np.ndarray:
        clip: np.ndarray = read_clips([Path(video)], settings, extra)[0]
        return clip

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


def synthesize(
    model: TrainedModel, num_videos: int, frames: int, seed: int, device: str
) -> np.ndarray:
    """uint8 (V, F, S, S, 3) syntheses from a trained model of any method."""
    from model.config import SynthesisConfig
    from model.device import resolve_device

    config = SynthesisConfig(num_videos=num_videos, frames=frames)
    chunks = model.frame_chunks(config, seed, resolve_device(device))
    return np.concatenate(list(chunks), axis=1)


def stored_chains(path: Path, ckpt: Any) -> Any:
    """The inferred noise chains (N, T, k) of a checkpoint: its own, or those of the resume
    state saved beside it (runs of earlier versions); None when neither has them."""
    from model.checkpoint import load_resume
    from model.errors import CheckpointError

    if ckpt.chains is not None:
        return ckpt.chains
    resume = Path(path).parent / RESUME_FILE
    if not resume.is_file():
        return None
    try:
        tensors, _ = load_resume(resume, ckpt.config)
    except CheckpointError:
        return None  # another run's state: not these weights' chains
    return tensors.get("chain.noise")


def reconstruct(ckpt: Any, chains: Any) -> Any:
    """The training clips decoded from the chains as training decodes them: a float tensor
    (N, T, 3, S, S) in [-1, 1]."""
    from model.learner import use_bf16
    from model.residual import decode_chains

    device = ckpt.initial_state.device
    return decode_chains(
        ckpt.model,
        ckpt.initial_state,
        chains.to(device),
        ckpt.content,
        ckpt.config.chunk,
        use_bf16(ckpt.config.precision, device),
    )


def model_reconstruction_motion(path: Path, model: TrainedModel, clip: np.ndarray) -> float | None:
    """The reconstruction's motion over the clip's (the first training video), or None for a
    checkpoint without stored chains."""
    from model.quality import reconstruction_motion_ratio

    recon = model.training_reconstruction(path)
    return None if recon is None else reconstruction_motion_ratio(recon[:1], clip[None])


def evaluate_model(
    path: Path,
    video: Path,
    multiple: int,
    num_videos: int,
    seed: int,
    device: str = "cpu",
    seeds: int = 1,
) -> dict[str, Any]:
    """Synthesize `multiple` times the training length and score it against VIDEO's clip;
    with `seeds` > 1, the mean of the reports of seeds `seed`, `seed + 1`, ..."""
    from model.quality import mean_report, quality_report

    if multiple < 1 or num_videos < 1 or seeds < 1:
        raise ValueError("--frames-multiple, --num-videos and --seeds must be at least 1")
    from model.device import resolve_device
    from model.methods import load_model

    model = load_model(path, resolve_device(device))
    settings = model.config
    frames = multiple * settings.frames
    clip, held_out = read_clip(video, settings, frames)
    reports = [
        quality_report(synthesize(model, num_videos, frames, s, device), clip, held_out, seed=s)
        for s in range(seed, seed + seeds)
    ]
    report = reports[0] if seeds == 1 else mean_report(reports)
    report["reconstruction_motion_ratio"] = model_reconstruction_motion(path, model, clip)
    report["residual"] = getattr(model, "residual", None) is not None
    return report
