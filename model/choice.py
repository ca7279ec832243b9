"""`method: auto`: score the dynamic generator and the LDS on frames neither was fitted on,
keep the better."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from model.evaluation import read_clip, synthesize
from model.quality import quality_report
from model.video_io import ClipSettings

AUTO_VIDEOS = 4  # syntheses per candidate: two scatter by up to a quarter (QUALITY.md)
AUTO_MULTIPLE = 4  # each as long as the report's, 4x the training length
MIN_HELD_OUT = 8  # fewer frames after the training range: score against the clip itself
SHOWN = ("dynamics", "appearance", "motion_ratio", "drift", "novelty")


def choose_model(
    candidates: dict[str, Any], video: Path, settings: ClipSettings, seed: int, device: str
) -> dict[str, Any]:
    """Score each loaded model (name -> Checkpoint or LDSModel, the preferred first) against
    the video's frames after the training range; the lowest dynamics distance is kept (ties:
    the first). Returns what metrics.json reports: kept, why, the reference and the scores."""
    length = AUTO_MULTIPLE * settings.frames
    clip, held_out = read_clip(video, settings, length)
    if held_out is not None and len(held_out) >= MIN_HELD_OUT:
        reference, against = held_out, f"the {len(held_out)} held-back frames after the clip"
    else:
        # nothing unseen to score against: the training clip is the only reference left
        reference, against = clip, "the training clip (the video has no frames after it)"
    scores = {
        name: _scores(synthesize(model, AUTO_VIDEOS, length, seed, device), reference, seed)
        for name, model in candidates.items()
    }
    kept = min(scores, key=lambda name: scores[name]["dynamics"])
    others = ", ".join(f"the {n}'s {s['dynamics']:.4g}" for n, s in scores.items() if n != kept)
    why = (
        f"kept {kept}: its syntheses' dynamics distance to {against} is "
        f"{scores[kept]['dynamics']:.4g}, against {others}"
    )
    return {
        "kept": kept,
        "why": why,
        "reference": against,
        "syntheses": AUTO_VIDEOS,
        "scores": scores,
    }


def _scores(videos: Any, reference: Any, seed: int) -> dict[str, Any]:
    """The report's headline numbers of the syntheses against the reference frames."""
    report = quality_report(videos, reference, seed=seed)
    return {key: report[key] for key in SHOWN}


def masked_choice() -> dict[str, Any]:
    """What auto reports on a masked run, which trains the dynamic generator only."""
    return {
        "kept": "abptt",
        "why": "masked run: auto trains the dynamic generator only (an LDS cannot learn from "
        "incomplete frames; choosing the model for recovery is the recovery options' job)",
    }
