"""`dyngen add-residual`: fit the residual process to a model trained without it."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from model.checkpoint import load_checkpoint
from model.config import RESUME_FILE
from model.device import resolve_device
from model.errors import DyngenError
from model.evaluation import reconstruct, stored_chains
from model.quality import reconstruction_motion_ratio
from model.residual import fit_residual
from model.video_frames import read_clips, to_tensor_scale, to_uint8


def add_residual(
    checkpoint: Path, videos: list[Path], out: Path, components: int, device: str = "cpu"
) -> dict[str, object]:
    """Fit the residual process to a trained model's clips and write the model with it to
    `out` (the same weights: syntheses with and without it share the generator's noise)."""
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
