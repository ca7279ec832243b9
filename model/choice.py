"""`method: auto`: score the dynamic generator (with and without its residual process) and the
LDS on frames of the clip none was fitted on, keep the best."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from model.evaluation import read_clip, synthesize
from model.quality import scores
from model.video_frames import ClipSettings

# Each candidate is scored on AUTO_DRAWS reports of AUTO_VIDEOS syntheses (their own seeds and
# patch draws), 4x the training length: one report of two syntheses scatters by up to a
# quarter (QUALITY.md), and the candidates' distances can differ by 10 %.
AUTO_VIDEOS = 6
AUTO_DRAWS = 2
AUTO_MULTIPLE = 4
MIN_HELD_OUT = 8  # fewer frames after the training range: score against the clip itself
SHOWN = ("dynamics", "appearance", "motion_ratio", "drift", "novelty")


def candidates(ckpt: Any, lds: Any) -> dict[str, Any]:
    """What auto chooses among, the preferred first (a tie keeps it): the trained model as
    configured, the same weights without the residual process (if it has one), the LDS."""
    models = {"abptt": ckpt}
    if ckpt.residual is not None:
        models["abptt_plain"] = without_residual(ckpt)
    return models | {"lds": lds}


def without_residual(ckpt: Any) -> Any:
    """The same trained model with no residual process (`residual: none`)."""
    plain = ckpt.config.model_copy(update={"residual": "none"})
    return dataclasses.replace(ckpt, residual=None, config=plain)


def choose_model(
    models: dict[str, Any], video: Path, settings: ClipSettings, seed: int, device: str
) -> dict[str, Any]:
    """Score each loaded model (name -> Checkpoint or LDSModel, the preferred first) against
    the video's frames after the training range; the lowest mean dynamics distance is kept
    (ties: the first). Returns what metrics.json reports: kept, why, the reference, scores."""
    length = AUTO_MULTIPLE * settings.frames
    clip, held_out = read_clip(video, settings, length)
    if held_out is not None and len(held_out) >= MIN_HELD_OUT:
        reference, against = held_out, f"the {len(held_out)} held-back frames after the clip"
    else:
        # nothing unseen to score against: the training clip is the only reference left
        reference, against = clip, "the training clip (the video has no frames after it)"
    scored = {
        name: _scores(model, length, reference, seed, device) for name, model in models.items()
    }
    kept = min(scored, key=lambda name: scored[name]["dynamics"])
    others = ", ".join(f"the {n}'s {s['dynamics']:.4g}" for n, s in scored.items() if n != kept)
    why = (
        f"kept {kept}: its syntheses' dynamics distance to {against} is "
        f"{scored[kept]['dynamics']:.4g}, against {others}"
    )
    return {
        "kept": kept,
        "why": why,
        "reference": against,
        "syntheses": AUTO_VIDEOS * AUTO_DRAWS,
        "scores": scored,
    }


def _scores(model: Any, length: int, reference: Any, seed: int, device: str) -> dict[str, Any]:
    """The report's headline numbers of the model's syntheses against the reference frames,
    averaged over AUTO_DRAWS draws, with each draw's dynamics to show the spread."""
    draws = []
    for draw in range(seed, seed + AUTO_DRAWS):
        videos = synthesize(model, AUTO_VIDEOS, length, draw, device)
        draws.append(scores(videos, reference, seed=draw))
    mean = {key: _mean([d[key] for d in draws]) for key in SHOWN}
    return mean | {"dynamics_by_draw": [d["dynamics"] for d in draws]}


def _mean(values: list[float | None]) -> float | None:
    """The mean, or None when a draw had no value (a reference that does not move)."""
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if len(present) == len(values) else None


def fallback_choice(masked: bool, content_dim: int) -> dict[str, Any] | None:
    """What auto reports on a run it does not choose for (the dynamic generator is kept), or
    None when it chooses."""
    if masked:
        why = (
            "masked run: auto trains the dynamic generator only (an LDS cannot learn from "
            "incomplete frames; the recovery blend chooses between the model and interpolation)"
        )
    elif content_dim > 0:
        why = "content vectors asked for: the LDS has none, so the dynamic generator is kept"
    else:
        return None
    return {"kept": "abptt", "why": why}
