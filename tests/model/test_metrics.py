"""Reconstruction metrics and the recovery baselines."""

from __future__ import annotations

import numpy as np

from model.metrics import (
    linear_interpolation_fill,
    psnr,
    recovery_error,
    temporal_mean_fill,
    visible_mse,
)


def ramp(frames: int = 5) -> np.ndarray:
    """A video whose every pixel is t / 10: (T, 3, 2, 2)."""
    return np.broadcast_to(
        (np.arange(frames) / 10.0)[:, None, None, None], (frames, 3, 2, 2)
    ).copy()


def test_interpolation_recovers_a_linear_ramp_exactly() -> None:
    video = ramp()
    visible = np.ones((5, 1, 2, 2), bool)
    visible[1:4] = False
    filled = linear_interpolation_fill(video, visible)
    np.testing.assert_allclose(filled, video)
    assert recovery_error(video, filled, visible) < 1e-9


def test_interpolation_holds_the_nearest_frame_at_the_ends() -> None:
    video = ramp()
    visible = np.zeros((5, 1, 2, 2), bool)
    visible[2] = True
    filled = linear_interpolation_fill(video, visible)
    np.testing.assert_allclose(filled, 0.2)


def test_temporal_mean_fills_with_the_visible_mean() -> None:
    video = ramp()
    visible = np.ones((5, 1, 2, 2), bool)
    visible[0] = False
    np.testing.assert_allclose(temporal_mean_fill(video, visible)[0], np.mean([0.1, 0.2, 0.3, 0.4]))


def test_recovery_error_is_on_the_0_255_scale() -> None:
    truth, estimate = np.zeros((2, 3, 2, 2)), np.full((2, 3, 2, 2), 2 / 255)
    visible = np.zeros((2, 1, 2, 2), bool)
    assert abs(recovery_error(truth, estimate, visible) - 1.0) < 1e-9


def test_mse_and_psnr() -> None:
    truth, estimate = np.zeros((2, 3, 2, 2)), np.full((2, 3, 2, 2), 0.2)
    assert abs(visible_mse(truth, estimate) - 0.04) < 1e-12
    assert abs(psnr(0.04) - 10 * np.log10(100)) < 1e-9
