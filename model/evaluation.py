"""Scoring a trained model: synthesize 4x the training length, score it against the clip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from model.config import RESUME_FILE
from model.video_io import ClipSettings


def read_clip(
    video: Path, settings: ClipSettings, held_out_max: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """The training clip as training read it, and up to `held_out_max` frames after it."""
    from model.errors import VideoError
    from model.video_io import probe_video, read_clips, stream_info

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


def load_model(path: Path, device: str) -> Any:
    """A Checkpoint or an LDSModel, by the file's format; both carry the clip settings."""
    from model.checkpoint import load_checkpoint, model_format
    from model.device import resolve_device
    from model.lds import LDS_FORMAT, load_lds

    if model_format(path) == LDS_FORMAT:
        return load_lds(path)
    return load_checkpoint(path, resolve_device(device))


def synthesize(model: Any, num_videos: int, frames: int, seed: int, device: str) -> np.ndarray:
    """uint8 (V, F, S, S, 3) syntheses from a loaded Checkpoint or LDSModel."""
    from model.config import SynthesisConfig
    from model.device import resolve_device
    from model.lds import LDSModel, sample_lds
    from model.sampler import sample_chunks
    from model.video_io import to_uint8

    if isinstance(model, LDSModel):
        return sample_lds(model, num_videos, frames, seed=seed)
    config = SynthesisConfig(num_videos=num_videos, frames=frames)
    target = resolve_device(device)
    chunks = sample_chunks(model, config, seed=seed, device=target)  # (V, L, 3, S, S) each
    return np.concatenate([to_uint8(c.cpu().numpy()) for c in chunks], axis=1)


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


def model_reconstruction_motion(path: Path, model: Any, clip: np.ndarray) -> float | None:
    """The reconstruction's motion over the clip's (the first training video), or None for a
    checkpoint without stored chains."""
    from model.lds import LDSModel, reconstruct_lds
    from model.quality import reconstruction_motion_ratio
    from model.video_io import to_uint8

    if isinstance(model, LDSModel):
        recon = reconstruct_lds(model)
    else:
        chains = stored_chains(path, model)
        if chains is None:
            return None
        recon = to_uint8(reconstruct(model, chains).cpu().numpy())
    return reconstruction_motion_ratio(recon[:1], clip[None])


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
    model = load_model(path, device)
    settings: ClipSettings = model.config
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
