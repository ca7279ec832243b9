"""A masked run's recovered videos: the blend fitted on held-out pixels where there are any,
else the model's posterior mean, with the errors of every fill beside it."""

from __future__ import annotations

import numpy as np

from model.blend import apply_recovery_blend, candidate_fills, fill_errors, fit_recovery_blend
from model.metrics import recovery_error, temporal_mean_fill


def recovered_videos(
    truth: np.ndarray,
    averaged: np.ndarray,
    last: np.ndarray,
    visible: np.ndarray,
    validation: np.ndarray | None,
    held_out_fill: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, object]]:
    """The recovered videos (N, T, 3, S, S) and their metrics: the blend fitted on the held-out
    pixels where there are any (on `held_out_fill`, the model's fill from before they were
    released into training, when they were), else the model's posterior mean, beside the
    baselines."""
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
    blend = fit_recovery_blend(observed, visible, validation, averaged, held_out_fill)
    recovered = apply_recovery_blend(blend, observed, visible, fills)  # the extra fills unused
    metrics |= {
        "recovery_error": recovery_error(truth, recovered, weight),
        "recovery_method": "blend",
        "held_out_fraction": float(validation.sum() / max(visible.sum(), 1)),
        "held_out_released": held_out_fill is not None,
        "blend": blend.summary(),
    }
    return recovered, metrics
